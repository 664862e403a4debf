"""The ``/ws`` endpoint: hello, the client's resume, then diffs from the hub's outbox.

A client that sends oversized frames is closed with 1009, one that floods with 1008;
anything else it sends that is not a valid message gets an ``error`` message back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from . import protocol, wire
from .config import Config
from .hub import Client, Hub, HubStats
from .supervise import first_of
from .times import zone_spans

log = logging.getLogger("rtm.ws")

# Seconds a client has to say what it holds before it gets snapshots: the page fetches the
# shared HTTP snapshots in between (a 100k table under a wall of reconnecting displays).
RESUME_WAIT = 30.0
# Frames longer than this (snapshot pages: up to 512 KiB) give the loop a turn after each.
BIG_FRAME = 64 * 1024


class ClientGone(Exception):
    """The client closed, or broke a limit and was closed."""


class Inbox:
    """Reads client frames, enforcing the frame size and rate limits."""

    def __init__(self, websocket: WebSocket, config: Config, stats: HubStats) -> None:
        self.websocket = websocket
        self.stats = stats
        self.max_frame = config.ws_max_frame
        self.max_messages = config.ws_max_messages_per_10s
        self._times: deque[float] = deque()

    async def receive(self) -> str | bytes:
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            if message.get("code") in (1005, 1006) and not message.get("reason"):
                self.stats.closed_lost += 1
            raise ClientGone()
        data: str | bytes = message.get("text") or message.get("bytes") or ""
        if len(data) > self.max_frame:
            self.stats.closed_oversized += 1
            await self.websocket.close(code=1009, reason="frame too large")
            raise ClientGone()
        now = time.monotonic()
        self._times.append(now)
        while self._times and self._times[0] < now - 10:
            self._times.popleft()
        if len(self._times) > self.max_messages:
            self.stats.closed_flood += 1
            await self.websocket.close(code=1008, reason="too many messages")
            raise ClientGone()
        return data


def hello(hub: Hub, config: Config, user: Any) -> str:
    now = time.time()
    tz = {"name": config.tz, "transitions": zone_spans(config.tz, now)}
    return protocol.encode(
        protocol.Hello(
            epoch=hub.epoch,
            tables=list(hub.tables),
            now=now,
            tz=tz,
            demo=config.demo,
            user=user if isinstance(user, dict) else None,
        )
    )


class Sender:
    """Writes frames to one client and counts them once written (a stalled client's
    outbox is not "sent").

    Under rtm serve (server/wire.py) a frame's bytes are prepared once for every client
    and written straight to the socket, also synchronously from the hub's fan-out
    (``write_now``) when the socket takes it; elsewhere (Starlette's TestClient) through
    ``send_text``, counting the frame's UTF-8 length.
    """

    def __init__(self, websocket: WebSocket, timeout: float) -> None:
        self.websocket = websocket
        self.timeout = timeout  # RTM_WS_SEND_TIMEOUT: a client taking no frame is closed
        found = websocket.scope.get("extensions", {}).get(wire.EXTENSION, {}).get("protocol")
        self.protocol = found if isinstance(found, wire.PreparedFrameProtocol) else None
        self.stats: HubStats = websocket.app.state.hub.stats
        user = websocket.scope.get("user")
        self.kind = str(user.get("role")) if isinstance(user, dict) else "none"

    async def send(self, frames: list[str]) -> None:
        """Send ``frames`` in order; TimeoutError when one waits ``timeout`` to be taken."""
        # One timeout moved along per frame, not wait_for's task and timer per frame: at
        # 1,000 clients that was a tenth of rtm's CPU (bench/connect.py).
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(None) as timeout:
            for frame in frames:
                timeout.reschedule(loop.time() + self.timeout)
                if self.protocol is not None:
                    self._count(await self.protocol.send_prepared(frame))
                else:
                    await self.websocket.send_text(frame)
                    self._count(len(frame) if frame.isascii() else len(frame.encode()))
                if len(frame) > BIG_FRAME:
                    # A socket that takes everything (a fast reader on loopback) never makes
                    # send wait: without a turn here a million-row snapshot, deflated page
                    # by page, would hold the loop for its whole length.
                    await asyncio.sleep(0)

    def write_now(self, frame: str) -> bool:
        """Write ``frame`` now if the socket takes it (the hub's fan-out); never raises."""
        if self.protocol is None:
            return False
        try:
            written = self.protocol.write_now(frame)
        except (wire.SocketClosed, ValueError):
            # Queued instead: this client's own task meets the closed socket (or a text
            # that cannot be encoded), never the publisher fanning out to every client.
            return False
        if written:
            self._count(written)
        return written > 0

    def _count(self, size: int) -> None:
        stats, kind = self.stats, self.kind
        stats.frames_sent[kind] = stats.frames_sent.get(kind, 0) + 1
        stats.bytes_sent[kind] = stats.bytes_sent.get(kind, 0) + size


async def _first_resume(inbox: Inbox, sender: Sender, tables: list[str]) -> protocol.Resume | None:
    """The client's resume, answering invalid frames with errors; None if it never comes."""
    deadline = time.monotonic() + RESUME_WAIT
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            data = await asyncio.wait_for(inbox.receive(), remaining)
        except TimeoutError:
            return None
        try:
            return protocol.decode_client(data, tables)
        except protocol.BadMessage as exc:
            inbox.stats.bad_messages += 1
            await sender.send([protocol.encode(protocol.Error("bad message", str(exc)))])


async def _pump(sender: Sender, hub: Hub, client: Client) -> None:
    # From here on the hub writes a frame itself when the socket takes it and nothing is
    # queued before it; this task sends only what queued (a busy socket, a snapshot).
    client.write_now = sender.write_now
    while True:
        await client.wait()
        client.sending = True  # later frames queue behind these
        frames = hub.snapshot_frames(client) if client.needs_snapshot else client.take()
        await sender.send(frames)
        client.sending = False


async def _answer(inbox: Inbox, sender: Sender) -> None:
    """After the resume, the client has nothing to say: every frame gets an error."""
    while True:
        await inbox.receive()
        inbox.stats.bad_messages += 1
        error = protocol.Error("unexpected message", "only one resume, as the first message")
        await sender.send([protocol.encode(error)])


async def websocket_endpoint(websocket: WebSocket) -> None:
    hub: Hub = websocket.app.state.hub
    config: Config = websocket.app.state.config
    if hub.stats.sockets >= config.ws_max_clients:
        # A reconnect storm or a leaking client must not take every file descriptor (and
        # with them the login page): refuse with a reason the page retries on, and count it.
        hub.stats.refused += 1
        await websocket.accept()
        reason = f"try again later: {hub.stats.sockets} clients connected (RTM_WS_MAX_CLIENTS)"
        with contextlib.suppress(Exception):
            await websocket.close(code=1013, reason=reason[:120])
        return
    hub.stats.sockets += 1
    try:
        await _serve(websocket, hub, config)
    finally:
        hub.stats.sockets -= 1


async def _serve(websocket: WebSocket, hub: Hub, config: Config) -> None:
    await websocket.accept()
    inbox = Inbox(websocket, config, hub.stats)
    sender = Sender(websocket, config.ws_send_timeout)
    client: Client | None = None
    try:
        await sender.send([hello(hub, config, websocket.scope.get("user"))])
        resume = await _first_resume(inbox, sender, list(hub.tables))
        await hub.first_poll()
        client, frames = hub.connect(resume)
        await sender.send(frames)
        await first_of(_pump(sender, hub, client), _answer(inbox, sender))
    except (ClientGone, WebSocketDisconnect, wire.SocketClosed):
        pass
    except TimeoutError:
        hub.stats.closed_slow += 1
        log.info("closing a client that took no frame for %.0f s", config.ws_send_timeout)
        with contextlib.suppress(Exception):
            await websocket.close(code=1008, reason="too slow")
    except RuntimeError:
        pass  # sending on a socket the client already closed
    finally:
        if client is not None:
            client.write_now = None
            hub.disconnect(client)

"""Many protocol-following clients of a cluster, each reconnecting and resuming by itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from ..live_server import UNIT
from ..mirror import Mirror
from ..waiting import cancelled, retried

# What a connect attempt raises while no instance will take the client (the page retries).
REFUSED = (ConnectionClosed, InvalidHandshake, OSError, TimeoutError)


class Follower:
    """One client: a Mirror read forever; when its socket drops it reconnects through
    ``connect()`` and resumes with what it holds, counting the snapshots it was sent."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self.connect = connect
        self.mirror: Mirror | None = None
        self.reconnects = 0
        self.snapshots_after_reconnect = 0
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.stopped = False

    def accounts(self) -> dict[str, dict[str, Any]]:
        return {} if self.mirror is None else self.mirror.tables.get("accounts", {})

    def seq(self) -> int | None:
        return None if self.mirror is None else self.mirror.seq.get("accounts")

    async def run(self) -> None:
        while not self.stopped:
            # ``connect()`` is asked again on every try: it may pick another instance.
            ws = await retried(self.connect, REFUSED, 120 * UNIT, "a dropped client taken back")
            try:
                async with ws:
                    await self._session(ws)
            except (ConnectionClosed, OSError, TimeoutError):  # dropped: reconnect, as the page
                self.reconnects += 1

    async def _session(self, ws: ClientConnection) -> None:
        held = self.mirror
        mirror = Mirror(ws)
        if held is not None:
            mirror.tables, mirror.seq = held.tables, held.seq
        self.mirror = mirror
        first = len(mirror.frames)
        await mirror.start(held.epoch if held else None, dict(held.seq) if held else None)
        if held is not None:
            self.snapshots_after_reconnect += sum(
                1 for frame in mirror.frames[first:] if frame["type"] == "snapshot"
            )
        self.ready.set()
        while True:
            await mirror.receive_one(timeout=3600)


async def start_all(followers: list[Follower]) -> None:
    for follower in followers:
        follower.task = asyncio.create_task(follower.run())
    async with asyncio.timeout(30 * UNIT):
        await asyncio.gather(*(f.ready.wait() for f in followers))


async def stop_all(followers: list[Follower]) -> None:
    """Stop every client; a cancellation swallowed while closing a socket is sent again."""
    for follower in followers:
        follower.stopped = True
    await cancelled(f.task for f in followers if f.task is not None)

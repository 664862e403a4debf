"""Closing open WebSockets whose credential no longer holds.

A display revoked with `rtm display revoke` (another process), a user deleted or whose
password changed, a logout elsewhere or an expired session: the store says so, and one
polling task per server notices within `interval` seconds and closes the sockets with 1008.
The task runs only while at least one socket is open.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import Auth

log = logging.getLogger(__name__)
POLICY_VIOLATION = 1008


class SessionWatcher:
    """Runs WebSocket apps under a credential and ends them when it stops holding."""

    def __init__(self, auth: Auth, interval: float = 1.0, grace: float = 5.0) -> None:
        self.auth = auth
        self.interval = interval
        self.grace = grace
        self._live: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self.closed_count = 0

    async def run(
        self, credential: str, app: ASGIApp, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run `app` for one socket. When `credential` dies, close the socket with 1008 and
        hand the app a disconnect at its next receive; cancel it if it lingers past `grace`."""
        ended = asyncio.Event()
        closed = False

        async def guarded_send(message: Message) -> None:
            nonlocal closed
            if closed:
                return  # we closed the socket under the app: drop what it still sends
            if message["type"] in ("websocket.close", "websocket.http.response.start"):
                closed = True
            await send(message)

        async def guarded_receive() -> Message:
            incoming = asyncio.ensure_future(receive())
            stop = asyncio.ensure_future(ended.wait())
            try:
                await asyncio.wait({incoming, stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                await _cancel(stop)
                await _cancel(incoming)  # revoked, or the app itself is being cancelled
            if incoming.cancelled():
                return {"type": "websocket.disconnect", "code": POLICY_VIOLATION}
            return incoming.result()

        self._register(credential, ended)
        app_task = asyncio.ensure_future(app(scope, guarded_receive, guarded_send))
        ended_wait = asyncio.ensure_future(ended.wait())
        try:
            await asyncio.wait({app_task, ended_wait}, return_when=asyncio.FIRST_COMPLETED)
            if not app_task.done():
                if not closed:
                    closed = True
                    self.closed_count += 1
                    await send({"type": "websocket.close", "code": POLICY_VIOLATION,
                                "reason": "credentials revoked or expired"})  # fmt: skip
                await asyncio.wait({app_task}, timeout=self.grace)
            if app_task.done():
                app_task.result()
        finally:
            self._unregister(credential, ended)
            await _cancel(ended_wait)
            await _cancel(app_task)

    def _register(self, credential: str, ended: asyncio.Event) -> None:
        self._live.setdefault(credential, set()).add(ended)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._poll())

    def _unregister(self, credential: str, ended: asyncio.Event) -> None:
        events = self._live.get(credential, set())
        events.discard(ended)
        if not events:
            self._live.pop(credential, None)
        if not self._live and self._task is not None:
            # Nothing left to watch; a pending task would outlive the server's loop.
            self._task.cancel()
            self._task = None

    async def _poll(self) -> None:
        failing = False  # logged once per outage of the store, not at every poll
        while self._live:
            await asyncio.sleep(self.interval)
            credentials = list(self._live)
            try:
                alive = await asyncio.to_thread(self.auth.sessions.valid_credentials, credentials)
            except Exception as exc:  # a busy or broken store must not close everyone
                if not failing:
                    log.warning("checking open sockets' credentials failed (%s); will retry", exc)
                failing = True
                continue
            if failing:
                log.info("checking open sockets' credentials works again")
            failing = False
            for credential in credentials:
                if credential not in alive:
                    for ended in self._live.get(credential, ()):
                        ended.set()


async def _cancel(task: asyncio.Future[Any]) -> None:
    if task.done():
        return
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task

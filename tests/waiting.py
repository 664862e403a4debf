"""Waiting for a condition: poll it against a deadline, never sleep a fixed time and hope."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

POLL_INTERVAL = 0.02

T = TypeVar("T")


async def eventually(condition: Callable[[], bool], within: float, what: str) -> None:
    """Poll ``condition`` every 20 ms until it holds; TimeoutError after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within} s")
        await asyncio.sleep(POLL_INTERVAL)


class Exited(AssertionError):
    """The process a wait depended on ended before the condition held."""


def until(
    condition: Callable[[], T],
    within: float,
    what: str,
    *,
    not_yet: tuple[type[Exception], ...] = (),
    process: subprocess.Popen[bytes] | None = None,
) -> T:
    """``eventually`` for synchronous tests (a Starlette TestClient, a CLI run, a server
    starting): poll ``condition`` every 20 ms and return its first truthy value. An error
    in ``not_yet`` counts as "not yet" (a server not listening); when ``process`` exits
    first, ``Exited`` at once rather than waiting out ``within``."""
    deadline = time.monotonic() + within
    while True:
        try:
            value = condition()
        except not_yet:
            value = None
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise Exited(f"{what}: the process exited ({process.returncode}) first")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within} s")
        time.sleep(POLL_INTERVAL)


async def retried(
    attempt: Callable[[], Awaitable[T]],
    errors: tuple[type[Exception], ...],
    within: float,
    what: str,
) -> T:
    """Await ``attempt()`` until it no longer raises one of ``errors`` (a client reconnecting
    until a server takes it, as the page does), trying every 20 ms; TimeoutError after
    ``within`` seconds, caused by the last refusal."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await attempt()
        except errors as refused:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {within} s") from refused
        await asyncio.sleep(POLL_INTERVAL)


class LoopTurns:
    """Counts the event loop's turns while in use (``with LoopTurns() as turns:``), by a
    callback that schedules itself again each time it runs: once per turn, no task, no
    sleep. A test of work that must let the loop run (a million rows in turns) checks that
    ``count`` moved during it. ``first`` is called at the first turn."""

    def __init__(self, first: Callable[[], object] | None = None) -> None:
        self.count = 0
        self._first = first
        self._counting = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> LoopTurns:
        self._counting, self._loop = True, asyncio.get_running_loop()
        self._loop.call_soon(self._turn)
        return self

    def __exit__(self, *exc: object) -> None:
        self._counting = False

    def _turn(self) -> None:
        if not self._counting or self._loop is None:
            return
        if self.count == 0 and self._first is not None:
            self._first()
        self.count += 1
        self._loop.call_soon(self._turn)


async def cancelled(tasks: Iterable[asyncio.Task[Any]], again_after: float = 1.0) -> None:
    """Cancel ``tasks`` and wait for each to end (how it ended is not the test's subject).
    A task still running ``again_after`` seconds later (time for its clean-up) is cancelled
    again: Python 3.11's ``asyncio.wait_for`` drops a cancellation that lands as what it
    waits for returns, and so can a socket being closed."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=again_after)

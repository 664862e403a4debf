"""Waiting for a condition: poll it against a deadline, never sleep a fixed time and hope."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

POLL_INTERVAL = 0.02


async def eventually(condition: Callable[[], bool], within: float, what: str) -> None:
    """Poll ``condition`` every 20 ms until it holds; TimeoutError after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within} s")
        await asyncio.sleep(POLL_INTERVAL)


def until(condition: Callable[[], bool], within: float, what: str) -> None:
    """``eventually`` for synchronous tests (a Starlette TestClient, a CLI run)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within} s")
        time.sleep(POLL_INTERVAL)


async def between_tries() -> None:
    """The pause of a loop whose try is itself the condition (a client reconnecting until
    the server takes it, as the page does): one poll interval, so a refused try never spins."""
    await asyncio.sleep(POLL_INTERVAL)

"""Waiting for a condition: poll it against a deadline, never sleep a fixed time and hope."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

POLL_INTERVAL = 0.02

T = TypeVar("T")


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

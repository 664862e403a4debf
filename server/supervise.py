"""Long-running tasks that are noticed when they crash and restarted with capped backoff."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("rtm.tasks")


class Backoff:
    """Capped doubling delays between restarts, back to the first once a run lasted a while."""

    def __init__(self, first: float = 0.5, cap: float = 30.0, healthy: float = 60.0) -> None:
        self.first, self.cap, self.healthy = first, cap, healthy
        self._delay = first / 2

    def after(self, ran_for: float) -> float:
        """The delay before the next start, given how long the last run lasted."""
        self._delay = self.first if ran_for > self.healthy else min(self._delay * 2, self.cap)
        return self._delay


async def supervise(
    name: str,
    start: Callable[[], Awaitable[None]],
    on_crash: Callable[[BaseException], None] | None = None,
    *,
    max_delay: float = 30.0,
) -> None:
    """Run ``start()`` until it returns; restart it after each crash (logged and reported)."""
    backoff = Backoff(cap=max_delay)
    while True:
        started = time.monotonic()
        try:
            await start()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a task's bug must not take the server down
            delay = backoff.after(time.monotonic() - started)
            log.exception("task %s crashed; restarting in %.1f s", name, delay)
            if on_crash is not None:
                on_crash(exc)
        await asyncio.sleep(delay)


class TaskSet:
    """The app's background tasks, started in the lifespan and cancelled at its end."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def start(
        self,
        name: str,
        start: Callable[[], Awaitable[None]],
        on_crash: Callable[[BaseException], None] | None = None,
    ) -> None:
        task = asyncio.create_task(supervise(name, start, on_crash), name=name)
        self._tasks.append(task)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


async def first_of(*coroutines: Awaitable[None]) -> None:
    """Run these together until one ends; cancel the others; raise what the first raised.

    Every task's outcome is taken, so two ending in the same turn (a client gone while its
    pump meets the closed socket) leave no "Task exception was never retrieved" behind."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        if task in done and not task.cancelled() and (error := task.exception()) is not None:
            raise error

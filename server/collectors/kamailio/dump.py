"""When rtm asks Kamailio for a whole ``ul.dump``, and the one dump in flight.

A dump of 100k contacts is 54 MB of JSON that one Kamailio worker builds for half a minute,
so rtm treats it as a load on the SIP server it watches, not as a free read:

- **one at a time**: the dump runs as its own task; whoever asks while it runs waits for
  that same dump (``asyncio.shield``), so a caller that gives up (the runner's timeout)
  abandons its wait, not the dump, and never causes a second one.
- **a limit that fits its size**: three times the last good dump, at least ``MIN_LIMIT``.
- **a duty cap**: the next dump starts no sooner than ``took / duty`` after the last began,
  so rtm never keeps Kamailio dumping more than ``duty`` of the time, whatever the poll.
- **backoff after a timeout**: Kamailio may still be building the abandoned reply, so the
  next try waits the limit, doubled after each timeout in a row, and gets twice the limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .rpc import RpcTimeout

log = logging.getLogger("rtm.collectors")

MIN_LIMIT = 30.0
FIRST_LIMIT = 120.0
MAX_LIMIT = 600.0
MAX_BACKOFF = 3600.0
# A refused or broken connection costs Kamailio nothing: retried at least this often, so
# a restarted Kamailio is read again within seconds of answering.
MAX_RETRY = 5.0


@dataclass
class DumpSchedule:
    """When the next dump may start and how long it may take; I/O-free, in monotonic s."""

    every: float  # between starts while all is well (the poll, or the reconcile)
    duty: float  # the largest share of time Kamailio may spend dumping for rtm
    limit: float = FIRST_LIMIT
    next_at: float = 0.0
    timeouts: int = 0
    errors: int = 0
    _earliest: float = 0.0  # the duty cap alone, for a dump wanted before ``next_at``
    _wanted_at: float = -float("inf")
    _urgent_at: float = -float("inf")  # when a dump last got past the duty cap

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def want(self, now: float, urgent: bool = False) -> None:
        """A dump that starts after ``now`` is wanted as soon as the duty cap allows (events
        may have been missed). ``urgent`` (the hint link came back: Kamailio may have
        restarted, and the table is stale until a dump says what it holds) starts it at once,
        past the cap, but at most once per ``every``: a flapping link costs Kamailio at most
        one dump more per reconcile interval."""
        self._wanted_at = now
        if urgent and now - self._urgent_at >= self.every:
            self._urgent_at = now
            self.next_at = min(self.next_at, now)
        else:
            self.next_at = min(self.next_at, self._earliest)

    def succeeded(self, started: float, took: float) -> None:
        self.timeouts = self.errors = 0
        self.limit = min(max(3 * took, MIN_LIMIT), MAX_LIMIT)
        self._earliest = started + took / self.duty
        wanted = self._wanted_at >= started
        if self._urgent_at > started:  # wanted urgently while this one ran
            self.next_at = started + took
        else:
            self.next_at = self._earliest if wanted else max(started + self.every, self._earliest)

    def failed(self, now: float, timed_out: bool) -> float:
        """Note a failed dump; return the seconds until the next try."""
        if timed_out:
            self.timeouts += 1
            wait = min(self.limit * 2.0 ** (self.timeouts - 1), MAX_BACKOFF)
            self.limit = min(self.limit * 2, MAX_LIMIT)
        else:  # refused or broken: costs Kamailio nothing, retry soon
            self.errors += 1
            wait = min(self.every, 2.0 ** (self.errors - 1), MAX_RETRY)
        self.next_at = self._earliest = now + wait
        return wait


@dataclass(frozen=True)
class Dumped:
    """A finished dump: its result, and when its request was sent (wall and monotonic)."""

    result: Any
    sent_at: float
    started: float


class DumpTask:
    """At most one ``ul.dump`` in flight, run by ``call(limit)`` under ``schedule``."""

    def __init__(self, call: Callable[[float], Awaitable[Any]], schedule: DumpSchedule) -> None:
        self._call = call
        self.schedule = schedule
        self.task: asyncio.Task[Dumped] | None = None
        self.last_error: BaseException | None = None
        self.dumps = 0  # started, for tests and the bench

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start_if_due(self) -> bool:
        """Start a dump when none runs and the schedule allows; True when one runs."""
        if not self.running and self.task is None and self.schedule.due(time.monotonic()):
            self.schedule.next_at = float("inf")  # in flight: nothing else is due
            self.dumps += 1
            self.task = asyncio.create_task(self._run(self.schedule.limit), name="ul.dump")
        return self.running

    async def _run(self, limit: float) -> Dumped:
        started, sent_at = time.monotonic(), time.time()
        try:
            result = await self._call(limit)
        except RpcTimeout:
            self.schedule.failed(time.monotonic(), timed_out=True)
            raise
        except Exception:
            self.schedule.failed(time.monotonic(), timed_out=False)
            raise
        took = time.monotonic() - started
        self.schedule.succeeded(started, took)
        # A dump is a load on the SIP server: an operator (and the bench) sees each one.
        log.info("ul.dump %d answered in %.1f s", self.dumps, took)
        return Dumped(result, sent_at, started)

    async def wait(self, patience: float) -> Dumped | None:
        """The running or finished dump's result within ``patience`` s, else None (it goes
        on). Raises the dump's error once; after that the task is forgotten."""
        task = self.task
        if task is None:
            return None
        if not task.done():
            # asyncio.timeout, not wait_for: Python 3.11's wait_for loses a cancellation
            # that lands as the awaited task finishes.
            try:
                async with asyncio.timeout(patience):
                    await asyncio.shield(task)
            except TimeoutError:
                if not task.done():
                    return None
            except Exception:  # noqa: BLE001 - taken from the task below
                pass
        self.task = None
        error = task.exception()
        if error is not None:
            self.last_error = error
            raise error
        self.last_error = None
        return task.result()

    async def close(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing anyway
                pass

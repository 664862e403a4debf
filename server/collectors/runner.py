"""The shared loop around every collector: polling, timeouts, staleness, expiry, publishing.

A failing source keeps its last good rows and is reported stale with the error and since
when; it recovers by itself on the next good fetch. Rows with an ``expires`` in the past
leave at that second even when the source still lists them (Kamailio keeps expired contacts
until its timer sweeps), because the runner wakes at the earliest expiry as well as on its
interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..hub import Hub
from ..rows import Row, Rows
from ..supervise import Backoff
from ..times import parse_iso
from .base import CheapUnchanged, Collector, HintStream

log = logging.getLogger("rtm.collectors")

Match = Callable[[Row], bool]


def describe(exc: BaseException) -> str:
    """A short operator-facing text for a failure (no traceback)."""
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc).strip() or type(exc).__name__
    return text[:500]


class CollectorRunner:
    """Polls one collector and publishes its table into the hub."""

    def __init__(
        self,
        collector: Collector,
        hub: Hub,
        *,
        interval: float = 1.0,
        timeout: float | None = None,
        expires_field: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.collector = collector
        self.table = collector.table
        self.hub = hub
        self.interval = interval
        self.timeout = timeout if timeout is not None else max(5.0, 3 * interval)
        self.expires_field = expires_field
        self._clock = clock
        self._rows: dict[str, Row] = {}
        self._expiry: dict[str, float] = {}
        self._next_expiry = float("inf")

    async def run(self) -> None:
        """Poll forever (until cancelled); never raises for a source's failure.

        The interval is the most often a source's rows are read. A source that answers
        "unchanged" cheaply (``CheapUnchanged``, e.g. SQLite's data_version) is asked five
        times per interval while it has nothing new, so a change in a quiet store shows
        within a fifth of the interval; a busy one is still read once per interval.
        """
        cheap = isinstance(self.collector, CheapUnchanged) and self.collector.cheap_unchanged
        quick = self.interval / 5 if cheap else None
        while True:
            started = time.monotonic()
            fetched = await self.poll_once()
            wait = self.interval if fetched or quick is None else quick
            await self._sleep(started + wait)

    async def poll_once(self) -> bool:
        """Fetch once; True when the source returned rows (rather than "unchanged" or an error)."""
        try:
            return await self._poll()
        finally:
            self.hub.mark_polled(self.table)

    async def _poll(self) -> bool:
        try:
            rows = await asyncio.wait_for(self.collector.fetch(), self.timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any source failure is reported, not raised
            error = describe(exc)
            if self.hub.tables[self.table].source.ok:
                log.warning("%s source failed: %s", self.table, error)
            self.hub.set_source(self.table, False, error)
            self._publish()  # expiry goes on while the source is down
            return False
        if not self.hub.tables[self.table].source.ok:
            log.info("%s source recovered", self.table)
        self.hub.set_source(self.table, True, None)
        if rows is not None:
            self._set_rows(rows)
            self._publish()
            return True
        if self._clock() >= self._next_expiry:
            self._publish()
        return False

    def replace(self, match: Match, rows: Rows) -> None:
        """Swap the rows ``match`` selects for ``rows`` and publish at once (source hints)."""
        kept = {key: row for key, row in self._rows.items() if not match(row)}
        kept.update(rows)
        self._set_rows(kept)
        self._publish()

    def _set_rows(self, rows: Rows) -> None:
        previous, self._rows = self._rows, dict(rows)
        if self.expires_field is None:
            return
        # Sources hand back the same row objects for unchanged rows, and a hint replaces a
        # few rows among 100k: parse only the expiries of rows that are new objects.
        known, expiry = self._expiry, {}
        for key, row in self._rows.items():
            if previous.get(key) is row and key in known:
                expiry[key] = known[key]
                continue
            value = row.get(self.expires_field)
            if isinstance(value, str):
                try:
                    expiry[key] = parse_iso(value)
                except ValueError:
                    pass  # unreadable expiry: keep the row rather than lose it
        self._expiry = expiry

    def _publish(self) -> None:
        now = self._clock()
        if self._expiry:
            visible = {k: r for k, r in self._rows.items() if self._expiry.get(k, now + 1) > now}
            self._next_expiry = min(
                (t for k, t in self._expiry.items() if k in visible), default=float("inf")
            )
        else:
            visible = self._rows
            self._next_expiry = float("inf")
        self.hub.publish_state(self.table, visible)

    async def _sleep(self, next_poll: float) -> None:
        """Sleep until the next poll, waking to drop rows at their expiry meanwhile."""
        while True:
            now = time.monotonic()
            if now >= next_poll:
                return
            wall_wait = self._next_expiry - self._clock()
            wait = min(next_poll - now, max(wall_wait, 0.0) + 0.001)
            await asyncio.sleep(wait)
            if self._clock() >= self._next_expiry:
                self._publish()

    async def watch(self) -> None:
        """Run the collector's optional hint stream, restarting it with capped backoff."""
        if not isinstance(self.collector, HintStream):
            return
        watch = self.collector.watch
        # Unlike a supervised task, a hint stream that returns (link lost) starts again too.
        backoff = Backoff(healthy=30.0)
        while True:
            started = time.monotonic()
            try:
                await watch(self.replace)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - hints are optional; polling goes on
                log.warning("%s hints failed: %s", self.table, describe(exc))
            await asyncio.sleep(backoff.after(time.monotonic() - started))

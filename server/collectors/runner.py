"""The shared loop around every collector: polling, timeouts, staleness, expiry, publishing.

A failing source keeps its last good rows and is reported stale with the error and since
when; it recovers by itself on the next good fetch. Rows with an ``expires`` in the past
leave at that second even when the source still lists them (Kamailio keeps expired contacts
until its timer sweeps), because the runner wakes at the earliest expiry as well as on its
interval.

Cost per change. A ``ChangeFeed`` source is asked what changed every
``changes_interval`` (50 ms) and its changes go to the hub as they are: O(rows changed).
Its full read is for start-up, for a source that lost track, and for the **reconcile**
every ``reconcile`` seconds, whose diff must be empty; a non-empty one is a bug in the
source, counted in ``hub.stats.reconcile_mismatches`` and logged once per table. Expiry
is a heap: O(log n) per contact, never a scan of the table. Only a source without a feed
(a few hundred trunks or messages) is diffed whole on each read.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from itertools import islice
from typing import TypeVar

from ..hub import Hub
from ..rows import Row, Rows
from ..supervise import Backoff
from ..times import parse_iso
from .base import ChangeFeed, Collector, HintStream, Resumable, RowChanges

log = logging.getLogger("rtm.collectors")

# Hints arriving within this long of the last published ones are merged into one diff: 160
# REGISTERs/s become at most 20 frames a second for every client rather than 160 (each
# frame is an encode, a ring entry and a write per client). The first hint after a quiet
# spell goes out at once, so a lone REGISTER waits for nothing; under churn one waits 50 ms
# at most.
HINT_BATCH = 0.05
HINTED_POLL = 1.0  # seconds between fetches of a source that also pushes hints
FIRST_READ_TIMEOUT = 120.0  # seconds a source's first full read may take
# Defaults of Config.changes_interval and Config.reconcile (RTM_CHANGES_INTERVAL,
# RTM_RECONCILE): how often a change feed is asked, how often it is checked against a
# full read.
CHANGES_INTERVAL = 0.05
RECONCILE = 300.0
# Rows of a full read taken per turn of the event loop. A million rows are seconds of work
# (an expiry parsed and pushed, a comparison, a copy per row); in one step they held a
# cluster's new leader past its lease, its clients unanswered (docs/benchmarks.md).
READ_TURN = 5_000
# Rows taken over from a cluster's last leader whose expiry is parsed per ask of the feed
# (``_take_expiries``): ~20 ms of the loop each, a million in a few seconds.
EXPIRY_TURN = 20_000

T = TypeVar("T")


class Failed:
    """What ``_ask`` returns for a source call that failed (already reported)."""


FAILED = Failed()


def describe(exc: BaseException) -> str:
    """A short operator-facing text for a failure (no traceback)."""
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc).strip() or type(exc).__name__
    return text[:500]


def full_read_changes(old: Rows, new: Rows) -> RowChanges:
    """What a full read says changed since the rows a source gave before. O(table).

    Sources hand back the very same row object for a row they did not re-read, so the
    common case is an identity check, not a comparison of fields.
    """
    changes = RowChanges(delete=set(old.keys() - new.keys()))
    for key, row in new.items():
        before = old.get(key)
        if before is not row and before != row:
            changes.upsert[key] = row
    return changes


class Expiry:
    """When each row leaves, as a heap: O(log n) per row set, O(1) to know the next.

    Entries are (time, key); one that no longer matches ``at[key]`` is stale and skipped
    when it surfaces. Re-registrations push a new entry each time, so the heap is rebuilt
    from ``at`` when stale entries outnumber live ones (amortised O(1) per push).
    """

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def set(self, key: str, when: float | None) -> None:
        if when is None:
            self.at.pop(key, None)
            return
        if self.at.get(key) == when:
            return
        self.at[key] = when
        heapq.heappush(self._heap, (when, key))
        if len(self._heap) > 2 * len(self.at) + 1024:
            self._heap = [(t, k) for k, t in self.at.items()]
            heapq.heapify(self._heap)

    def discard(self, key: str) -> None:
        self.at.pop(key, None)

    def next(self) -> float:
        return self._heap[0][0] if self._heap else float("inf")

    def due(self, now: float) -> list[str]:
        """Keys whose time has come (they stay in ``at``: the source may still list them)."""
        heap, at, due = self._heap, self.at, []
        while heap and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            if at.get(key) == when:
                due.append(key)
        return due


class CollectorRunner:
    """Polls one collector and publishes its table (or its node's part of it) into the hub."""

    def __init__(
        self,
        collector: Collector,
        hub: Hub,
        *,
        interval: float = 1.0,
        timeout: float | None = None,
        expires_field: str | None = None,
        changes_interval: float = CHANGES_INTERVAL,
        reconcile: float = RECONCILE,
        clock: Callable[[], float] = time.time,
        node: str | None = None,
        prefix: str = "",
    ) -> None:
        self.collector = collector
        # One of several nodes feeding the table: its rows carry ``node`` and (when the
        # table has several) ids starting with ``prefix``; they are its part of the table.
        self.node = node
        self.prefix = prefix
        self.name = collector.table if node is None else f"{collector.table} node {node}"
        self.table = collector.table
        self.hub = hub
        self.timeout = timeout if timeout is not None else max(5.0, 3 * interval)
        # A source with hints answers a fetch from what it holds until its own full read is
        # due (no request to the SIP server), so asking it every second is free, and it is
        # how a lost hint link (Kamailio gone) shows as stale within a second.
        self.interval = (
            min(interval, HINTED_POLL) if isinstance(collector, HintStream) else interval
        )
        self.expires_field = expires_field
        self.changes_interval = changes_interval
        self.reconcile_interval = reconcile
        self._clock = clock
        # Every row the source lists (expired ones too, until it drops them); the hub holds
        # the visible ones.
        self._rows: dict[str, Row] = {}
        self._expiry = Expiry()
        self._read_once = False
        self._pending_hints: RowChanges | None = None
        self._reading = False  # a full read is being taken (in turns): hints wait
        self._hints_published = -float("inf")  # the loop's time of the last hints applied
        self._last_full = -float("inf")  # monotonic time of the last full read
        self._mismatch_logged = False
        # A source a cluster's new leader can go on with (``_resume``; the whole table's
        # only), and whether it still may: once refused, a position stays untrusted.
        self._continued = collector if isinstance(collector, Resumable) and node is None else None
        self._may_resume = self._continued is not None
        self._unexpired: Iterator[str] | None = None  # taken over, expiry not yet known
        # The source's position the published rows are complete for: taken as each answer
        # arrives and published with it, never the source's live cursor (which moves at the
        # start of an ask, before the rows it names are read). None: nothing to go on from.
        self._at: str | None = None
        # A full read done: until then one may take as long as a first (a takeover's
        # fallback read of a million rows builds every row, as a first read does).
        self._read_whole = False

    # --- the loops ----------------------------------------------------------------------

    async def run(self) -> None:
        """Poll forever (until cancelled); never raises for a source's failure."""
        if isinstance(self.collector, ChangeFeed):
            await self._follow(self.collector)
        else:
            await self._poll_loop()

    async def _poll_loop(self) -> None:
        """A source without a feed: a full read per interval (its ``fetch`` may answer
        None, "unchanged")."""
        while True:
            started = time.monotonic()
            await self.poll_once()
            await self._sleep(started + self.interval)

    async def _follow(self, feed: ChangeFeed) -> None:
        """A change feed: one full read, then its changes every ``changes_interval``."""
        reconcile_at = time.monotonic() + self.reconcile_interval
        while True:
            started = time.monotonic()
            if not self._read_once:
                if await self._resume() is None:
                    await self.poll_once()
            elif started >= reconcile_at:
                if await self.reconcile_once():
                    reconcile_at = started + self.reconcile_interval
            else:
                await self.follow_once(feed)
            self._take_expiries()
            await self._sleep(started + self.changes_interval)

    async def _resume(self) -> bool | None:
        """A cluster's new leader: go on from where the last leader's reads stood, with the
        rows it published (the hub's), instead of a first full read. None when there is no
        such position or the source refused it (then it is read whole); False when the
        source failed to answer (asked again next turn: a full read would cost far more).

        A million contacts took ~15 s to read and build, and no change reached a client
        meanwhile (docs/benchmarks.md); taken over, the first change follows in a second.
        Their expiries are parsed in turns afterwards (``_take_expiries``); the reconcile
        later checks the whole."""
        state = self.hub.tables[self.table]
        position, collector = state.position, self._continued
        if not self._may_resume or position is None or collector is None:
            return None
        answer = await self._ask(collector.resume(position, state.rows), healthy=bool)
        if isinstance(answer, Failed):
            return False  # the source is down: stale, with why; asked again next turn
        self._may_resume = False
        if not answer:
            return None
        self._at = position
        self._rows = dict(state.rows)
        self._unexpired = iter(list(self._rows))
        self._read_once = True
        self.hub.mark_polled(self.table)
        log.info(
            "%s: went on from the last leader's position (%d rows)", self.name, len(state.rows)
        )
        return True

    def _take_expiries(self) -> None:
        """The expiry of EXPIRY_TURN more of the rows taken over (``_resume``); a row that
        changed since has its own already."""
        keys = self._unexpired
        if keys is None:
            return
        rows, at = self._rows, self._expiry.at
        turn = list(islice(keys, EXPIRY_TURN))
        for key in turn:
            row = rows.get(key)
            if row is not None and key not in at:
                self._expiry.set(key, self._expires(row))
        if len(turn) < EXPIRY_TURN:
            self._unexpired = None
        self._expire()

    async def poll_once(self) -> bool:
        """A full read; True when the source returned rows (not "unchanged" nor an error)."""
        self._last_full = time.monotonic()
        try:
            # A first read of a big table takes what it takes (a million contacts: 20-25 s,
            # more on a loaded box); giving up only starts it over, so it never ends.
            first = None if self._read_whole else max(self.timeout, FIRST_READ_TIMEOUT)
            rows = await self._ask(self.collector.fetch(), within=first)
            if isinstance(rows, Failed):
                return False
            if rows is not None:
                position = self._position()
                self._flush_hints()  # hints before the read: the read knows what came after
                await self._take_read(rows, position)
                if not self._read_once:
                    self._drop_unlisted(rows)
                self._read_once = self._read_whole = True
                return True
            self._expire()
            return False
        finally:
            self.hub.mark_polled(self.table, self.node)

    def _drop_unlisted(self, rows: Rows) -> None:
        """At the first full read, drop what the hub held of this source that the source no
        longer lists: a cluster's new leader starts from the cluster's state (server/cluster/),
        not from nothing. O(table), once."""
        state = self.hub.tables[self.table]
        held = state.rows.keys() if self.node is None else state.partitions.get(self.node, ())
        listed = {self.prefix + key for key in rows} if self.prefix else rows.keys()
        gone = [key for key in held if key not in listed]
        if gone:
            self.hub.publish_changes(self.table, {}, gone, self.node, self._at)

    async def follow_once(self, feed: ChangeFeed) -> None:
        """Take a feed's changes; a feed that lost track gets a full read instead."""
        # "Lost track" says nothing of the source's health: the full read that follows does.
        changes = await self._ask(feed.changes(), healthy=lambda answer: answer is not None)
        if changes is None:
            # A file without a log says so after each change: read it whole, at most once
            # per interval, as a source without a feed is.
            if time.monotonic() - self._last_full >= self.interval:
                await self.poll_once()
        elif isinstance(changes, RowChanges):
            self._at = self._position()
            self.apply(changes)
            self._expire()
        else:
            self._expire()

    async def reconcile_once(self) -> bool:
        """Check a feed against a full read; True when the source answered.

        The feed reads its pending changes and every row from one snapshot, so whatever
        the rows show beyond those changes was missed: nothing races the comparison.
        """
        assert isinstance(self.collector, ChangeFeed)
        answer = await self._ask(self.collector.reconcile())
        if isinstance(answer, Failed):
            return False
        pending, rows = answer
        position = self._position()
        self._read_whole = True
        if pending is None:  # lost track meanwhile: this is a plain full read
            await self._take_read(rows, position)
            return True
        self._at = position
        self.apply(pending)
        missed = full_read_changes(self._rows, rows)
        if missed:
            self.hub.count_reconcile_mismatch(self.table, len(missed))
            if not self._mismatch_logged:
                self._mismatch_logged = True
                log.warning(
                    "%s reconcile found %d rows the change feed missed (a bug in the"
                    " source; logged once)",
                    self.name,
                    len(missed),
                )
            self.apply(missed)
        self._expire()
        return True

    async def _ask(
        self,
        call: Awaitable[T],
        healthy: Callable[[T], bool] = lambda answer: True,
        within: float | None = None,
    ) -> T | Failed:
        """Await a source call within the timeout; report a failure, or health when the
        answer is one that ``healthy`` says proves it."""
        started = time.monotonic()
        try:
            # Not wait_for: on 3.11 it can swallow a cancellation that lands as the call
            # returns, and the runner would then never stop (a hung shutdown).
            async with asyncio.timeout(within or self.timeout):
                result = await call
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any source failure is reported, not raised
            self.hub.observe_read(self.table, time.monotonic() - started, False)
            error = describe(exc)
            if self.hub.source_ok(self.table, self.node):
                log.warning("%s source failed: %s", self.name, error)
            self.hub.set_source(self.table, False, error, self.node)
            self._expire()  # expiry goes on while the source is down
            return FAILED
        self.hub.observe_read(self.table, time.monotonic() - started, healthy(result))
        if not healthy(result):
            return result
        if not self.hub.source_ok(self.table, self.node):
            log.info("%s source recovered", self.name)
        self.hub.set_source(self.table, True, None, self.node)
        return result

    # --- taking changes -----------------------------------------------------------------

    def apply(self, changes: RowChanges) -> None:
        """Take a source's changes (from its feed, a full read or a hint) and publish what
        they change in the visible table. O(rows changed)."""
        shown: dict[str, Row] = {}
        gone = self._take_deleted(changes.delete)
        self._take_upserted(changes.upsert.items(), shown, gone, self._clock())
        self.hub.publish_changes(self.table, shown, gone, self.node, self._at)

    def _position(self) -> str | None:
        """Where a source that can be continued (``Resumable``) stands, asked as its answer
        arrives; it becomes ``_at`` when the rows of that answer are published."""
        return None if self._continued is None else self._continued.position()

    async def _take_read(self, rows: Rows, position: str | None) -> None:
        """Take a full read: what it changes is worked out and taken READ_TURN rows at a
        time with the loop running between, then published as one diff (a first read into
        a cluster's stream is one snapshot, not a thousand entries: publisher.py).

        Only rows the hub does not already hold are kept for that diff, so a cluster's new
        leader, whose hub holds the cluster's state but whose runner holds nothing yet,
        publishes only what really changed. Hints arriving meanwhile are newer than the
        read: they wait for its end (``_flush_hints``) rather than be overwritten by it."""
        self._reading = True
        try:
            now, old = self._clock(), self._rows
            # A copy to walk (the source may change its own dict meanwhile), walked by its
            # keys: turns of (key, row) pairs are objects the cyclic GC tracks (a tuple
            # holding a dict), and thousands alive at once set off full collections, each
            # a walk of every million-row dict in the process with the GIL held (1.7 s of a
            # 2.1 s walk of a million rows, measured; a new cluster leader lost its lease).
            listed = dict(rows)
            keys = iter(listed)  # our own copy: nothing changes it while the turns run
            gone = self._take_deleted(old.keys() - listed.keys())
            shown: dict[str, Row] = {}
            held = self.hub.tables[self.table].rows
            while turn := list(islice(keys, READ_TURN)):
                changed = [k for k in turn if (b := old.get(k)) is not (r := listed[k]) and b != r]
                taken: dict[str, Row] = {}
                self._take_upserted(((k, listed[k]) for k in changed), taken, gone, now)
                for key, row in taken.items():
                    before = held.get(key)
                    if before is not row and before != row:
                        shown[key] = row
                if len(rows) > READ_TURN:
                    await asyncio.sleep(0)
            self._at = position  # only now are the rows it read published
            self.hub.publish_changes(self.table, shown, gone, self.node, self._at)
        finally:
            self._reading = False
        self._flush_hints()

    def _take_deleted(self, keys: Iterable[str]) -> set[str]:
        """Forget rows the source no longer lists; the hub's keys of those it had."""
        gone: set[str] = set()
        for key in keys:
            if self._rows.pop(key, None) is not None:
                self._expiry.discard(key)
                gone.add(self.prefix + key)
        return gone

    def _take_upserted(
        self, rows: Iterable[tuple[str, Row]], shown: dict[str, Row], gone: set[str], now: float
    ) -> None:
        """Keep rows the source lists and their expiry; the visible ones go in ``shown``
        (as the hub holds them), those whose time has passed in ``gone``."""
        prefix = self.prefix
        for key, row in rows:
            self._rows[key] = row
            when = self._expires(row)
            self._expiry.set(key, when)
            if when is not None and when <= now:
                gone.add(prefix + key)  # listed, but its time has passed: not shown
            elif self.node is None:
                shown[key] = row
            else:  # a copy of a changed row only: unchanged ones never get here
                shown[prefix + key] = {**row, "id": prefix + key, "node": self.node}

    def apply_soon(self, changes: RowChanges) -> None:
        """Take a hint's changes now when none were applied in the last ``HINT_BATCH``,
        else at its end, merged with others arriving meanwhile (a later hint about a row
        wins, a delete included)."""
        pending = self._pending_hints
        if pending is None:
            loop = asyncio.get_running_loop()
            due = self._hints_published + HINT_BATCH
            if loop.time() >= due and not self._reading:
                self._hints_published = loop.time()
                self.apply(changes)
                return
            pending = self._pending_hints = RowChanges()
            loop.call_at(due, self._flush_hints)
        pending.update(changes)

    def _flush_hints(self) -> None:
        if self._reading:
            return  # after the read (``_take_read``)
        pending, self._pending_hints = self._pending_hints, None
        if pending:
            self._hints_published = asyncio.get_running_loop().time()
            self.apply(pending)

    def _expires(self, row: Row) -> float | None:
        if self.expires_field is None:
            return None
        value = row.get(self.expires_field)
        if not isinstance(value, str):
            return None
        try:
            return parse_iso(value)
        except ValueError:
            return None  # unreadable expiry: keep the row rather than lose it

    def _expire(self) -> None:
        due = self._expiry.due(self._clock())
        if due:
            gone = [self.prefix + key for key in due] if self.prefix else due
            self.hub.publish_changes(self.table, {}, gone, self.node, self._at)

    async def _sleep(self, next_poll: float) -> None:
        """Sleep until the next poll, waking to drop rows at their expiry meanwhile."""
        while True:
            now = time.monotonic()
            if now >= next_poll:
                return
            wall_wait = self._expiry.next() - self._clock()
            wait = min(next_poll - now, max(wall_wait, 0.0) + 0.001)
            await asyncio.sleep(wait)
            self._expire()

    async def watch(self) -> None:
        """Run the collector's optional hint stream, restarting it with capped backoff."""
        if not isinstance(self.collector, HintStream):
            return
        watch = self.collector.watch
        # Unlike a supervised task, a hint stream that returns (link lost) starts again too.
        # A reconnect is one TCP connect: capped at 5 s, a restarted SIP server's hints are
        # back within seconds (a supervised task's crash loop keeps the 30 s cap).
        backoff = Backoff(cap=5.0, healthy=30.0)
        while True:
            started = time.monotonic()
            try:
                await watch(self.apply_soon)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - hints are optional; polling goes on
                log.warning("%s hints failed: %s", self.name, describe(exc))
            await asyncio.sleep(backoff.after(time.monotonic() - started))

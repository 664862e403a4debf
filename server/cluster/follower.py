"""Every instance's side: keep the hub equal to the cluster's state, at the leader's seq.

A table is first loaded from its snapshot (rows at a seq, and the stream id after which
to read), then followed through its stream (``XREAD BLOCK``): each diff entry is applied
with ``Hub.apply_remote`` at its seq. A gap (the stream trimmed past this instance while
it was away) reloads the snapshot; a new entry with a seq already held means Redis lost
history (epochs.py). Redis unreachable: every table keeps its rows and is marked stale
("cluster state unavailable: …"), and the connections pooled before are dropped (a dead
one would fail the first command after Redis returns, and cost the leader its lease);
once Redis answers again the follower re-joins by itself, reloading only what moved on,
and clients are sent snapshots only when what they hold is not the cluster's past (a new
epoch, or rows this instance never saw).

The epoch is the cluster's, created once in Redis, and replaced when Redis lost part of
its history (epochs.py): restarted empty, or restored from a save older than what this
instance took. The seqs of the old one cannot be trusted any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

from ..hub import Hub
from ..protocol import Source
from ..supervise import Backoff
from ..times import now_iso
from . import entries, epochs
from .keys import Keys

log = logging.getLogger("rtm.cluster")

BLOCK_MS = 1000  # an XREAD waits this long for news; the epoch is checked in between
READ_COUNT = 1000  # entries per stream per XREAD
CATCH_UP = 2.0  # seconds a new leader waits for its follower to reach the streams' end
# Parts of a snapshot (~2.5 MB each, entries.py) per HMGET. A million rows in one HGETALL
# kept Redis busy for a second and its reply outlasted redis-py's 5 s timeout on a loaded
# instance (bench/cluster.py), which then started over.
SNAPSHOT_READ = 8


class Follower:
    """Keeps ``hub`` equal to the cluster's state: snapshots, then the streams after them."""

    def __init__(self, redis: Any, keys: Keys, hub: Hub) -> None:
        self.redis, self.keys, self.hub = redis, keys, hub
        self.ids: dict[str, str] = {}  # table -> id of the last entry taken
        self.loaded: set[str] = set()  # tables loaded under the current epoch
        self.missing: set[str] = set()  # tables with no snapshot under it (a new cluster)
        self.available = False
        self.hops: deque[float] = deque(maxlen=10_000)  # seconds, leader's XADD -> here
        self._sources: dict[str, Source] = {}  # the cluster's last word on each source
        self._bad_logged = False
        self._outage_logged = False  # one warning per outage, not one per retry
        self._moved = asyncio.Event()  # set after each read of the streams

    # --- joining ------------------------------------------------------------------------

    async def sync(self) -> None:
        """(Re)join: take the cluster's epoch, then load what this hub lacks."""
        epoch = await epochs.current(self.redis, self.keys)
        if epoch == self.hub.epoch:
            taken = {table: self.ids[table] for table in self.loaded if table in self.ids}
            lost = await epochs.lost_table(self.redis, self.keys, taken)
            if lost is not None:
                log.warning("%s: Redis lost stream entries this instance took", lost)
                epoch = await epochs.replace(self.redis, self.keys, epoch)
        if epoch != self.hub.epoch:
            if self.loaded or self.hub.stats.clients:
                log.warning(
                    "cluster epoch is now %s (was %s): clients resync", epoch, self.hub.epoch
                )
            self.hub.epoch = epoch
            self.loaded.clear()
            self.hub.resync_clients()
            for table in self.hub.tables:  # what the old history's ids named is gone
                last = await self.redis.xrevrange(self.keys.stream(table), count=1)
                self.ids[table] = str(last[0][0]) if last else "0-0"
        for table in self.hub.tables:
            if table not in self.loaded:
                await self._load(table)

    def ready_to_lead(self) -> bool:
        """True when every table is the cluster's (or the cluster has none yet)."""
        return self.available and self.loaded | self.missing >= set(self.hub.tables)

    async def _load(self, table: str) -> None:
        key = self.keys.snapshot(table)
        while True:
            meta_text = await self.redis.hget(key, "meta")
            meta = None if meta_text is None else entries.decode_meta(meta_text)
            if meta is None or meta.epoch != self.hub.epoch:
                self.missing.add(table)  # the leader writes one first thing
                return
            fields = await self._read_parts(key, meta_text, meta.parts)
            if fields is not None:
                break  # else the leader replaced it meanwhile: read the new one
        rows = await asyncio.to_thread(entries.decode_rows, fields, meta.parts)
        self.hub.load_remote(table, meta.seq, rows, meta.position)
        self.ids[table] = meta.stream_id
        self.missing.discard(table)
        self.loaded.add(table)
        self._take_source(table, entries.source_from(table, meta.health))

    async def _read_parts(self, key: str, meta_text: str, parts: int) -> dict[str, str] | None:
        """A snapshot's parts, SNAPSHOT_READ per command, each read beside its meta: None
        when that changed (the leader renamed a new snapshot over it meanwhile)."""
        fields: dict[str, str] = {}
        names = [entries.part_name(index) for index in range(parts)]
        for start in range(0, parts, SNAPSHOT_READ):
            batch = names[start : start + SNAPSHOT_READ]
            meta_now, *values = await self.redis.hmget(key, ["meta", *batch])
            if meta_now != meta_text or None in values:
                return None
            fields.update(zip(batch, values, strict=True))
        return fields

    # --- following ----------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the cluster until cancelled, re-joining by itself after Redis failures."""
        backoff = Backoff(first=0.2, cap=2.0, healthy=10.0)
        while True:
            started = time.monotonic()
            try:
                await self.sync()
                self._now_available()
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis down or garbage: stale, retry
                self._now_unavailable(exc)
                with contextlib.suppress(Exception):
                    await self.redis.connection_pool.disconnect(inuse_connections=False)
            await asyncio.sleep(backoff.after(time.monotonic() - started))

    async def _follow(self) -> None:
        while True:
            for table in set(self.hub.tables) - self.loaded:
                await self._load(table)
            streams = {self.keys.stream(t): self.ids.get(t, "0-0") for t in self.loaded}
            if streams:
                answer = await self.redis.xread(streams, count=READ_COUNT, block=BLOCK_MS)
                try:
                    for stream, items in answer or ():
                        table = stream[len(self.keys.stream("")) :]
                        for stream_id, fields in items:
                            self._take(table, stream_id, fields)
                except epochs.HistoryLost as exc:
                    log.warning("%s: the cluster's history was rewritten", exc)
                    await epochs.replace(self.redis, self.keys, self.hub.epoch)
                self._moved.set()
            else:
                await asyncio.sleep(BLOCK_MS / 1000)  # waiting for the leader's snapshots
            if str(await self.redis.get(self.keys.epoch)) != self.hub.epoch:
                await self.sync()

    def _take(self, table: str, stream_id: str, fields: dict[str, str]) -> None:
        if table not in self.loaded:
            return  # a gap reloads it first
        self.ids[table] = stream_id
        try:
            entry = entries.decode(fields)
        except (KeyError, ValueError) as exc:
            if not self._bad_logged:
                self._bad_logged = True
                log.warning("skipping a stream entry rtm did not write (%s; logged once)", exc)
            return
        if entry.epoch != self.hub.epoch:
            return  # the tail of an older epoch
        if entry.kind == entries.SOURCE:
            assert entry.health is not None
            self._take_source(table, entries.source_from(table, entry.health))
            return
        state = self.hub.tables[table]
        if entry.kind == entries.RELOAD:
            if entry.seq > state.seq:  # its rows are in the snapshot (written before it)
                self.loaded.discard(table)
            return
        if entry.seq <= state.seq:
            # A new entry (read after the last one taken) numbered as one taken before: a
            # leader that never had them (Redis lost them) numbers on from an older seq.
            raise epochs.HistoryLost(f"{table}: entry {stream_id} is seq {entry.seq} again")
        if entry.seq != state.seq + 1:
            log.info("%s: seq %d after %d, reloading its snapshot", table, entry.seq, state.seq)
            self.loaded.discard(table)
            return
        self.hops.append(time.time() - entry.sent)
        self.hub.apply_remote(table, entry.seq, entry.upsert, entry.delete, entry.position)

    def _take_source(self, table: str, source: Source) -> None:
        self._sources[table] = source
        if self.available:
            self.hub.set_remote_source(table, source)
        if source.read or not source.ok:
            self.hub.mark_polled(table)  # what the leader read is a reading here too

    async def caught_up(self) -> None:
        """Return once every loaded table's stream was read to its end (a new leader
        continues from the last seq there); TimeoutError after CATCH_UP seconds."""
        ends: dict[str, str] = {}
        for table in self.loaded:
            last = await self.redis.xrevrange(self.keys.stream(table), count=1)
            if last:
                ends[table] = last[0][0]
        async with asyncio.timeout(CATCH_UP):
            while any(
                table in self.loaded
                and epochs.order(self.ids.get(table, "0-0")) < epochs.order(end)
                for table, end in ends.items()
            ):
                self._moved.clear()
                await self._moved.wait()

    # --- Redis lost and found -----------------------------------------------------------

    def _now_available(self) -> None:
        if self.available:
            return
        self.available, self._outage_logged = True, False
        log.info("cluster state available (epoch %s)", self.hub.epoch)
        for table, source in self._sources.items():
            if table in self.loaded:
                self.hub.set_remote_source(table, source)

    def _now_unavailable(self, exc: BaseException) -> None:
        reason = f"cluster state unavailable: {str(exc).strip() or type(exc).__name__}"[:300]
        if not self._outage_logged:
            self._outage_logged = True
            log.warning("%s", reason)
        self.available = False
        for name, state in self.hub.tables.items():
            if state.source.error != reason:
                held = self._sources.get(name, state.source)
                stale = Source(name, False, reason, now_iso(), read=held.read, nodes=held.nodes)
                self.hub.set_remote_source(name, stale)
            # A failed reading, as a source's is: an instance started while Redis is down
            # tells its clients so at once rather than keeping them FIRST_POLL_WAIT.
            self.hub.mark_polled(name)

"""The leader's side: each diff its collectors publish goes to the table's Redis Stream.

The collectors publish into a hub of the leader's own (``source_hub``) that no client
reads; its ``on_publish`` queues the diff (complete rows) and this task writes the queue
in pipelined batches, each entry a script that checks the lease's token before ``XADD``
(``MAXLEN ~`` bounds every stream). Nothing is shown to any client before Redis has it —
the leader's clients read the stream like everyone's — so a leader that dies or loses
Redis never leaves a client holding a diff the others do not know.

Beside each stream, a snapshot (rows at a seq, and the stream id that seq was written
at) is rewritten once half of MAXLEN entries came after it (or SNAPSHOT_AGE seconds after
a change), so the stream always reaches back to it: a joining instance loads it and reads
the stream after. Sized by the stream, not the clock: a snapshot of a million rows is
~250 MB for Redis to take and the leader to encode, which every 10 s stalled the leader
past its lease (bench/cluster.py at 200,000 contacts: leadership flapping, no diff shown).
Source health travels as entries too, when it changes.

A diff of more than BIG_DIFF rows (a first read: a million rows are ~250 MB) never goes
into the stream: every instance would have to read and decode it in one piece, and Redis
took over 5 s to answer anyone meanwhile (bench/cluster.py at a million contacts: the
leader lost its lease, and leadership moved six times in a minute). The table is written
as its snapshot instead, then a small RELOAD entry at that seq: a follower behind it loads
the snapshot (decoded off its loop) and reads the stream on after it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Collection
from typing import Any

from ..diff import Changes
from ..hub import Hub, Table
from ..rows import Row
from . import entries
from .keys import Keys

MAXLEN = 10_000  # entries kept per stream (approximately: MAXLEN ~)
SNAPSHOT_EVERY = MAXLEN // 2  # entries after the snapshot: the stream still reaches it
SNAPSHOT_AGE = 300.0  # seconds after the first diff not in the snapshot
MAX_PENDING = 100_000  # diffs queued for Redis; more and the leader steps down
IDLE_WAKE = 0.2  # seconds: how often sources are checked for news without a diff
BIG_DIFF = 50_000  # rows; a bigger diff goes out as a snapshot and a RELOAD entry

FENCED_XADD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED lease lost') end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
"""
# A snapshot is written as a draft, a part per command, then renamed over the last one in
# one fenced step. Its 250 MB as the arguments of one script blocked Redis for 2.2 s (its
# slow log, bench/cluster.py at a million contacts): every instance's commands timed out
# and the leader lost its lease.
FENCED_RENAME = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED lease lost') end
redis.call('RENAME', KEYS[2], KEYS[3])
return redis.call('PERSIST', KEYS[3])
"""
DRAFT_TTL_MS = 120_000  # a leader that dies while writing leaves no draft for long
DRAFT_BATCH = 8  # parts (~2.5 MB each) per round trip


# A diff queued for Redis: (table, seq, upsert, delete, sent, the source's position as of
# it); upsert None when it is too big for the stream and goes out as a snapshot instead.
Pending = tuple[str, int, dict[str, Row] | None, list[str], float, str | None]


class PublishFailed(Exception):
    """The leader can no longer publish (queue overflow); it steps down."""


class Publisher:
    """Writes a leader's diffs, source changes and snapshots to Redis, fenced by its lease."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        token: str,
        epoch: str,
        source_hub: Hub,
        stream_ids: dict[str, str],
    ) -> None:
        self.redis, self.keys, self.token, self.epoch = redis, keys, token, epoch
        self.hub = source_hub
        self._xadd = redis.register_script(FENCED_XADD)
        self._rename = redis.register_script(FENCED_RENAME)
        self._pending: deque[Pending] = deque()
        self._wakeup = asyncio.Event()
        self._overflow = False
        self.stream_ids = dict(stream_ids)  # table -> id of the last entry written
        self._source_versions = dict.fromkeys(source_hub.tables, -1)  # -1: send at once
        self._unsnapshotted = dict.fromkeys(source_hub.tables, 0)
        self._dirty_since: dict[str, float] = {}
        source_hub.on_publish = self.on_publish

    def on_publish(self, state: Table, changes: Changes) -> None:
        """The hub's listener: queue the diff's complete rows. Never awaits."""
        if len(self._pending) >= MAX_PENDING:
            self._overflow = True
        elif len(changes) > BIG_DIFF:
            self._pending.append((state.name, state.seq, None, [], time.time(), None))
        else:
            upsert = {change["id"]: state.rows[change["id"]] for change in changes.upsert}
            self._pending.append(
                (state.name, state.seq, upsert, changes.delete, time.time(), state.position)
            )
        self._wakeup.set()

    async def run(self, snapshot_first: Collection[str]) -> None:
        """Publish until cancelled; raises when Redis or the lease fails (step down).

        ``snapshot_first``: tables with no snapshot under the epoch (a new cluster, a new
        epoch), which no instance can load until one is written; one whose first diffs are
        queued already has it in the next round, not SNAPSHOT_AGE later."""
        for table in snapshot_first:
            if not await self._snapshot(table):
                self._dirty_since[table] = time.monotonic() - SNAPSHOT_AGE
        while True:
            try:
                async with asyncio.timeout(IDLE_WAKE):
                    await self._wakeup.wait()
            except TimeoutError:
                pass
            self._wakeup.clear()
            if self._overflow:
                raise PublishFailed(f"more than {MAX_PENDING} diffs waiting for Redis")
            await self._flush()
            await self._send_sources()
            for table in self.hub.tables:
                if self._snapshot_due(table):
                    await self._snapshot(table)

    async def _flush(self) -> None:
        while self._pending:
            batch: list[Pending] = []
            while self._pending and len(batch) < 500 and self._pending[0][2] is not None:
                batch.append(self._pending.popleft())
            if batch:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for table, seq, upsert, delete, sent, position in batch:
                        assert upsert is not None
                        fields = entries.diff_fields(
                            self.epoch, seq, upsert, delete, sent, position
                        )
                        await self._add(table, fields, pipe)
                    ids = await pipe.execute()
                for (table, *_), stream_id in zip(batch, ids, strict=True):
                    self.stream_ids[table] = str(stream_id)
                    self._unsnapshotted[table] += 1
                    self._dirty_since.setdefault(table, time.monotonic())
            if self._pending and self._pending[0][2] is None:
                await self._reload(self._pending[0][0])

    async def _reload(self, table: str) -> None:
        """A diff too big for the stream: the table as it is now becomes its snapshot, and
        a RELOAD entry at its seq tells the followers. Every diff of it still queued is in
        that snapshot (its rows are the newest), so they are dropped; diffs published while
        the snapshot is written come after it and are sent as usual."""
        self._pending = deque(item for item in self._pending if item[0] != table)
        seq = await self._write_snapshot(table)
        fields = entries.reload_fields(self.epoch, seq, time.time())
        self.stream_ids[table] = str(await self._add(table, fields, self.redis))

    async def _add(self, table: str, fields: dict[str, str], client: Any) -> Any:
        args = [self.token, MAXLEN, *(item for pair in fields.items() for item in pair)]
        return await self._xadd(
            keys=[self.keys.lease, self.keys.stream(table)], args=args, client=client
        )

    async def _send_sources(self) -> None:
        for table, state in self.hub.tables.items():
            if state.source_version != self._source_versions[table]:
                self._source_versions[table] = state.source_version
                fields = entries.source_fields(self.epoch, state.seq, state.source, time.time())
                self.stream_ids[table] = str(await self._add(table, fields, self.redis))

    def _snapshot_due(self, table: str) -> bool:
        dirty = self._dirty_since.get(table)
        return dirty is not None and (
            self._unsnapshotted[table] >= SNAPSHOT_EVERY or time.monotonic() - dirty >= SNAPSHOT_AGE
        )

    async def _snapshot(self, table: str) -> bool:
        """Write the table's snapshot: only when every diff of it is in the stream (the
        queue is empty), so its seq is the stream id's. False when it had to wait."""
        if any(name == table for name, *_ in self._pending):
            return False  # next round
        await self._write_snapshot(table)
        return True

    async def _write_snapshot(self, table: str) -> int:
        """Write the table as it is now, at the stream id last written; returns its seq."""
        state = self.hub.tables[table]
        seq, rows, position = state.seq, dict(state.rows), state.position
        stream_id = self.stream_ids.get(table, "0-0")
        health = state.source.health()
        meta = entries.SnapshotMeta(self.epoch, seq, stream_id, health, position=position)
        # Rows are replaced, never mutated: the copy encodes off the loop consistently.
        fields = list((await asyncio.to_thread(entries.snapshot_fields, meta, rows)).items())
        draft = self.keys.snapshot_draft(table, self.token)
        await self.redis.delete(draft)
        for start in range(0, len(fields), DRAFT_BATCH):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(draft, mapping=dict(fields[start : start + DRAFT_BATCH]))
                pipe.pexpire(draft, DRAFT_TTL_MS)
                await pipe.execute()
        keys = [self.keys.lease, draft, self.keys.snapshot(table)]
        await self._rename(keys=keys, args=[self.token])
        self._unsnapshotted[table] = 0
        self._dirty_since.pop(table, None)
        return seq

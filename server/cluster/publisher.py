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

FENCED_XADD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED lease lost') end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
"""
FENCED_HSET = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED lease lost') end
return redis.call('HSET', KEYS[2], 'meta', ARGV[2], 'rows', ARGV[3])
"""


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
        self._hset = redis.register_script(FENCED_HSET)
        self._pending: deque[tuple[str, int, dict[str, Row], list[str], float]] = deque()
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
        else:
            upsert = {change["id"]: state.rows[change["id"]] for change in changes.upsert}
            self._pending.append((state.name, state.seq, upsert, changes.delete, time.time()))
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
            batch = [self._pending.popleft() for _ in range(min(len(self._pending), 500))]
            async with self.redis.pipeline(transaction=False) as pipe:
                for table, seq, upsert, delete, sent in batch:
                    fields = entries.diff_fields(self.epoch, seq, upsert, delete, sent)
                    await self._add(table, fields, pipe)
                ids = await pipe.execute()
            for (table, *_), stream_id in zip(batch, ids, strict=True):
                self.stream_ids[table] = str(stream_id)
                self._unsnapshotted[table] += 1
                self._dirty_since.setdefault(table, time.monotonic())

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
        state = self.hub.tables[table]
        if any(name == table for name, *_ in self._pending):
            return False  # next round
        seq, rows = state.seq, dict(state.rows)
        stream_id = self.stream_ids.get(table, "0-0")
        meta = entries.SnapshotMeta(self.epoch, seq, stream_id, state.source.health())
        # Rows are replaced, never mutated: the copy encodes off the loop consistently.
        fields = await asyncio.to_thread(entries.snapshot_fields, meta, rows)
        args = [self.token, fields["meta"], fields["rows"]]
        await self._hset(keys=[self.keys.lease, self.keys.snapshot(table)], args=args)
        self._unsnapshotted[table] = 0
        self._dirty_since.pop(table, None)
        return True

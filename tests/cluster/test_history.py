"""A follower (server/cluster/follower.py) on a real Redis whose history is not what it
took: restored from an older save, or continued by a leader that never had the last
entries. Either way the cluster's epoch is replaced, never a diff silently skipped or
applied under a seq that meant something else."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio

from server.cluster import entries
from server.cluster.follower import Follower
from server.cluster.keys import Keys
from server.hub import Hub
from server.protocol import Source
from server.times import now_iso

from ..live_server import UNIT
from ..services import RedisServer
from ..waiting import cancelled, eventually

pytestmark = pytest.mark.asyncio

EPOCH = "1-history"
KEYS = Keys()
STREAM = KEYS.stream("accounts")


def row(key: str) -> dict[str, Any]:
    return {"id": key, "username": key}


async def publish(client: Any, seq: int, key: str) -> None:
    """What a leader writes for diff ``seq``: one row upserted."""
    fields = entries.diff_fields(EPOCH, seq, {key: row(key)}, [], time.time())
    await client.xadd(STREAM, fields)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def following(server: RedisServer) -> AsyncIterator[tuple[Any, Hub, Follower]]:
    """A cluster of one table at seq 3 in Redis, and a follower that took it."""
    client = redis.asyncio.from_url(server.url, decode_responses=True)
    health = Source("accounts", True, None, now_iso()).health()
    await client.set(KEYS.epoch, EPOCH)
    meta = entries.SnapshotMeta(EPOCH, 0, "0-0", health)
    await client.hset(KEYS.snapshot("accounts"), mapping=entries.snapshot_fields(meta, {}))  # type: ignore[arg-type]
    for seq in (1, 2, 3):
        await publish(client, seq, f"r{seq}")
    hub = Hub(["accounts"])
    follower = Follower(client, KEYS, hub)
    task = asyncio.create_task(follower.run())
    try:
        await eventually(lambda: hub.tables["accounts"].seq == 3, 10 * UNIT, "seq 3 taken")
        assert hub.epoch == EPOCH
        yield client, hub, follower
    finally:
        await cancelled([task])
        await client.aclose()


async def test_redis_restored_from_before_entries_it_took_is_a_new_epoch(
    redis_server: RedisServer,
) -> None:
    async with following(redis_server) as (client, hub, follower):
        redis_server.save()  # Redis's last save: seq 3
        await publish(client, 4, "r4")
        await publish(client, 5, "r5")
        await eventually(lambda: hub.tables["accounts"].seq == 5, 10 * UNIT, "seq 5 taken")
        redis_server.stop(signal.SIGKILL)
        await eventually(lambda: not hub.tables["accounts"].source.ok, 10 * UNIT, "stale")
        redis_server.start()  # seqs 4 and 5 are gone from Redis, not from this hub
        await eventually(lambda: hub.epoch != EPOCH, 10 * UNIT, "a new epoch")
        assert await client.get(KEYS.epoch) == hub.epoch
        # Until a leader publishes the new epoch's snapshot, it serves what it held.
        assert "accounts" in follower.missing
        assert set(hub.tables["accounts"].rows) == {"r1", "r2", "r3", "r4", "r5"}


async def test_a_new_entry_with_a_seq_already_taken_is_a_new_epoch(
    redis_server: RedisServer,
) -> None:
    async with following(redis_server) as (client, hub, follower):
        # A leader that never had seq 3 (Redis lost it while this instance held it) numbers
        # its next diff 3 again: this instance must not skip it as "held already".
        await publish(client, 3, "other")
        await eventually(lambda: hub.epoch != EPOCH, 10 * UNIT, "a new epoch")
        assert await client.get(KEYS.epoch) == hub.epoch
        assert "other" not in hub.tables["accounts"].rows
        assert "accounts" in follower.missing, "it waits for the new leader's snapshot"

"""A diff too big for a Redis Stream (a leader's first read of a million rows is ~250 MB)
goes out as the table's snapshot and a small RELOAD entry: no instance reads it as one
stream entry, and every follower still ends equal to the leader, at the leader's seq."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio

from server.cluster import entries, publisher
from server.cluster import follower as following_module
from server.cluster.follower import Follower
from server.cluster.keys import Keys
from server.cluster.publisher import Publisher
from server.hub import Hub
from server.protocol import Source
from server.times import now_iso

from ..live_server import UNIT
from ..services import RedisServer
from ..waiting import cancelled, eventually

pytestmark = pytest.mark.asyncio

EPOCH = "1-big"
TOKEN = "1:test"
KEYS = Keys()
BIG = 5  # rows: the threshold, made small


def rows(*keys: str, agent: str = "a") -> dict[str, dict[str, Any]]:
    return {key: {"id": key, "username": key, "user_agent": agent} for key in keys}


@contextlib.asynccontextmanager
async def leading(server: RedisServer) -> AsyncIterator[tuple[Any, Hub, Hub]]:
    """A leader's source hub publishing through a Publisher, and a follower's served hub."""
    client = redis.asyncio.from_url(server.url, decode_responses=True)
    await client.set(KEYS.epoch, EPOCH)
    await client.set(KEYS.lease, TOKEN)
    source_hub, served = Hub(["accounts"]), Hub(["accounts"])
    source_hub.epoch = EPOCH
    writer = Publisher(client, KEYS, TOKEN, EPOCH, source_hub, {})
    follower = Follower(client, KEYS, served)
    tasks = [asyncio.create_task(writer.run({"accounts"})), asyncio.create_task(follower.run())]
    try:
        await eventually(lambda: follower.ready_to_lead(), 10 * UNIT, "follower joined")
        yield client, source_hub, served
    finally:
        await cancelled(tasks)
        await client.aclose()


async def stream_entries(client: Any) -> list[entries.Entry]:
    return [entries.decode(fields) for _, fields in await client.xrange(KEYS.stream("accounts"))]


async def test_a_big_diff_is_a_snapshot_and_a_reload_and_small_ones_follow_it(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher, "BIG_DIFF", BIG)
    async with leading(redis_server) as (client, source_hub, served):
        first = rows(*(f"r{n}" for n in range(20)))
        source_hub.publish_state("accounts", first)  # a first read: 20 rows, over BIG
        # Small diffs right behind it, some queued before the snapshot is written.
        source_hub.publish_changes("accounts", rows("r1", agent="b"))
        source_hub.publish_changes("accounts", rows("new"), delete=["r2"])
        want = source_hub.tables["accounts"]

        def equal() -> bool:
            state = served.tables["accounts"]
            return state.seq == want.seq and state.rows == want.rows

        await eventually(equal, 10 * UNIT, "the follower equal to the leader")
        written = await stream_entries(client)
        diffs = [e for e in written if e.kind == entries.DIFF]
        assert all(len(e.upsert) + len(e.delete) <= BIG for e in diffs)
        assert [e.kind for e in written].count(entries.RELOAD) == 1
        reload = next(e for e in written if e.kind == entries.RELOAD)
        assert reload.seq >= 1 and [e.seq for e in diffs] == list(
            range(reload.seq + 1, want.seq + 1)
        )

        # Afterwards a small change travels as a diff, at the next seq.
        source_hub.publish_changes("accounts", rows("r3", agent="c"))
        await eventually(equal, 10 * UNIT, "the small change followed")
        last = (await stream_entries(client))[-1]
        assert (last.kind, last.seq, set(last.upsert)) == (entries.DIFF, want.seq, {"r3"})


async def test_a_follower_joining_after_the_reload_starts_from_the_snapshot(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher, "BIG_DIFF", BIG)
    async with leading(redis_server) as (client, source_hub, served):
        source_hub.publish_state("accounts", rows(*(f"r{n}" for n in range(20))))
        source_hub.publish_changes("accounts", rows("r1", agent="b"))
        want = source_hub.tables["accounts"]
        await eventually(
            lambda: served.tables["accounts"].seq == want.seq, 10 * UNIT, "all published"
        )
        late = Hub(["accounts"])
        follower = Follower(client, KEYS, late)
        task = asyncio.create_task(follower.run())
        try:
            await eventually(
                lambda: (
                    late.tables["accounts"].rows == want.rows
                    and late.tables["accounts"].seq == want.seq
                ),
                10 * UNIT,
                "the late follower equal to the leader",
            )
        finally:
            await cancelled([task])


async def test_a_snapshot_is_stored_in_parts_and_a_smaller_one_leaves_none_behind(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No field of a million rows (one 250 MB string is seconds of GIL, entries.py)."""
    monkeypatch.setattr(publisher, "BIG_DIFF", BIG)
    monkeypatch.setattr(entries, "SNAPSHOT_PART", 3)
    monkeypatch.setattr(following_module, "SNAPSHOT_READ", 2)  # read in four commands
    async with leading(redis_server) as (client, source_hub, served):
        source_hub.publish_state("accounts", rows(*(f"r{n}" for n in range(20))))
        want = source_hub.tables["accounts"]

        async def parts() -> list[str]:
            return sorted(await client.hkeys(KEYS.snapshot("accounts")))

        def loaded() -> bool:
            state = served.tables["accounts"]
            return state.seq == want.seq and state.rows == want.rows

        await eventually(loaded, 10 * UNIT, "the follower loaded the parts")
        assert await parts() == ["meta", *(f"rows:{n}" for n in range(7))]
        source_hub.publish_state("accounts", rows("r0", "r1"))  # 18 deleted: a reload
        await eventually(loaded, 10 * UNIT, "the follower loaded the smaller snapshot")
        assert await parts() == ["meta", "rows:0"]
        # Written as a draft and renamed: nothing left beside it, and it never expires.
        assert await client.keys("rtm:snapshot-draft:*") == []
        assert await client.ttl(KEYS.snapshot("accounts")) == -1


async def test_a_snapshot_replaced_while_a_follower_reads_its_parts_is_read_again(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts come a few per command (follower.py): between two, the leader may rename a
    new snapshot over the one being read; the follower must not mix the two."""
    monkeypatch.setattr(entries, "SNAPSHOT_PART", 3)
    monkeypatch.setattr(following_module, "SNAPSHOT_READ", 1)
    client = redis.asyncio.from_url(redis_server.url, decode_responses=True)
    health = Source("accounts", True, None, now_iso()).health()

    async def write(seq: int, rows_at_seq: dict[str, dict[str, Any]]) -> None:
        meta = entries.SnapshotMeta(EPOCH, seq, "0-0", health)
        fields = entries.snapshot_fields(meta, rows_at_seq)
        async with client.pipeline(transaction=True) as pipe:  # whole, as the RENAME is
            pipe.delete(KEYS.snapshot("accounts"))
            pipe.hset(KEYS.snapshot("accounts"), mapping=fields)
            await pipe.execute()

    try:
        await client.set(KEYS.epoch, EPOCH)
        keys = [f"r{n}" for n in range(9)]  # three parts
        newer = rows(*keys, agent="b")
        await write(1, rows(*keys))
        read_parts = client.hmget
        replaced = False

        async def read_then_replace(key: str, names: list[str]) -> Any:
            nonlocal replaced
            answer = await read_parts(key, names)
            if not replaced:  # after the first part: a new snapshot, as many parts
                replaced = True
                await write(2, newer)
            return answer

        monkeypatch.setattr(client, "hmget", read_then_replace)
        hub = Hub(["accounts"])
        await Follower(client, KEYS, hub).sync()
        state = hub.tables["accounts"]
        assert replaced and state.seq == 2 and state.rows == newer
    finally:
        await client.aclose()

"""The lease's keep-alive against a real Redis: a leader whose event loop is busy past the
TTL (a first full read of a big table) keeps the lease; one whose loop is hung loses it."""

from __future__ import annotations

import asyncio
import functools

import pytest
import redis
import redis.asyncio

from server.cluster import node
from server.cluster.keys import Keys
from server.cluster.lease import KeepAlive
from server.config import TABLES, Config
from server.hub import Hub
from server.supervise import TaskSet

from ..live_server import UNIT
from ..services import RedisServer
from ..waiting import cancelled, eventually, until

TTL = 1.0


def take(client: redis.Redis, keys: Keys) -> str:
    value = "1:test-holder"
    assert client.set(keys.lease, value, nx=True, px=int(TTL * 1000))
    return value


def test_a_busy_loop_keeps_the_lease_a_hung_one_loses_it(redis_server: RedisServer) -> None:
    client, keys = redis.Redis.from_url(redis_server.url), Keys()
    keep = KeepAlive(redis_server.url, keys, take(client, keys), ttl=TTL, stall_limit=4 * TTL)
    keep.start()
    try:
        # No beat while the thread renews the lease for over three TTLs (a busy loop):
        # still held, by renewals alone.
        until(lambda: keep.renewals >= 10, 10 * UNIT, "renewed through three TTLs")
        assert client.get(keys.lease) == b"1:test-holder" and not keep.lost.is_set()
        # No beat past the stall limit: renewals stop and the key lapses by itself.
        until(lambda: client.get(keys.lease) is None, 10 * UNIT, "the lease lapsed")
        assert keep.lost.is_set()
    finally:
        keep.stop()
        client.close()


def test_a_lease_taken_by_another_is_lost(redis_server: RedisServer) -> None:
    client, keys = redis.Redis.from_url(redis_server.url), Keys()
    keep = KeepAlive(redis_server.url, keys, take(client, keys), ttl=TTL)
    keep.start()
    try:
        client.set(keys.lease, "2:someone-else")
        until(keep.lost.is_set, 5 * UNIT, "lost noticed")
        assert client.get(keys.lease) == b"2:someone-else"
    finally:
        keep.stop()
        client.close()


class Leading:
    """A Cluster in this process on a real Redis whose collectors are only noted (no
    source is read): ``collecting`` holds each source hub it started them into."""

    def __init__(self, url: str) -> None:
        self.collecting: list[Hub] = []
        self.cluster = node.Cluster(Config(redis=url), Hub(TABLES), self._start_collecting)
        self._tasks: list[asyncio.Task[None]] = []
        self.joined = False

    def _start_collecting(self, source_hub: Hub, tasks: TaskSet) -> None:
        self.collecting.append(source_hub)

    async def __aenter__(self) -> node.Cluster:
        """Join (unless the test did, to set something up after it), follow and lead."""
        cluster = self.cluster
        if not self.joined:
            await cluster.join()
        self._tasks = [asyncio.create_task(cluster.follow()), asyncio.create_task(cluster.lead())]
        return cluster

    async def join(self) -> None:
        await self.cluster.join()
        self.joined = True

    async def __aexit__(self, *exc: object) -> None:
        await cancelled(self._tasks)
        await self.cluster.close()


@pytest.mark.asyncio
async def test_a_new_leader_keeps_the_lease_while_it_catches_up(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Catching up with the stream and copying the table (a million rows: seconds) come
    before the collectors start; the lease is renewed from the moment it is taken, so it
    does not lapse meanwhile. The slow catch-up is made by holding it on an event."""
    monkeypatch.setattr(node, "KeepAlive", functools.partial(KeepAlive, ttl=TTL))
    leading = Leading(redis_server.url)
    cluster = leading.cluster
    cluster.lease.ttl_ms = int(TTL * 1000)
    caught_up, release = cluster.follower.caught_up, asyncio.Event()

    async def slow_catch_up() -> None:
        await release.wait()
        await caught_up()

    monkeypatch.setattr(cluster.follower, "caught_up", slow_catch_up)
    client = redis.asyncio.from_url(redis_server.url, decode_responses=True)
    try:
        async with leading:
            await eventually(lambda: cluster.lease.value is not None, 10 * UNIT, "lease taken")
            token = cluster.lease.value
            await eventually(
                lambda: cluster.keep_alive is not None and cluster.keep_alive.renewals >= 4,
                10 * UNIT,
                "renewed for over a TTL while catching up",
            )
            assert await client.get(cluster.keys.lease) == token and not leading.collecting
            release.set()
            await eventually(lambda: cluster.leading_since is not None, 10 * UNIT, "leading")
            assert leading.collecting and cluster.lease.value == token
            assert cluster.leaderships == 1
    finally:
        release.set()
        await client.aclose()


@pytest.mark.asyncio
async def test_a_new_leader_marks_what_it_has_not_read_yet_stale(redis_server: RedisServer) -> None:
    """Between the last leader's end and the new leader's first read (seconds at a million
    rows) nobody polls: a table the cluster had read is stale meanwhile, with why, on every
    instance; one never read stays "not read yet". No collector runs here: none reads."""
    leading = Leading(redis_server.url)
    hub = leading.cluster.hub
    await leading.join()
    hub.set_source("accounts", True, None)  # the cluster's reading, as a last leader left it
    async with leading:
        await eventually(lambda: bool(leading.collecting), 10 * UNIT, "leading")
        source_hub = leading.collecting[0]
        accounts, trunks = (source_hub.tables[name].source for name in ("accounts", "trunks"))
        assert (accounts.ok, accounts.error, accounts.read) == (False, node.TAKING_OVER, True)
        assert not trunks.read and trunks.error != node.TAKING_OVER
        await eventually(
            lambda: hub.tables["accounts"].source.error == node.TAKING_OVER,
            10 * UNIT,
            "the served table stale, as every instance's is",
        )

"""Redis or PostgreSQL lost under a running cluster (two real ``rtm serve``, clients on both,
writes going on): every instance keeps serving its last state marked stale, with the
reason; once the server returns the cluster recovers by itself (one leader, the snapshots
republished) and every client ends equal to the store, no seq gap accepted (tests/mirror.py
asserts each diff follows the last; a client may be sent a fresh snapshot instead)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from server import database
from server.auth.sessions import COOKIE_NAME

from ..credentials import ADMIN, ADMIN_PASSWORD
from ..live_server import UNIT
from ..mirror import Mirror
from ..services import PostgresServer
from ..store_rows import add_contact
from ..waiting import eventually
from .clients import stop_all
from .conftest import Cluster
from .outages import (
    UNAVAILABLE,
    alive,
    clients_on_both,
    leaderships,
    recovered,
    register,
    snapshot_epoch,
    stale_everywhere,
    writing,
)
from .test_failover import settled

pytestmark = pytest.mark.asyncio


@pytest.fixture(autouse=True)
def _no_pooled_connections() -> Iterator[None]:
    yield
    database.close_pools()  # the test's own session lookups, before PostgreSQL goes


# --- Redis ---------------------------------------------------------------------------------


async def test_redis_killed_and_restarted_empty_the_cluster_recovers_by_itself(
    cluster: Cluster,
) -> None:
    await redis_outage(cluster, EMPTY)


async def test_redis_restored_from_an_older_save_the_cluster_recovers_by_itself(
    cluster: Cluster,
) -> None:
    """Redis restarted with its data, but as of its last save: the stream entries written
    after it are gone, though the instances and their clients took them."""
    await redis_outage(cluster, OLDER_SAVE)


async def test_redis_frozen_then_answering_again_the_cluster_resumes_without_snapshots(
    cluster: Cluster,
) -> None:
    """Redis that stops answering (SIGSTOP: connections hang, nothing is refused), then
    answers again with everything it had: nothing was lost, so no client needs a snapshot."""
    await redis_outage(cluster, FROZEN)


EMPTY, OLDER_SAVE, FROZEN = "killed, back empty", "killed, back as of its save", "frozen"


async def redis_outage(cluster: Cluster, fault: str) -> None:
    leader = cluster.leader()
    for i in range(20):
        add_contact(cluster.db, f"before{i}")
    followers = await clients_on_both(cluster)
    epoch = cluster.status(leader)["epoch"]
    redis_proc = cluster.redis.proc
    assert redis_proc is not None
    try:
        async with writing(cluster) as done:
            await eventually(lambda: len(followers[0].accounts()) > 25, 10 * UNIT, "writes")
            if fault == OLDER_SAVE:
                cluster.redis.save()
                seq = cluster.status(leader)["seq"]["accounts"]
                await eventually(
                    lambda: cluster.status(leader)["seq"]["accounts"] > seq + 10,
                    10 * UNIT,
                    "entries after the save",
                )
            led = leaderships(cluster)
            if fault == FROZEN:
                redis_proc.send_signal(signal.SIGSTOP)
            else:
                cluster.redis.stop(signal.SIGKILL)
            await stale_everywhere(cluster, followers, lambda e: e.startswith(UNAVAILABLE), done)
            snapshots = [cluster.status(s)["snapshots_sent"] for s in cluster.instances]
            if fault == FROZEN:
                redis_proc.send_signal(signal.SIGCONT)
            else:
                cluster.redis.start()  # same port; empty, or as of the save (dump.rdb)
            await recovered(cluster, followers, done)
        await settled(cluster, followers)
        epochs = {cluster.status(s)["epoch"] for s in cluster.instances}
        assert len(epochs) == 1
        if fault == FROZEN:
            assert epochs == {epoch}
            after = [cluster.status(s)["snapshots_sent"] for s in cluster.instances]
            assert after == snapshots, "the clients went on from what they held"
        else:
            # Empty, Redis lost the epoch; restored, the entries after the save, which the
            # instances had taken: their seqs named diffs no leader has any more.
            assert epochs != {epoch}, "a new epoch"
        await eventually(
            lambda: snapshot_epoch(cluster) in epochs, 15 * UNIT, "the snapshot republished"
        )
        assert leaderships(cluster) == led + 1, "one leader after, not a flap"
        assert all(f.reconnects == 0 for f in followers)
        alive(cluster)
    finally:
        await stop_all(followers)


# --- PostgreSQL ----------------------------------------------------------------------------


async def test_postgresql_restarted_under_a_cluster_stale_then_recovered_sessions_kept(
    pg_cluster: Cluster, postgres: PostgresServer
) -> None:
    cluster = pg_cluster
    leader = cluster.leader()
    for i in range(20):
        register(cluster.db, f"before{i}")
    followers = await clients_on_both(cluster)
    before = cluster.status(leader)
    snapshots = [cluster.status(s)["snapshots_sent"] for s in cluster.instances]
    try:
        async with writing(cluster) as done:
            await eventually(lambda: len(followers[0].accounts()) > 25, 10 * UNIT, "writes")
            postgres.stop()

            def source_down(error: str) -> bool:
                return bool(error) and not error.startswith(UNAVAILABLE)

            await stale_everywhere(cluster, followers, source_down, done, store_down=True)
            postgres.start()
            assert await recovered(cluster, followers, done) is leader  # Redis held the lease
        await settled(cluster, followers)
        after = cluster.status(leader)
        assert (after["epoch"], after["leaderships"]) == (before["epoch"], before["leaderships"])
        assert [cluster.status(s)["snapshots_sent"] for s in cluster.instances] == snapshots
        # The sockets signed in before stayed open through it: sessions are checked again
        # once the store answers, and a busy or broken store closes nobody.
        assert all(f.reconnects == 0 for f in followers)
        alive(cluster)
    finally:
        await stop_all(followers)
    await asyncio.to_thread(sessions_honoured, cluster)
    for server in cluster.instances:  # a socket opened now, with the old cookie
        async with server.ws() as ws:
            mirror = await Mirror(ws).start()
        assert set(mirror.tables["accounts"]) == await asyncio.to_thread(cluster.store_ruids)


async def test_the_leader_killed_on_postgresql_the_next_goes_on_from_its_position(
    pg_cluster: Cluster,
) -> None:
    """On PostgreSQL a new leader continues the last one's change-log cursor with the rows
    the cluster holds (collectors/base.py ``Resumable``), not with a first full read (a
    million contacts: ~15 s before any change); every client still ends with the store's
    state, through the writes and deletes made around the kill."""
    cluster = pg_cluster
    leader = cluster.leader()
    other = next(s for s in cluster.instances if s is not leader)
    for i in range(20):
        register(cluster.db, f"before{i}")
    followers = await clients_on_both(cluster)
    try:
        async with writing(cluster) as done:
            await eventually(lambda: len(followers[0].accounts()) > 25, 10 * UNIT, "writes")
            assert leader.proc is not None
            leader.proc.send_signal(signal.SIGKILL)
            await eventually(lambda: cluster.status(other)["role"] == "leader", 5 * UNIT, "lead")
            written = done[0]
            await eventually(lambda: done[0] > written + 20, 10 * UNIT, "writes after the kill")
        survivors = cluster.instances.index(other)  # clients_on_both: ten per instance, in order
        await settled(cluster, followers[survivors * 10 : survivors * 10 + 10])
        assert "accounts: went on from the last leader's position" in other.log()
        assert "accounts: went on" not in leader.log(), "the first leader read it whole"
    finally:
        await stop_all(followers)


async def test_postgresql_and_redis_lost_together_stale_then_recovered_by_itself(
    pg_cluster: Cluster, postgres: PostgresServer
) -> None:
    """The store and Redis lost at once (a shared host or network gone): every instance
    keeps its last state, stale; with both back (Redis empty) the cluster finds one leader,
    a new epoch, and every client ends equal to the store."""
    cluster = pg_cluster
    leader = cluster.leader()
    for i in range(20):
        register(cluster.db, f"before{i}")
    followers = await clients_on_both(cluster)
    epoch = cluster.status(leader)["epoch"]
    try:
        async with writing(cluster) as done:
            await eventually(lambda: len(followers[0].accounts()) > 25, 10 * UNIT, "writes")
            postgres.stop()
            cluster.redis.stop(signal.SIGKILL)
            await stale_everywhere(cluster, followers, bool, done, store_down=True)
            cluster.redis.start()
            postgres.start()
            await recovered(cluster, followers, done)
        await settled(cluster, followers)
        epochs = {cluster.status(s)["epoch"] for s in cluster.instances}
        assert len(epochs) == 1 and epochs != {epoch}, "one new epoch (Redis came back empty)"
        alive(cluster)
    finally:
        await stop_all(followers)


def sessions_honoured(cluster: Cluster) -> None:
    """Sessions live in PostgreSQL: the one signed in before the restart is honoured by every
    instance, and one signed in on an instance now is honoured by the other."""
    for server in cluster.instances:
        assert server.get("/api/me").json()["name"] == ADMIN
    one, other = cluster.instances
    form = {"username": ADMIN, "password": ADMIN_PASSWORD}
    login = httpx.post(one.url + "/login", data=form, timeout=10 * UNIT)
    assert login.status_code == 303
    cookie = {COOKIE_NAME: login.cookies[COOKIE_NAME]}
    me = httpx.get(other.url + "/api/me", cookies=cookie, timeout=10 * UNIT)
    assert me.status_code == 200 and me.json()["name"] == ADMIN


async def test_an_instance_started_while_redis_is_down_says_so_then_joins(
    cluster: Cluster,
) -> None:
    cluster.leader()
    ruids = {register(cluster.db, f"before{i}") for i in range(5)}
    cluster.redis.stop(signal.SIGKILL)
    late = cluster.add()  # starts and serves, though it knows nothing yet
    async with late.ws() as ws:
        mirror = Mirror(ws)
        started = time.monotonic()
        await mirror.start()
        assert time.monotonic() - started < 5 * UNIT, "told at once, not kept waiting"
        source = mirror.sources["accounts"]
        assert not source["ok"] and source["error"].startswith(UNAVAILABLE)
        assert mirror.tables["accounts"] == {}
        cluster.redis.start()  # empty: a new epoch, the leader republishes
        await mirror.until(
            lambda m: m.sources["accounts"]["ok"] and set(m.tables["accounts"]) == ruids,
            20 * UNIT,
        )
    await asyncio.to_thread(cluster.leader, 10 * UNIT)
    alive(cluster)

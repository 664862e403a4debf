"""Redis or PostgreSQL lost under a running cluster (two real ``rtm serve``, clients on both,
writes going on): every instance keeps serving its last state marked stale, with the
reason; once the server returns the cluster recovers by itself (one leader, the snapshots
republished) and every client ends equal to the store, no seq gap accepted (tests/mirror.py
asserts each diff follows the last; a client may be sent a fresh snapshot instead)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
import redis

from server import database
from server.auth.sessions import COOKIE_NAME
from server.config import is_postgres

from ..credentials import ADMIN, ADMIN_PASSWORD
from ..live_server import UNIT, RtmServer
from ..mirror import Mirror
from ..services import PostgresServer
from ..store_rows import add_contact, delete_contact
from ..waiting import eventually
from .clients import Follower, start_all, stop_all
from .conftest import Cluster
from .test_failover import settled

pytestmark = pytest.mark.asyncio

UNAVAILABLE = "cluster state unavailable: "


@pytest.fixture(autouse=True)
def _no_pooled_connections() -> Iterator[None]:
    yield
    database.close_pools()  # the test's own session lookups, before PostgreSQL goes


# --- the store, written as Kamailio would (and failing while it is down) -------------------

PG_CONTACT = """
INSERT INTO location (ruid, username, contact, expires, callid, user_agent, socket)
VALUES (%s, %s, %s, %s, %s, 'sipp', 'udp:127.0.0.1:5060')
"""


def _add(db: str, username: str) -> str:
    if not is_postgres(db):
        return add_contact(db, username)
    ruid = f"uloc-{uuid.uuid4().hex[:12]}"
    expires = datetime.fromtimestamp(time.time() + 3600, UTC).replace(tzinfo=None)
    contact = f"sip:{username}@192.0.2.10:5060"
    with psycopg.connect(db, autocommit=True, connect_timeout=2) as conn:
        conn.execute(PG_CONTACT, (ruid, username, contact, expires, f"call-{ruid}"))
    return ruid


def _delete(db: str, ruid: str) -> None:
    if not is_postgres(db):
        delete_contact(db, ruid)
        return
    with psycopg.connect(db, autocommit=True, connect_timeout=2) as conn:
        conn.execute("DELETE FROM location WHERE ruid = %s", (ruid,))


@contextlib.asynccontextmanager
async def writing(cluster: Cluster, per_second: float = 30) -> AsyncIterator[list[int]]:
    """Register and drop contacts while the body runs; a write the store refuses (it is
    down) is skipped, as a Kamailio's would fail. Yields [writes that succeeded]."""
    held: list[str] = []
    done = [0]
    stop = asyncio.Event()

    async def write() -> None:
        rng = random.Random(11)
        n = 0
        while not stop.is_set():
            with contextlib.suppress(Exception):
                if held and rng.random() < 0.3:
                    ruid = held[rng.randrange(len(held))]
                    await asyncio.to_thread(_delete, cluster.db, ruid)
                    held.remove(ruid)
                else:
                    held.append(await asyncio.to_thread(_add, cluster.db, f"w{n}"))
                    n += 1
                done[0] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1 / per_second)

    task = asyncio.create_task(write())
    try:
        yield done
    finally:
        stop.set()
        await task


# --- what the instances and their clients say ---------------------------------------------


def table(server: RtmServer) -> dict[str, Any]:
    """``GET /api/accounts``: the rows an instance serves, its seq and source health."""
    answer: dict[str, Any] = server.get("/api/accounts").json()
    return answer


# What an instance logs when something failed unhandled: a supervised task that crashed
# (server/supervise.py restarts it), a request that raised, a task nobody awaited.
CRASHES = ("crashed; restarting", "Exception in ASGI application", "exception was never retrieved")


def alive(cluster: Cluster) -> None:
    """Every instance still runs, and nothing in it failed unhandled."""
    for server in cluster.instances:
        log = server.log()
        assert server.proc is not None and server.proc.poll() is None, log[-3000:]
        assert not [line for line in log.splitlines() if any(c in line for c in CRASHES)], log


def all_stale(followers: list[Follower], reason: Callable[[str], bool]) -> bool:
    for follower in followers:
        source = follower.mirror.sources.get("accounts") if follower.mirror else None
        if source is None or source["ok"] or not reason(source["error"] or ""):
            return False
    return True


def all_live(followers: list[Follower]) -> bool:
    return all(
        f.mirror is not None and f.mirror.sources.get("accounts", {}).get("ok") for f in followers
    )


async def clients_on_both(cluster: Cluster, each: int = 10) -> list[Follower]:
    """``each`` clients bound to every instance (none of them goes away here)."""
    followers = [Follower(server.ws) for server in cluster.instances for _ in range(each)]
    await start_all(followers)
    return followers


async def stale_everywhere(
    cluster: Cluster,
    followers: list[Follower],
    reason: Callable[[str], bool],
    done: list[int],
    store_down: bool = False,
) -> None:
    """Every client and every instance says the table is stale, for ``reason``; each client
    holds exactly what its instance serves, while the store (if up) moves on without them."""
    await eventually(lambda: all_stale(followers, reason), 15 * UNIT, "every client stale")
    for server in cluster.instances:
        answer = server.get("/api/accounts")
        if store_down and answer.status_code == 503:
            # Sessions live in the store that is down: no request can be authorised (the
            # sockets open before keep their frames), and rtm says why rather than failing.
            assert "store is unavailable" in answer.json()["error"]
            continue
        health = answer.json()["source"]
        assert not health["ok"] and reason(health["error"]), health
    if not store_down:
        moved = done[0]
        await eventually(lambda: done[0] > moved + 5, 10 * UNIT, "the store moving on meanwhile")
    for server, group in zip(cluster.instances, _by_instance(cluster, followers), strict=True):
        if store_down:  # no session can be checked: compare with the instance's clients
            rows, seq = set(group[0].accounts()), group[0].seq()
        else:
            served = table(server)
            rows, seq = {row["id"] for row in served["rows"]}, served["seq"]
        assert {f.seq() for f in group} == {seq}
        assert all(set(f.accounts()) == rows for f in group), "clients hold what it serves"
    if not store_down:  # (with the sessions in it, a new socket waits for the store)
        async with cluster.instances[1].ws() as ws:  # a client arriving now: the stale state
            late = await Mirror(ws).start()
        assert not late.sources["accounts"]["ok"] and reason(late.sources["accounts"]["error"])
    alive(cluster)


def _by_instance(cluster: Cluster, followers: list[Follower]) -> list[list[Follower]]:
    each = len(followers) // len(cluster.instances)
    return [followers[i * each : (i + 1) * each] for i in range(len(cluster.instances))]


async def recovered(cluster: Cluster, followers: list[Follower], done: list[int]) -> RtmServer:
    """One leader again, every instance on Redis, every client live; writes still flowing."""
    leader = await asyncio.to_thread(cluster.leader, 20 * UNIT)
    await eventually(
        lambda: all(cluster.status(s)["available"] for s in cluster.instances),
        15 * UNIT,
        "every instance back on Redis",
    )
    await eventually(lambda: all_live(followers), 15 * UNIT, "every client live again")
    seq = cluster.status(leader)["seq"]["accounts"]
    await eventually(
        lambda: cluster.status(leader)["seq"]["accounts"] > seq + 10, 10 * UNIT, "writes after"
    )
    return leader


def snapshot_epoch(cluster: Cluster) -> str | None:
    """The epoch of the accounts snapshot Redis holds now (None: no snapshot)."""
    client = redis.Redis.from_url(cluster.redis.url, decode_responses=True)
    try:
        meta = client.hget("rtm:snapshot:accounts", "meta")
    finally:
        client.close()
    return None if meta is None else str(json.loads(meta)["epoch"])


# --- Redis ---------------------------------------------------------------------------------


def leaderships(cluster: Cluster) -> int:
    return sum(cluster.status(s)["leaderships"] for s in cluster.instances)


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
        _add(cluster.db, f"before{i}")
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

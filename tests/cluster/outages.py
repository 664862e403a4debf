"""What the outage tests share: a writer to the store that tolerates its absence, clients
on every instance, and what "stale everywhere" and "recovered" mean for a cluster."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis

from server.config import is_postgres

from ..live_server import UNIT, RtmServer
from ..mirror import Mirror
from ..store_rows import add_contact, delete_contact
from ..waiting import eventually
from .clients import Follower, start_all
from .conftest import Cluster

UNAVAILABLE = "cluster state unavailable: "


# --- the store, written as Kamailio would (and failing while it is down) -------------------

PG_CONTACT = """
INSERT INTO location (ruid, username, contact, expires, callid, user_agent, socket)
VALUES (%s, %s, %s, %s, %s, 'sipp', 'udp:127.0.0.1:5060')
"""


def register(db: str, username: str) -> str:
    if not is_postgres(db):
        return add_contact(db, username)
    ruid = f"uloc-{uuid.uuid4().hex[:12]}"
    expires = datetime.fromtimestamp(time.time() + 3600, UTC).replace(tzinfo=None)
    contact = f"sip:{username}@192.0.2.10:5060"
    with psycopg.connect(db, autocommit=True, connect_timeout=2) as conn:
        conn.execute(PG_CONTACT, (ruid, username, contact, expires, f"call-{ruid}"))
    return ruid


def unregister(db: str, ruid: str) -> None:
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
                    await asyncio.to_thread(unregister, cluster.db, ruid)
                    held.remove(ruid)
                else:
                    held.append(await asyncio.to_thread(register, cluster.db, f"w{n}"))
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


def leaderships(cluster: Cluster) -> int:
    return sum(cluster.status(s)["leaderships"] for s in cluster.instances)

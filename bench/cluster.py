"""Several rtm instances on Redis (issue 11): commit → frame at each, the Redis hop's share,
and a failover under writes. ``python -m bench cluster``.

A real PostgreSQL holds ``CONTACTS`` contacts (rtm's migration and change log, seeded as in
bench/postgres_scale.py), a real Redis; two ``rtm serve`` instances with ``RTM_DB`` on that
database and ``RTM_REDIS``, a websockets client on each (permessage-deflate); another
connection refreshes ``RATE`` contacts a second, each with a unique User-Agent. Baseline in
the same run: one rtm on the same database without Redis. Measured:

- commit → frame p50 / p99 at the leader's client and at the follower's, against the
  baseline (every instance, the leader too, serves what it reads back from Redis);
- the Redis hop (the leader's XADD → the entry read by an instance, ``/api/cluster``) as a
  share of commit → frame;
- ``kill -9`` of the leader under the churn: seconds until the other instance leads, and
  until its client gets a change committed after the kill; whether that instance's table
  equals the database once the writes stop.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import redis as redis_client

from tests import credentials
from tests.live_server import RtmServer
from tests.services import PostgresServer, RedisServer

from .churn import cpu_seconds, receive_arrivals
from .measure import Figure, compared, seconds
from .postgres_scale import Churn, seed

QUICK = os.environ.get("BENCH_QUICK") == "1"
# The figures are for a million contacts refreshed 500 times a second.
CONTACTS = int(os.environ.get("BENCH_CLUSTER_CONTACTS", 10_000 if QUICK else 1_000_000))
RATE = 100 if QUICK else 500  # refreshes per second
SECONDS = 8 if QUICK else 20


def start(workdir: Path, url: str, redis: str | None) -> RtmServer:
    env = {
        "RTM_DB": url,
        "RTM_DEMO": "0",
        "PYTHONASYNCIODEBUG": "",
        **({"RTM_REDIS": redis} if redis else {}),
    }
    workdir.mkdir()
    server = RtmServer(workdir, env)
    credentials.grant(server)  # one admin in the shared database; a session per instance
    return server.start()


def ready(server: RtmServer) -> bool:
    try:
        return server.get("/readyz").status_code == 200
    except Exception:  # noqa: BLE001 - busy or starting: not yet
        return False


async def follow(server: RtmServer) -> Any:
    """A client holding the accounts table: hello, resume from nothing, the whole snapshot."""
    # Ready first: an instance taking a million rows (its first read, the cluster's
    # snapshot) answers a handshake only after that.
    deadline = time.monotonic() + 600
    while not await asyncio.to_thread(ready, server):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.url} not ready within 600 s")
        await asyncio.sleep(0.5)
    ws = await server.ws(max_size=None, compression="deflate", open_timeout=120).__aenter__()
    await ws.recv()  # hello
    await ws.send(json.dumps({"type": "resume", "epoch": None, "seq": {}}))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 120))
        if frame.get("type") == "snapshot" and frame["table"] == "accounts" and frame["final"]:
            return ws


async def drain(ws: Any, stop: asyncio.Event) -> int:
    """Read and drop what reaches a client until ``stop``; how many frames. A client that
    reads nothing while the instances settle leaves a resync snapshot (a million rows) in
    its buffer, and decoding it at the churn's start put seconds into the first changes'
    latencies at both clients alike (a p99 of 3.8 s that was the bench's own)."""
    frames = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(ws.recv(), 0.2)
        except TimeoutError:
            continue
        frames += 1
    return frames


async def settle(servers: list[RtmServer], within: float = 300) -> float:
    """Wait until every instance holds the cluster's first read of the table and every
    server is quiet (under a fifth of a core over a second): at a million rows a start-up
    goes on after the clients' snapshots (the leader's first read, the snapshot written to
    Redis, every instance's reload of it), and the figures are the churn's, not that.
    Quiet alone was not enough: a new leader catching up before its first read is quiet
    for a second or two, and one run's churn then ran beside that read (p50 1.5 s)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        before = [cpu_seconds(pid(server)) for server in servers]
        await asyncio.sleep(1)
        quiet = all(cpu_seconds(pid(s)) - b < 0.2 for s, b in zip(servers, before, strict=True))
        if quiet and await asyncio.to_thread(read_by_the_cluster, servers):
            break
    return time.monotonic() - started


def read_by_the_cluster(servers: list[RtmServer]) -> bool:
    """Every instance of a cluster holds the same seq of accounts, one a read made (≥ 1);
    always true of one rtm without Redis (its /api/cluster says ``"cluster": false``)."""
    seqs = set()
    for server in servers:
        status = server.get("/api/cluster").json()
        if "seq" in status:
            seqs.add(status["seq"]["accounts"])
    return not seqs or (len(seqs) == 1 and min(seqs) >= 1)


def pid(server: RtmServer) -> int:
    assert server.proc is not None
    return server.proc.pid


def latencies(churn: Churn, arrived: dict[str, float]) -> list[float]:
    found = [arrived[a] - t for a, t in churn.committed.items() if a in arrived]
    # Two writes to one contact within one ask arrive as the later one: not a loss.
    if len(found) < 0.99 * len(churn.committed):
        raise RuntimeError(f"only {len(found)} of {len(churn.committed)} changes arrived")
    return found


async def churned(
    url: str, last_id: int, servers: list[RtmServer]
) -> tuple[list[list[float]], list[float]]:
    """Commit → frame latencies at a client of each server over one churn, and the share
    of a core each server spent meanwhile."""
    clients = [await follow(server) for server in servers]
    try:
        stop = asyncio.Event()
        draining = [asyncio.create_task(drain(ws, stop)) for ws in clients]
        settled = await settle(servers)
        stop.set()
        drained = await asyncio.gather(*draining)
        print(
            f"   {len(servers)} instance(s) quiet {settled:.0f} s after the clients' snapshots"
            f" (frames read meanwhile: {', '.join(map(str, drained))})"
        )
        churn = Churn(url, last_id, RATE * SECONDS, rate=RATE, tag=f"{len(servers)}-")
        arrivals: list[dict[str, float]] = [{} for _ in clients]
        cpu_before = [cpu_seconds(pid(server)) for server in servers]
        started = time.perf_counter()
        churn.start()
        await asyncio.gather(
            *(
                receive_arrivals(ws, got, churn.count, SECONDS + 15)
                for ws, got in zip(clients, arrivals, strict=True)
            )
        )
        took = time.perf_counter() - started
        cpu = [
            (cpu_seconds(pid(server)) - before) / took
            for server, before in zip(servers, cpu_before, strict=True)
        ]
        churn.join()
        try:
            return [latencies(churn, got) for got in arrivals], cpu
        except RuntimeError:  # what the servers said meanwhile, for whoever reads the failure
            for server in servers:
                print(server.log()[-3000:], file=sys.stderr)
            raise
    finally:
        for ws in clients:
            await ws.close()


def role(server: RtmServer) -> str:
    try:
        return str(server.get("/api/cluster").json()["role"])
    except Exception:  # noqa: BLE001 - not answering yet
        return ""


async def failover(url: str, last_id: int, leader: RtmServer, other: RtmServer) -> dict[str, float]:
    ws = await follow(other)
    try:
        churn = Churn(url, last_id, RATE * (SECONDS + 10), rate=RATE, tag="failover-")
        arrived: dict[str, float] = {}
        churn.start()
        receiving = asyncio.create_task(receive_arrivals(ws, arrived, churn.count, SECONDS + 40))
        await asyncio.sleep(3)
        killed = time.perf_counter()
        leader.stop(signal.SIGKILL)
        # Another process's state: polled (off the loop, which stamps the arrivals meanwhile).
        while await asyncio.to_thread(role, other) != "leader":  # noqa: ASYNC110
            if time.perf_counter() - killed > 30:
                break
            await asyncio.sleep(0.05)
        leads = time.perf_counter() - killed
        await receiving
        churn.join()
    finally:
        await ws.close()
    after = [arrived[a] for a, t in churn.committed.items() if t > killed and a in arrived]
    figures = {"leads": leads, "first_after": min(after) - killed if after else float("inf")}
    with psycopg.connect(url, autocommit=True) as conn:
        stored = Counter(str(a) for (a,) in conn.execute("SELECT user_agent FROM location"))
    shown = Counter(str(r["user_agent"]) for r in other.get("/api/accounts").json()["rows"])
    figures["equal"] = float(stored == shown)
    return figures


def slow_commands(url: str) -> str:
    """Redis's slow log (commands that ran over 100 ms, with when), to tell a Redis that
    stalled from an instance that did."""
    with redis_client.Redis.from_url(url, socket_timeout=5) as client:
        slow = client.slowlog_get(20)
    return "\n".join(
        f"{time.strftime('%H:%M:%S', time.localtime(entry['start_time']))} "
        f"{entry['duration'] / 1000:.0f} ms {str(entry['command'])[:80]}"
        for entry in slow
    )


def share(value: float) -> str:
    return f"{value:.1%} of a core"


def p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="rtm-bench-cluster-") as workdir:
        root = Path(workdir)
        for part in ("pg", "redis"):
            (root / part).mkdir()
        pg, redis = PostgresServer(root / "pg").start(), RedisServer(root / "redis").start()
        with redis_client.Redis.from_url(redis.url) as client:
            client.config_set("slowlog-log-slower-than", 100_000)  # µs
        try:
            url = pg.database("rtm")
            last_id = seed(url, CONTACTS)
            single = start(root / "single", url, None)
            try:
                (alone,), (alone_cpu,) = asyncio.run(churned(url, last_id, [single]))
            finally:
                single.stop()
            a, b = start(root / "a", url, redis.url), start(root / "b", url, redis.url)
            try:
                while "leader" not in (role(a), role(b)):
                    time.sleep(0.1)
                leader, follower = (a, b) if role(a) == "leader" else (b, a)
                (at_leader, at_follower), (leader_cpu, follower_cpu) = asyncio.run(
                    churned(url, last_id, [leader, follower])
                )
                hop = follower.get("/api/cluster").json()["redis_hop_ms"]
                changed = (
                    leader.get("/api/cluster").json()["leaderships"] != 1
                    or role(leader) != "leader"
                )
                leader, follower = (a, b) if role(a) == "leader" else (b, a)  # the one now
                try:
                    after = asyncio.run(failover(url, last_id, leader, follower))
                except Exception as exc:  # noqa: BLE001 - the churn's figures still count
                    print(f"   the failover failed: {exc!r}", file=sys.stderr)
                    print(f"--- {follower.url}\n{follower.log()[-6000:]}", file=sys.stderr)
                    inf = float("inf")
                    after = {"leads": inf, "first_after": inf, "equal": 0.0}
                after["changed"] = float(changed)
            except BaseException:  # what the instances said, for whoever reads the failure
                for server in (a, b):
                    print(f"--- {server.url}\n{server.log()[-6000:]}", file=sys.stderr)
                print(f"--- Redis's slow commands\n{slow_commands(redis.url)}", file=sys.stderr)
                raise
            finally:
                a.stop()
                b.stop()
        finally:
            redis.stop()
            pg.stop()
    size = f"{CONTACTS:,} contacts in PostgreSQL, {RATE} changes/s"
    base50, base99 = p(alone, 50), p(alone, 99)
    hop_share = (hop["p50"] or 0) / 1000 / p(at_follower, 50)
    return [
        Figure("cluster", f"commit → frame p50 / p99, one rtm without Redis, {size}",
               f"{seconds(base50)} / {seconds(base99)}", "the baseline"),
        Figure("cluster", "rtm CPU during the churn: one rtm without Redis", share(alone_cpu),
               "the baseline"),
        compared("cluster", "rtm CPU during the churn: the leader (it polls), target ≤ 25%",
                 leader_cpu, alone_cpu, "one rtm", share),
        compared("cluster", "rtm CPU during the churn: the follower", follower_cpu, alone_cpu,
                 "one rtm", share),
        compared("cluster", "commit → frame p50 at the leader's client", p(at_leader, 50), base50,
                 "one rtm"),
        compared("cluster", "commit → frame p50 at the follower's client", p(at_follower, 50),
                 base50, "one rtm"),
        compared("cluster", "commit → frame p99 at the follower's client", p(at_follower, 99),
                 base99, "one rtm"),
        Figure("cluster", "the Redis hop (XADD → read by an instance) p50 / p99",
               f"{hop['p50']} ms / {hop['p99']} ms",
               f"{hop_share:.0%} of commit → frame p50 at the follower"),
        Figure("cluster", "leadership moved during the churn (it must not)",
               "yes" if after["changed"] else "no", ""),
        Figure("cluster", "kill -9 of the leader under writes: the other leads after",
               seconds(after["leads"]), "target ≤ 5 s (a 3 s lease)"),
        Figure("cluster", "… and its client gets a change committed after the kill after",
               seconds(after["first_after"]), ""),
        Figure("cluster", "… its table equals the database once the writes stop",
               "yes" if after["equal"] else "NO", "every User-Agent, as a multiset"),
    ]  # fmt: skip

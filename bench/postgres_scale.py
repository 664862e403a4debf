"""Kamailio's ``location`` in PostgreSQL at scale: what following it costs rtm, and how fast a
change shows (issue 11). Run on request only: ``BENCH_ONLY=postgres python -m bench`` or
``python -m bench postgres``.

A real PostgreSQL 15 (tests/services.py) holds ``CONTACTS`` contacts (1,000,000;
``BENCH_PG_CONTACTS`` to change it) with rtm's change log installed; a real ``rtm serve``
reads them with ``RTM_REGISTRATIONS=postgresql://…``. Another connection (as a Kamailio node
would) refreshes random contacts at ``RATE``/s, each with a unique User-Agent, one
autocommit statement each; a websockets client stamps each diff's arrival. Measured: rtm's
CPU (from /proc) with nothing written and under the churn, and commit → frame p50 / p99.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from server import postgres as rtm_postgres
from server import store
from tests import credentials
from tests.live_server import RtmServer
from tests.services import PostgresServer

from .churn import cpu_seconds, receive_arrivals
from .measure import Figure, compared

QUICK = os.environ.get("BENCH_QUICK") == "1"
CONTACTS = int(os.environ.get("BENCH_PG_CONTACTS", 100_000 if QUICK else 1_000_000))
RATE = 500  # refreshes per second
SECONDS = 10 if QUICK else 30
IDLE_SECONDS = 5


def seed(url: str, contacts: int) -> int:
    """rtm's migration (location + the change log), then ``contacts`` rows by COPY with the
    triggers off (a seeded table, not a million changes to follow); returns the largest id."""
    rtm_postgres.migrate(url)
    expires = datetime.fromtimestamp(time.time() + 7200, UTC).replace(tzinfo=None)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        columns = "ruid, username, contact, expires, callid, user_agent, socket, server_id"
        with conn.cursor().copy(f"COPY location ({columns}) FROM STDIN") as copy:
            for n in range(contacts):
                copy.write_row(
                    (
                        f"uloc-{n:08x}",
                        f"u{n}",
                        f"sip:u{n}@192.0.2.{n % 250 + 1}:5060;transport=udp",
                        expires,
                        uuid.uuid4().hex,
                        "seeded",
                        "udp:127.0.0.1:5060",
                        n % 2 + 1,
                    )
                )
        conn.execute("ANALYZE location")
        row = conn.execute("SELECT max(id) FROM location").fetchone()
    return int(row[0]) if row and row[0] else 0


class Churn(threading.Thread):
    """Refreshes random contacts at ``rate``/s from its own connection; stamps each commit."""

    def __init__(self, url: str, last_id: int, count: int, rate: int = RATE, tag: str = "") -> None:
        super().__init__(daemon=True)
        self.url, self.last_id, self.count, self.rate = url, last_id, count, rate
        self.tag = tag  # tells one churn's User-Agents from an earlier one's on the same rows
        self.committed: dict[str, float] = {}

    def run(self) -> None:
        rng = random.Random(11)
        with psycopg.connect(self.url, autocommit=True) as conn:
            start = time.perf_counter()
            for n in range(self.count):
                time.sleep(max(0.0, start + n / self.rate - time.perf_counter()))
                agent = f"bench-{self.tag}{n}"
                conn.execute(
                    "UPDATE location SET user_agent = %s, cseq = cseq + 1 WHERE id = %s",
                    (agent, rng.randint(1, self.last_id)),
                )
                self.committed[agent] = time.perf_counter()


async def measure(server: RtmServer, url: str, last_id: int) -> tuple[float, float, list[float]]:
    """(idle CPU share, churn CPU share, latencies) of one run."""
    assert server.proc is not None
    arrived: dict[str, float] = {}
    async with server.ws(max_size=None, compression="deflate") as ws:
        await ws.recv()  # hello
        await ws.send(json.dumps({"type": "resume", "epoch": None, "seq": {}}))
        while True:  # the snapshot (a million rows take a while), then quiet
            frame = json.loads(await asyncio.wait_for(ws.recv(), 600))
            if frame.get("type") == "snapshot" and frame["table"] == "accounts" and frame["final"]:
                break
        await asyncio.sleep(2)  # the snapshot's encoding and sending are done
        idle_from = cpu_seconds(server.proc.pid)
        await asyncio.sleep(IDLE_SECONDS)
        idle = (cpu_seconds(server.proc.pid) - idle_from) / IDLE_SECONDS
        churn = Churn(url, last_id, RATE * SECONDS)
        cpu_before, started = cpu_seconds(server.proc.pid), time.perf_counter()
        churn.start()
        await receive_arrivals(ws, arrived, churn.count, SECONDS + 15)
        busy = (cpu_seconds(server.proc.pid) - cpu_before) / (time.perf_counter() - started)
        churn.join()
    # Two writes to one contact within one poll arrive as the later one: not a loss.
    latencies = [arrived[a] - t for a, t in churn.committed.items() if a in arrived]
    if len(latencies) < 0.99 * churn.count:
        raise RuntimeError(f"only {len(latencies)} of {churn.count} changes arrived")
    return idle, busy, latencies


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="rtm-bench-pg-") as workdir:
        for part in ("pg", "rtm"):
            (Path(workdir) / part).mkdir()
        pg = PostgresServer(Path(workdir) / "pg").start()
        try:
            url = pg.database("kamailio")
            loaded = time.perf_counter()
            last_id = seed(url, CONTACTS)
            print(f"seeded {CONTACTS:,} contacts in {time.perf_counter() - loaded:.0f} s")
            env = {
                "RTM_DEMO": "0",
                "PYTHONASYNCIODEBUG": "",
                "RTM_REGISTRATIONS": url,
                # A full read of a million contacts takes seconds: the runner's timeout is
                # three poll intervals.
                "RTM_POLL_ACCOUNTS": "10",
            }
            server = RtmServer(Path(workdir) / "rtm", env)
            store.migrate(server.db)  # its own SQLite store: users and sessions
            credentials.grant(server)
            server.start()
            try:
                idle, busy, latencies = asyncio.run(measure(server, url, last_id))
            finally:
                server.stop()
        finally:
            pg.stop()
    size = f"{CONTACTS:,} contacts in PostgreSQL"
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return [
        Figure("postgres", f"rtm CPU, {size}, nothing written", f"{idle:.1%} of a core", ""),
        Figure(
            "postgres",
            f"rtm CPU, {size}, {RATE} changes/s",
            f"{busy:.1%} of a core",
            "target ≤ 25%",
        ),
        compared("postgres", f"commit → frame p50, {size}, {RATE}/s", cuts[49], 0.1, "the target"),
        compared("postgres", f"commit → frame p99, {size}, {RATE}/s", cuts[98], 0.3, "the target"),
    ]

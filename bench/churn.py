"""Re-REGISTER churn on a large store: what one change costs rtm, and how fast it shows.

A real ``rtm serve`` on a store of N contacts; another process's connection (as Kamailio's
db_sqlite would) refreshes random contacts at a steady rate, each with a unique User-Agent
so its diff can be told apart; a websockets client (permessage-deflate, as browsers
negotiate) stamps each arrival. Measured per size, in the same run: rtm's CPU (from
/proc) per change and as a share of a core, and write → frame latency. The change-driven
pipeline is right when the CPU per change at 100k is within 2× of that at 1k.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from server import store
from tests import credentials
from tests.live_server import RtmServer
from tests.store_rows import CONTACT_SQL, contact_params

from .measure import Figure, compared

QUICK = os.environ.get("BENCH_QUICK") == "1"
SIZES = (1_000, 100_000)
RATE = 160  # refreshes per second: 1% of 100k contacts a minute, ten times over
SECONDS = 8 if QUICK else 20
TICK = os.sysconf("SC_CLK_TCK")


async def receive_arrivals(ws: Any, arrived: dict[str, float], count: int, within: float) -> None:
    """Note when each ``bench-…`` User-Agent a churn wrote first reaches the client (its
    diffs of accounts), until ``count`` arrived or ``within`` seconds passed."""
    deadline = time.monotonic() + within
    while len(arrived) < count and time.monotonic() < deadline:
        try:
            text = await asyncio.wait_for(ws.recv(), 1)
        except TimeoutError:
            continue
        now = time.perf_counter()
        frame = json.loads(text)
        if frame.get("type") == "diff" and frame["table"] == "accounts":
            for row in frame["upsert"]:
                agent = row.get("user_agent")
                if isinstance(agent, str) and agent.startswith("bench-"):
                    arrived.setdefault(agent, now)


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def seed(db: str, contacts: int) -> list[int]:
    store.migrate(db)
    conn = store.connect(db)
    try:
        conn.execute("BEGIN")
        conn.executemany(CONTACT_SQL, (contact_params(f"u{n}", 7200) for n in range(contacts)))
        conn.execute("COMMIT")
        return [r[0] for r in conn.execute("SELECT id FROM location")]
    finally:
        conn.close()


@contextlib.contextmanager
def seeded_server(contacts: int) -> Iterator[tuple[RtmServer, list[int]]]:
    """A started ``rtm serve`` (no demo) on a throw-away store of ``contacts`` contacts,
    signed in as an admin; yields it and the contacts' ``location`` ids, stops it after."""
    with tempfile.TemporaryDirectory(prefix="rtm-bench-") as workdir:
        server = RtmServer(Path(workdir), {"RTM_DEMO": "0", "PYTHONASYNCIODEBUG": ""})
        ids = seed(server.db, contacts)
        credentials.grant(server)
        server.start()
        try:
            yield server, ids
        finally:
            server.stop()


class Churn(threading.Thread):
    """Refreshes random contacts at ``RATE``/s from its own connection; stamps each commit."""

    def __init__(self, db: str, ids: list[int], count: int) -> None:
        super().__init__(daemon=True)
        self.db, self.ids, self.count = db, ids, count
        self.committed: dict[str, float] = {}
        self.contact: dict[str, int] = {}  # agent -> the location id it was written to

    def run(self) -> None:
        conn = store.connect(self.db)
        rng = random.Random(7)
        start = time.perf_counter()
        try:
            for n in range(self.count):
                time.sleep(max(0.0, start + n / RATE - time.perf_counter()))
                agent, target = f"bench-{n}", rng.choice(self.ids)
                conn.execute(
                    "UPDATE location SET user_agent = ?, cseq = cseq + 1 WHERE id = ?",
                    (agent, target),
                )
                self.committed[agent] = time.perf_counter()
                self.contact[agent] = target
        finally:
            conn.close()


IDLE_SECONDS = 5


async def measure(server: RtmServer, ids: list[int]) -> tuple[float, list[float], int, float]:
    """(rtm CPU seconds, latencies, changes) for one churn window, and the CPU share of a
    quiet store (nothing written) just before it."""
    arrived: dict[str, float] = {}
    assert server.proc is not None
    async with server.ws(max_size=None, compression="deflate") as ws:
        await ws.recv()  # hello
        await ws.send(json.dumps({"type": "resume", "epoch": None, "seq": {}}))
        while True:  # the snapshot, then quiet
            frame = json.loads(await asyncio.wait_for(ws.recv(), 120))
            if frame.get("type") == "snapshot" and frame["table"] == "accounts" and frame["final"]:
                break
        idle_from = cpu_seconds(server.proc.pid)
        await asyncio.sleep(IDLE_SECONDS)
        idle = (cpu_seconds(server.proc.pid) - idle_from) / IDLE_SECONDS
        churn = Churn(server.db, ids, RATE * SECONDS)
        cpu_before = cpu_seconds(server.proc.pid)
        churn.start()
        await receive_arrivals(ws, arrived, churn.count, SECONDS + 10)
        cpu = cpu_seconds(server.proc.pid) - cpu_before
        churn.join()
    latencies = [arrived[a] - t for a, t in churn.committed.items() if a in arrived]
    # Two writes to one contact within one ask of the log arrive as one (the later): fine.
    # Any other write that never arrived is a lost change.
    last_seen = {churn.contact[a]: n for n, a in enumerate(churn.committed) if a in arrived}
    lost = [
        a for n, a in enumerate(churn.committed)
        if a not in arrived and last_seen.get(churn.contact[a], -1) <= n
    ]  # fmt: skip
    if lost:
        raise RuntimeError(f"{len(lost)} of {churn.count} changes never arrived")
    return cpu, latencies, churn.count, idle


def at_size(contacts: int) -> tuple[float, list[float], int, float]:
    with seeded_server(contacts) as (server, ids):
        return asyncio.run(measure(server, ids))


def run() -> list[Figure]:
    results = {size: at_size(size) for size in SIZES}
    small, large = SIZES
    per_change = {size: cpu / changes for size, (cpu, _, changes, _) in results.items()}
    figures = [
        compared(
            "churn",
            f"rtm CPU per change, {large:,} contacts, {RATE}/s",
            per_change[large],
            per_change[small],
            f"at {small:,} contacts",
        )
    ]
    for size, (cpu, latencies, _, idle) in results.items():
        what = f"rtm CPU, {size:,} contacts, nothing written"
        figures.append(Figure("churn", what, f"{idle:.1%} of a core", "asking 3 tables' log 20×/s"))
        share = cpu / SECONDS
        what = f"rtm CPU, {size:,} contacts, {RATE} changes/s"
        figures.append(Figure("churn", what, f"{share:.1%} of a core", "target ≤ 10% at 100k"))
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        for name, value, target in (("p50", cuts[49], 0.1), ("p99", cuts[98], 0.25)):
            figures.append(
                compared(
                    "churn",
                    f"write → frame {name}, {size:,} contacts, {RATE}/s",
                    value,
                    target,
                    "the target",
                )  # fmt: skip
            )
    return figures

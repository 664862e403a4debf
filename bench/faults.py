"""Faults survived, counted: 500 WebSocket clients on a real rtm while things break.

``python -m bench faults`` (or ``BENCH_ONLY=faults``). A real ``rtm serve`` (the accounts
and trunks in its store, the queue from a Kamailio msilo file, as in production) and 500
clients in ``WORKERS`` processes (bench/faults_clients.py) following a steady churn of
contacts. In turn:

- one client process is stopped (SIGSTOP; its sockets' small windows fill): the others'
  write → frame p99 against the same clients before, the stalled clients closed (by the
  keepalive, 20 s + 20 s, before rtm's 30 s send timeout: on loopback the kernel buffers
  hold megabytes) and counted in ``/metrics``, rtm's RSS meanwhile;
- ``kill -9`` of rtm while the store changes, and a restart: seconds until every client is
  back and equal to the server, and the server's accounts equal the store's;
- the msilo file locked by a writer for 10 s, then answering garbage (its bytes
  overwritten): every client told the queue is stale and why, no queue row changed
  meanwhile, then recovered and equal.
- and in ``python -m bench faults-kamailio`` (bench/faults_kamailio.py), an rtm whose
  registrations come from a real Kamailio (RPC and evapi): Kamailio killed (``kill -9``)
  for 10 s and restarted, its phones registering again: every client told the accounts
  are stale and why, no accounts row changed meanwhile, then recovered and equal to
  Kamailio's own contacts.

After each fault every client's tables must equal the server's: rows lost is the count of
clients that differ (target 0).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import resource
import signal
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server import store
from tests import credentials
from tests.live_server import RtmServer

from .faults_clients import Target, worker
from .measure import Figure, seconds, size
from .soak_life import seed

QUICK = os.environ.get("BENCH_QUICK") == "1"
CLIENTS = int(os.environ.get("FAULTS_CLIENTS", "100" if QUICK else "500"))
WORKERS = 5
CONTACTS = 300
RATE = 20  # contact changes per second: what 2 cores hold with 500 Python clients on them
BASELINE = 8 if QUICK else 20  # seconds of churn the p99 is measured over
SETTLE = 60.0  # at most this long for every client to be back and equal
STALL_WINDOW = 4096  # SO_RCVBUF of the stopped process's sockets
STALL_LIMIT = 150.0  # seconds the stalled clients may take to be closed
MESSAGES = 20


class Churn(threading.Thread):
    """Writes a ``fault-N`` User-Agent into a random contact ``RATE`` times a second."""

    def __init__(self, db: str, ids: list[int], first: int) -> None:
        super().__init__(daemon=True)
        self.db, self.ids, self.n = db, ids, first
        self.stopped = threading.Event()
        self.committed: dict[int, float] = {}

    def run(self) -> None:
        conn = store.connect(self.db)
        rng, start, first = random.Random(self.n), time.perf_counter(), self.n
        try:
            while not self.stopped.is_set():
                time.sleep(max(0.0, start + (self.n - first) / RATE - time.perf_counter()))
                conn.execute(
                    "UPDATE location SET user_agent = ? WHERE id = ?",
                    # Random text: permessage-deflate must not shrink the frames to nothing.
                    (f"fault-{self.n} {rng.randbytes(40).hex()}", rng.choice(self.ids)),
                )
                self.committed[self.n] = time.perf_counter()
                self.n += 1
        finally:
            conn.close()

    def stop(self) -> dict[int, float]:
        self.stopped.set()
        self.join()
        return self.committed


def seed_silo(path: str) -> None:
    """A Kamailio msilo file (rollback journal, as Kamailio's db_sqlite leaves it)."""
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE silo (id INTEGER PRIMARY KEY, src_addr TEXT DEFAULT '', dst_addr TEXT"
        " DEFAULT '', username TEXT DEFAULT '', domain TEXT DEFAULT '', inc_time INTEGER"
        " DEFAULT 0, exp_time INTEGER DEFAULT 0, snd_time INTEGER DEFAULT 0, ctype TEXT"
        " DEFAULT 'text/plain', body BLOB, extra_hdrs TEXT, callid TEXT DEFAULT '',"
        " status INTEGER DEFAULT 0);"
    )
    now = int(time.time())
    conn.executemany(
        "INSERT INTO silo (src_addr, dst_addr, username, inc_time, callid, body)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (f"sip:a{n}@x", f"sip:b{n}@x", f"b{n}", now, f"c{n}", b"never read")
            for n in range(MESSAGES)
        ],
    )
    conn.commit()
    conn.close()


class Bench:
    """The server, the client processes and the figures."""

    def __init__(self, workdir: Path, sources: dict[str, str] | None = None) -> None:
        """``sources``: RTM_* settings over the defaults (e.g. a Kamailio's registrations)."""
        self.silo = str(workdir / "kamailio.sqlite")
        seed_silo(self.silo)
        env = {
            "RTM_DEMO": "0",
            "PYTHONASYNCIODEBUG": "",
            "RTM_QUEUE": "msilo+sqlite:///" + self.silo,  # an absolute path: four slashes
            "RTM_WS_MAX_CLIENTS": str(CLIENTS * 3),
            **(sources or {}),
        }
        self.server = RtmServer(workdir, env)
        self.ids = seed(self.server.db, CONTACTS)
        credentials.grant(self.server)
        self.server.start()
        cookie = "; ".join(f"{k}={v}" for k, v in self.server.cookies.items())
        target = Target(self.server.ws_url, cookie, self.server.url)
        context = multiprocessing.get_context("spawn")
        self.pipes, self.procs = [], []
        for n in range(WORKERS):
            mine, theirs = context.Pipe()
            share = CLIENTS // WORKERS + (n < CLIENTS % WORKERS)
            args = (theirs, target, share, STALL_WINDOW if n == 0 else 0)
            proc = context.Process(target=worker, args=args, daemon=True)
            proc.start()
            self.pipes.append(mine)
            self.procs.append(proc)
        self.figures: list[Figure] = []
        self.agents = 0

    def ask(self, command: str, arg: Any = None, only: range | None = None) -> list[Any]:
        chosen = [self.pipes[i] for i in (only or range(WORKERS))]
        for pipe in chosen:
            pipe.send((command, arg))
        return [pipe.recv() for pipe in chosen]

    def truth(self) -> dict[str, dict[str, Any]]:
        """The server's tables, kept the way the clients keep them."""
        keep = {"accounts": "user_agent", "trunks": "status", "queue": None}
        tables = {}
        for table, field in keep.items():
            rows = self.server.get(f"/api/{table}").json()["rows"]
            tables[table] = {r["id"]: (r.get(field) if field else True) for r in rows}
        return tables

    def settle(self, within: float = SETTLE) -> tuple[float, int]:
        """(seconds until every client equals the server, clients equal at the end)."""
        began = time.monotonic()
        equal = 0
        while time.monotonic() - began < within:
            equal = sum(self.ask("equal", self.truth()))
            if equal == CLIENTS:
                break
            time.sleep(0.25)
        return time.monotonic() - began, equal

    def p99(self, committed: dict[int, float], only: range) -> tuple[float, float, int]:
        latencies = sorted(x for part in self.ask("latencies", committed, only) for x in part)
        if not latencies:
            return float("inf"), float("inf"), 0
        return (
            latencies[int(0.99 * (len(latencies) - 1))],
            statistics.median(latencies),
            len(latencies),
        )

    def churn(self) -> Churn:
        churn = Churn(self.server.db, self.ids, self.agents)
        churn.start()
        return churn

    def metric(self, name: str, labels: str = "") -> float:
        for line in self.server.get("/metrics").text.splitlines():
            if line.startswith(name + labels + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def closed(self) -> float:
        """Sockets rtm closed as too slow or lost (keepalive unanswered), per /metrics."""
        return sum(
            self.metric("rtm_ws_closed_total", f'{{reason="{why}"}}') for why in ("slow", "lost")
        )

    def stop(self) -> None:
        for proc in self.procs:
            os.kill(proc.pid, signal.SIGCONT) if proc.pid else None
        self.ask("stop")
        for proc in self.procs:
            proc.join(10)
        self.server.stop()


def vm(pid: int, key: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def pid_of(bench: Bench) -> int:
    assert bench.server.proc is not None
    return bench.server.proc.pid


def connect_all(bench: Bench) -> list[Figure]:
    took, equal = bench.settle(120)
    return [Figure("faults", f"{CLIENTS} clients connecting, {CONTACTS} contacts", seconds(took),
                   f"{equal}/{CLIENTS} equal to the server")]  # fmt: skip


def stalled_process(bench: Bench) -> list[Figure]:
    """One process (a fifth of the clients) stopped while the churn goes on."""
    others, stalled = range(1, WORKERS), CLIENTS // WORKERS + (0 < CLIENTS % WORKERS)
    bench.ask("record")
    churn = bench.churn()
    time.sleep(BASELINE)
    committed = churn.stop()
    bench.agents = churn.n
    time.sleep(2)
    before, median_before, count_before = bench.p99(committed, others)
    pid, rss_before = pid_of(bench), vm(pid_of(bench))
    slow_before = bench.closed()
    bench.ask("record", only=others)
    os.kill(bench.procs[0].pid or 0, signal.SIGSTOP)
    churn, began, peak = bench.churn(), time.monotonic(), rss_before
    closed = 0.0
    try:
        while time.monotonic() - began < STALL_LIMIT:
            peak = max(peak, vm(pid))
            closed = bench.closed() - slow_before
            if closed >= stalled and time.monotonic() - began >= BASELINE:  # and a p99
                break
            time.sleep(1)
        took = time.monotonic() - began
        committed = churn.stop()
        bench.agents = churn.n
        time.sleep(2)
        during, median_during, count_during = bench.p99(committed, others)
    finally:
        os.kill(bench.procs[0].pid or 0, signal.SIGCONT)
    back, equal = bench.settle()
    what = f"{CLIENTS - stalled} clients while {stalled} others' process is stopped"
    return [
        Figure("faults", f"{what}: write → frame p99", seconds(during),
               f"{during / before:.2f}× the {seconds(before)} before (target ≤ 1.2×); p50 "
               f"{seconds(median_during)} vs {seconds(median_before)}; {count_during:,} and "
               f"{count_before:,} arrivals"),
        Figure("faults", f"the {stalled} stalled clients closed", f"{closed:.0f}/{stalled}",
               f"after {took:.0f} s; rtm_ws_closed_total{{reason=slow|lost}}"),
        Figure("faults", "rtm RSS while a fifth of the clients is stalled", size(peak),
               f"peak; {size(rss_before)} before"),
        Figure("faults", "stalled process resumed: every client back and equal", seconds(back),
               f"{equal}/{CLIENTS} equal; rows lost: {CLIENTS - equal} clients differ"),
    ]  # fmt: skip


def kill_and_restart(bench: Bench) -> list[Figure]:
    """``kill -9`` of rtm, writes while it is down, a restart: every client back and equal."""
    began = time.monotonic()
    bench.server.stop(signal.SIGKILL)
    churn = bench.churn()
    time.sleep(3)  # the store changes while rtm is down
    churn.stop()
    bench.agents = churn.n
    bench.server.start()
    started = time.monotonic() - began
    back, equal = bench.settle()
    conn = store.connect(bench.server.db)
    stored = {str(i): a for i, a in conn.execute("SELECT id, user_agent FROM location")}
    conn.close()
    served = bench.truth()["accounts"]
    same = sum(1 for agent in served.values() if agent in stored.values()) == len(stored)
    return [
        Figure("faults", f"kill -9 and restart: all {CLIENTS} clients back and equal",
               seconds(started + back), f"target ≤ 30 s; rtm up after {seconds(started)}; "
               f"{equal}/{CLIENTS} equal; server's accounts == the store's: {same}"),
    ]  # fmt: skip


def queue_fault(
    bench: Bench, what: str, hold: Callable[[], Callable[[], None]], table: str = "queue"
) -> list[Figure]:
    """Break ``table``'s source with ``hold()`` for 10 s (it returns the repair), then repair."""
    bench.ask("record", table)
    began = time.monotonic()
    repair = hold()
    told = 0
    while time.monotonic() - began < 10:
        sources = [s for part in bench.ask("sources") for s in part]
        told = sum(1 for seen, _ in sources if any(not ok for ok, _ in seen))
        time.sleep(0.5)
    sources = [s for part in bench.ask("sources") for s in part]
    reasons = sorted({reason for seen, _ in sources for ok, reason in seen if not ok})
    changed = sum(diffs for _, diffs in sources)
    repair()
    began = time.monotonic()
    recovered = 0
    while recovered < CLIENTS and time.monotonic() - began < SETTLE:  # told it is back
        parts = bench.ask("sources")
        recovered = sum(1 for part in parts for seen, _ in part if seen and seen[-1][0])
        time.sleep(0.1)
    _, equal = bench.settle(SETTLE - (time.monotonic() - began))
    back = time.monotonic() - began  # from the repair until told so and equal
    return [
        Figure("faults", f"{what}: clients told {table} is stale, and why", f"{told}/{CLIENTS}",
               f"reason: {'; '.join(reasons)[:120] or 'none'}; {table} diffs meanwhile: "
               f"{changed} (target 0: no wrong row)"),
        Figure("faults", f"{what}: repaired, every client recovered and equal", seconds(back),
               f"{recovered}/{CLIENTS} told it recovered; {equal}/{CLIENTS} equal"),
    ]  # fmt: skip


def lock_silo(bench: Bench) -> Callable[[], None]:
    """A writer holds the msilo file locked (it adds one message, committed at the end)."""
    conn = sqlite3.connect(bench.silo, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute(
        "INSERT INTO silo (src_addr, dst_addr, username, inc_time, callid)"
        " VALUES ('sip:late@x', 'sip:b@x', 'b', ?, 'late')",
        (int(time.time()),),
    )

    def release() -> None:
        conn.execute("COMMIT")
        conn.close()

    return release


def garble_silo(bench: Bench) -> Callable[[], None]:
    """The msilo file's bytes overwritten with garbage (same file, same size)."""
    path = Path(bench.silo)
    good = path.read_bytes()
    with open(path, "r+b") as file:
        file.write(os.urandom(len(good)))

    def restore() -> None:
        with open(path, "r+b") as file:
            file.write(good)

    return restore


def run() -> list[Figure]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    with tempfile.TemporaryDirectory(prefix="rtm-faults-") as workdir:
        bench = Bench(Path(workdir))
        try:
            figures = connect_all(bench)
            figures += stalled_process(bench)
            figures += kill_and_restart(bench)
            figures += queue_fault(
                bench, "msilo file locked by a writer for 10 s", lambda: lock_silo(bench)
            )
            figures += queue_fault(
                bench, "msilo file answering garbage for 10 s", lambda: garble_silo(bench)
            )
            figures.append(closes(bench))
        finally:
            bench.stop()
        return figures


def closes(bench: Bench) -> Figure:
    seen = [c for part in bench.ask("closes") for c in part]
    return Figure("faults", "client closes seen over the run", f"{len(seen)}",
                  "; ".join(sorted(set(seen)))[:200])  # fmt: skip


if __name__ == "__main__":
    from . import __main__ as bench_main

    raise SystemExit(bench_main.main(["faults"]))

"""A wall of displays connecting at once to a 100k table, then following its churn.

A real ``rtm serve`` on N contacts. Clients do what the page does: ``GET /api/accounts``,
``/api/trunks``, ``/api/queue`` (gzip), then ``/ws`` resuming from the bodies' epoch and
seq (permessage-deflate, as browsers negotiate). A client *holds the table* once its resume
was answered with diffs (not a snapshot) and the answer's last ``source`` frame arrived: it
is then at the seq the server had when it connected, and it checks every later diff's seq
for a gap. The load generator must be cheap (two cores, shared with rtm): a client
decompresses only the first KB of a body (epoch, seq) and reads frames by regex, and the
sockets are spread over a few processes, each one asyncio loop.

Measured in one run: one client's bytes and time to its last row (HTTP + resume, and the
old path: snapshot frames over the socket), the first one asking as soon as rtm listens
(after a start), timed from rtm's first read being in and from its listening; the shared
body's encode in this process, against the encode before (json.dumps, gzip 5); 200 clients
connecting under a 160/s churn; 1,000 connecting at once (time, rtm's peak RSS); those 1,000
following 160 changes/s (write → frame p99, rtm CPU, frames per second per core of rtm CPU);
rtm CPU per connecting client against one snapshot encoded for one client (pages and
permessage-deflate, in this process: what each connect cost before the shared body).
"""

from __future__ import annotations

import array
import asyncio
import json
import multiprocessing
import random
import re
import resource
import statistics
import threading
import time
import zlib
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from server import store
from tests.live_server import RtmServer

from .churn import RATE, cpu_seconds, seeded_server
from .connect_one import CONNECT_TIMEOUT, CONTACTS, QUICK, TABLES, Target, single
from .measure import Figure, seconds, size

UNDER_CHURN = 100 if QUICK else 200  # clients connecting at once during the churn
WALL = 200 if QUICK else 1_000  # clients connecting at once, then following the churn
FOLLOW_SECONDS = 8 if QUICK else 15
WORKERS = 4  # client processes
HEAD = re.compile(rb'^\{"epoch":("[^"]*"|null),"seq":(\d+),')
FRAME = re.compile(r'^\{"table":"(\w+)","(seq|ok)":(\d+|true|false)(?:,"(\w+)")?')
AGENT = re.compile(r'"bench-(\d+)"')


# --- the client side (one asyncio loop per worker process) ---------------------------


class Counted(ClientConnection):
    """A client connection counting the bytes it receives (frames as on the wire)."""

    wire = 0

    def data_received(self, data: bytes) -> None:
        self.wire += len(data)
        super().data_received(data)


@dataclass
class Display:
    """One connecting client: what it holds, when, and what reached it."""

    started: float = 0.0
    held_at: float | None = None
    snapshot: bool = False
    gaps: int = 0
    http_bytes: int = 0
    frames: int = 0
    error: str = ""
    seq: dict[str, int] = field(default_factory=dict)
    arrived: dict[int, float] = field(default_factory=dict)
    ws: Counted | None = None
    wire_mark: int = 0  # ws.wire when recording began
    # What the frames would have been on the wire with context takeover (one display per
    # worker keeps a compressor of its own, as websockets' permessage-deflate would).
    takeover: Any = None
    takeover_bytes: int = 0
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # held it, or failed


async def fetch_head(target: Target, table: str) -> tuple[int, Any, int]:
    """GET /api/<table> with gzip: (bytes on the wire, epoch, seq), decompressing ~4 KB."""
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        writer.write(
            f"GET /api/{table} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n"
            f"Accept-Encoding: gzip\r\nCookie: {target.cookie}\r\nConnection: close\r\n\r\n"
            .encode()
        )  # fmt: skip
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
        length = int(re.search(rb"(?i)content-length: (\d+)", head)[1])  # type: ignore[index]
        inflate, prefix, left = zlib.decompressobj(wbits=31), b"", length
        while left:
            chunk = await reader.read(min(left, 1 << 18))
            if not chunk:
                raise RuntimeError("body cut short")
            left -= len(chunk)
            if len(prefix) < 4096:
                prefix += inflate.decompress(chunk, 4096)
        found = HEAD.match(prefix)
        if found is None:
            raise RuntimeError(f"no epoch/seq in {prefix[:80]!r}")
        return len(head) + length, json.loads(found[1]), int(found[2])
    finally:
        writer.close()


def read_frame(display: Display, text: str, recording: bool, now: float) -> int:
    """Account for one frame; returns 1 for each ``source`` frame (the resume's end)."""
    found = FRAME.match(text)
    if found is None:
        return 0
    table, key, value, third = found.groups()
    if key == "ok":
        return 1
    seq = int(value)
    if third == "rows":
        display.snapshot = True
        if text.endswith('"final":true,"type":"snapshot"}'):
            display.seq[table] = seq
        return 0
    if seq != display.seq.get(table, -2) + 1:
        display.gaps += 1
    display.seq[table] = seq
    if recording:
        display.frames += 1
        if display.takeover is not None:
            data = text.encode()
            packed = display.takeover.compress(data) + display.takeover.flush(zlib.Z_SYNC_FLUSH)
            display.takeover_bytes += len(packed) - 4 + (2 if len(packed) < 130 else 4)
        for match in AGENT.finditer(text):
            display.arrived.setdefault(int(match[1]), now)
    return 0


async def display(target: Target, one: Display, state: dict[str, bool]) -> None:
    """Do what the page does, then follow the diffs until closed."""
    one.started = time.perf_counter()
    try:
        epoch = None
        for table in TABLES:
            wire, epoch, seq = await fetch_head(target, table)
            one.http_bytes += wire
            one.seq[table] = seq
        ws = await connect(
            f"ws://{target.host}:{target.port}/ws",
            additional_headers={"Cookie": target.cookie},
            origin=target.origin,  # type: ignore[arg-type]
            compression="deflate",
            max_size=None,
            create_connection=Counted,
            open_timeout=CONNECT_TIMEOUT,
            ping_interval=None,
        )
        assert isinstance(ws, Counted)
        one.ws = ws
        await ws.recv()  # hello
        await ws.send(json.dumps({"type": "resume", "epoch": epoch, "seq": one.seq}))
        sources = 0
        async for text in ws:
            now = time.perf_counter()
            sources += read_frame(one, str(text), state["recording"], now)
            if one.held_at is None and sources >= len(TABLES):
                one.held_at = now
                one.settled.set()
        if not state["closing"]:
            one.error = f"closed by rtm: {ws.close_code} {ws.close_reason}"
    except Exception as exc:  # counted and reported: a refused or closed socket is a figure
        if one.held_at is None or not state["closing"]:
            one.error = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        one.settled.set()


def lost_changes(one: Display, committed: list[tuple[int, float, int]]) -> int:
    """Writes that never arrived, except those a later write to the same contact superseded
    within one read of the log (they arrive as the later one, as in bench/churn.py)."""
    last_seen = {contact: n for n, _, contact in committed if n in one.arrived}
    return sum(
        1 for n, _, contact in committed
        if n not in one.arrived and last_seen.get(contact, -1) <= n
    )  # fmt: skip


async def serve_commands(pipe: Connection, target: Target) -> None:
    loop = asyncio.get_running_loop()
    displays: list[Display] = []
    tasks: list[asyncio.Task[None]] = []
    state = {"recording": False, "closing": False}
    while True:
        command, arg = await loop.run_in_executor(None, pipe.recv)
        if command == "connect":
            count, start_at = arg
            await asyncio.sleep(max(0.0, start_at - time.time()))
            state["closing"] = False
            new = [Display() for _ in range(count)]
            displays += new
            tasks += [asyncio.create_task(display(target, one, state)) for one in new]
            waits = [asyncio.create_task(one.settled.wait()) for one in new]
            await asyncio.wait(waits, timeout=CONNECT_TIMEOUT)
            for wait in waits:
                wait.cancel()
            pipe.send([(one.started, one.held_at, one.snapshot, one.gaps, one.http_bytes,
                        one.error) for one in new])  # fmt: skip
        elif command == "record":
            for n, one in enumerate(displays):
                one.arrived.clear()
                one.frames = one.takeover_bytes = 0
                one.wire_mark = one.ws.wire if one.ws is not None else 0
                # uvicorn's permessage-deflate: 12-bit window, memLevel 5
                one.takeover = zlib.compressobj(wbits=-12, memLevel=5) if arg and not n else None
            state["recording"] = arg
            pipe.send(None)
        elif command == "report":  # arg: the churn's (n, commit time, contact) list
            latencies = array.array("d")
            lost = gaps = frames = wire = rows = takeover = takeover_rows = 0
            for one in displays:
                if one.ws is not None:
                    wire += one.ws.wire - one.wire_mark
                rows += len(one.arrived)
                if one.takeover is not None:
                    takeover += one.takeover_bytes
                    takeover_rows += len(one.arrived)
                times = {n: t for n, t, _ in arg}
                latencies.extend(one.arrived[n] - times[n] for n in one.arrived if n in times)
                lost += lost_changes(one, arg)
                gaps, frames = gaps + one.gaps, frames + one.frames
            gone = sum(1 for o in displays if o.error)
            pipe.send((latencies, lost, gaps, frames, gone, wire, rows, takeover, takeover_rows))
        elif command == "close":
            state["closing"] = True
            for one in displays:
                if one.ws is not None:
                    await one.ws.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            displays, tasks = [], []
            pipe.send(None)
        else:
            return


def worker(pipe: Connection, target: Target) -> None:
    asyncio.run(serve_commands(pipe, target))


# --- the server side and the figures --------------------------------------------------


class Churn(threading.Thread):
    """Refreshes random contacts at ``RATE``/s until stopped; stamps each commit."""

    def __init__(self, db: str, ids: list[int], first: int) -> None:
        super().__init__(daemon=True)
        # Agents are numbered from ``first``: a write must differ from the row's last one
        # (an earlier churn wrote the same contacts in the same order), or it is no change.
        self.db, self.ids, self.first = db, ids, first
        self.stopped = threading.Event()
        self.committed: list[tuple[int, float, int]] = []

    def run(self) -> None:
        conn = store.connect(self.db)
        rng = random.Random(7)
        start, n = time.perf_counter(), self.first
        try:
            while not self.stopped.is_set():
                time.sleep(max(0.0, start + (n - self.first) / RATE - time.perf_counter()))
                target = rng.choice(self.ids)
                conn.execute(
                    "UPDATE location SET user_agent = ?, cseq = cseq + 1 WHERE id = ?",
                    (f"bench-{n}", target),
                )
                self.committed.append((n, time.perf_counter(), target))
                n += 1
        finally:
            conn.close()

    def stop(self) -> list[tuple[int, float, int]]:
        self.stopped.set()
        self.join()
        return self.committed


class Swarm:
    """The client processes; ``connect`` spreads clients over them, starting at once."""

    def __init__(self, target: Target) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs = []
        for _ in range(WORKERS):
            mine, theirs = context.Pipe()
            proc = context.Process(target=worker, args=(theirs, target), daemon=True)
            proc.start()
            self.pipes.append(mine)
            self.procs.append(proc)

    def ask(self, command: str, args: list[Any]) -> list[Any]:
        for pipe, arg in zip(self.pipes, args, strict=True):
            pipe.send((command, arg))
        return [pipe.recv() for pipe in self.pipes]

    def connect(self, count: int) -> tuple[float, list[Any]]:
        """(seconds until every client held the table, every client's result row)."""
        start_at = time.time() + 1.0  # every process starts in the same instant
        shares = [count // WORKERS + (i < count % WORKERS) for i in range(WORKERS)]
        rows = [
            row for part in self.ask("connect", [(n, start_at) for n in shares]) for row in part
        ]
        first = min(row[0] for row in rows)
        held = [row[1] for row in rows if row[1] is not None]
        return (max(held) - first if held else float("inf")), rows

    def close(self) -> None:
        self.ask("close", [None] * WORKERS)

    def stop(self) -> None:
        for pipe in self.pipes:
            pipe.send(("stop", None))
        for proc in self.procs:
            proc.join(10)


def vm(pid: int, key: str) -> int:
    """A /proc/PID/status figure (VmHWM, VmRSS) in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def connected(rows: list[Any], what: str, took: float, target: float) -> list[Figure]:
    held = sum(1 for row in rows if row[1] is not None)
    snapshots = sum(1 for row in rows if row[2])
    gaps = sum(row[3] for row in rows)
    errors = sorted({row[5] for row in rows if row[5]})
    detail = f"{held}/{len(rows)} held; {snapshots} resumed to a snapshot; {gaps} seq gaps"
    if errors:
        detail += f"; errors: {'; '.join(errors[:3])}"
    return [
        Figure("connect", what, seconds(took), f"target ≤ {target:.0f} s"),
        Figure("connect", f"{what}: who held it", f"{held}/{len(rows)}", detail),
    ]


def under_churn(server: RtmServer, swarm: Swarm, ids: list[int], old: float) -> list[Figure]:
    """UNDER_CHURN clients at once while the churn writes; rtm CPU per client against
    ``old``, what one client's snapshot cost before the shared body (encode_figures)."""
    assert server.proc is not None
    pid = server.proc.pid
    churn = Churn(server.db, ids, 0)
    churn.start()
    # The churn alone, long enough that the shared body is stale (SHARED_MAX_AGE): the
    # first connecting client pays a fresh encode, as after a restart.
    time.sleep(11)
    cpu, began = cpu_seconds(pid), time.perf_counter()
    time.sleep(4)
    churn_share = (cpu_seconds(pid) - cpu) / (time.perf_counter() - began)
    cpu, began = cpu_seconds(pid), time.perf_counter()
    took, rows = swarm.connect(UNDER_CHURN)
    used = cpu_seconds(pid) - cpu - churn_share * (time.perf_counter() - began)
    churn.stop()
    swarm.close()
    per_client = used / UNDER_CHURN
    what = f"{UNDER_CHURN} clients connecting at once, {CONTACTS:,} rows, {RATE}/s churn"
    return connected(rows, what, took, 20) + [
        Figure("connect", "rtm CPU per connecting client (churn's own CPU taken off)",
               seconds(per_client),
               f"{per_client / old:.3g}× one snapshot encoded for one client ({seconds(old)}, "
               "each connect's cost before); target ≤ 0.02×"),
    ]  # fmt: skip


def wall(server: RtmServer, swarm: Swarm, ids: list[int]) -> list[Figure]:
    """WALL clients at once (no churn), then following FOLLOW_SECONDS of churn."""
    assert server.proc is not None
    pid = server.proc.pid
    took, rows = swarm.connect(WALL)
    hwm = vm(pid, "VmHWM")
    what = f"{WALL:,} clients connecting at once, {CONTACTS:,} rows"
    figures = connected(rows, what, took, 60)
    figures.append(Figure("connect", f"{what}: rtm peak RSS", size(hwm), "target ≤ 1 GiB"))
    swarm.ask("record", [True] * WORKERS)
    churn = Churn(server.db, ids, 10_000_000)
    cpu = cpu_seconds(pid)
    clients = sum(cpu_seconds(proc.pid) for proc in swarm.procs if proc.pid)
    churn.start()
    time.sleep(FOLLOW_SECONDS)
    committed = churn.stop()
    time.sleep(2)  # the last changes reach every client
    used = cpu_seconds(pid) - cpu
    clients = sum(cpu_seconds(proc.pid) for proc in swarm.procs if proc.pid) - clients
    reports = swarm.ask("report", [committed] * WORKERS)
    swarm.ask("record", [False] * WORKERS)
    latencies = sorted(x for report in reports for x in report[0])
    lost, gaps, frames, gone, wire, rows, takeover, takeover_rows = (
        sum(r[i] for r in reports) for i in range(1, 9)
    )
    window = FOLLOW_SECONDS + 2
    what = f"{WALL:,} clients, {CONTACTS:,} rows, {RATE} changes/s"
    p99 = latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("inf")
    share = used / window
    return figures + [
        Figure("connect", f"{what}: write → frame p99", seconds(p99),
               f"p50 {seconds(statistics.median(latencies))}; {len(committed)} changes × "
               f"{WALL} clients; {lost} lost, {gaps} seq gaps, {gone} clients gone; "
               "target ≤ 250 ms"),
        Figure("connect", f"{what}: rtm CPU", f"{share:.1%} of a core",
               f"target ≤ 50%; the {WORKERS} client processes used {clients / window:.0%}"),
        Figure("connect", f"{what}: frames written per core-second of rtm CPU",
               f"{frames / used:,.0f}", f"{frames / window:,.0f} frames/s; target ≥ 50,000"),
        Figure("connect", f"{what}: bytes on the wire per changed row",
               f"{wire / max(rows, 1):.1f} B",
               f"{wire / max(frames, 1):.1f} B per frame; with context takeover these frames "
               f"would be {takeover / max(takeover_rows, 1):.1f} B per row"),
        Figure("connect", "rtm peak RSS, whole run", size(vm(pid, "VmHWM")), "target ≤ 1 GiB"),
    ]  # fmt: skip


def run() -> list[Figure]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # rtm inherits this limit, and sizes RTM_WS_MAX_CLIENTS from it: room for the wall.
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    with seeded_server(CONTACTS) as (server, ids):
        listening = time.time()  # the first client asks at once
        cookie = "; ".join(f"{k}={v}" for k, v in server.cookies.items())
        target = Target("127.0.0.1", server.port, cookie, server.url)
        assert server.proc is not None
        target.pid = server.proc.pid
        figures, old = single(server, target, listening)
        swarm = Swarm(target)  # after: its processes' start-up is no load on the first read
        try:
            figures += under_churn(server, swarm, ids, old)
            return figures + wall(server, swarm, ids)
        finally:
            swarm.stop()

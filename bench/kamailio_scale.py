"""Real Kamailio + evapi at scale: REGISTER → WebSocket frame on a real ``rtm serve``.

Kamailio (lab/kamailio.cfg, its evapi events carrying each AoR's contacts) is filled with
``CONTACTS`` registrations by sipp (100k; ``BENCH_QUICK=1``: 20k), then rtm starts and reads
them with one ``ul.dump``. While sipp re-REGISTERs seeded phones at ``RATE``/s, a probe phone
sends REGISTERs of its own at random moments and the clock stops when a websockets client
receives the diff that carries the probe's row. CPU is read from /proc: rtm's, and
Kamailio's over the same load with rtm attached minus a window without rtm (what answering
rtm costs the SIP server).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection

from server import store
from tests import credentials
from tests.collectors.kamailio.conftest import Kamailio, Sipp, free_port
from tests.collectors.kamailio.test_live import register_request
from tests.live_server import RtmServer

from .measure import Figure, compared, seconds

QUICK = os.environ.get("BENCH_QUICK", "") == "1"
CONTACTS = int(os.environ.get("BENCH_KAMAILIO_CONTACTS", 20_000 if QUICK else 100_000))
RATE = 160  # REGISTERs per second, refreshing seeded phones
REGISTERS = "core:rcv_requests_register"  # Kamailio's count of REGISTERs received
WINDOW = 15.0 if QUICK else 30.0  # seconds of load measured, with and without rtm
PROBES = 60 if QUICK else 120
TICK = os.sysconf("SC_CLK_TCK")
# BENCH_PROFILE=path.txt: py-spy samples rtm over the measured window (collapsed stacks),
# to see where the churn's CPU goes; the CPU figure of such a run includes py-spy's pauses.
PROFILE = os.environ.get("BENCH_PROFILE", "")


def cpu_seconds(pids: list[int], kernel_only: bool = False) -> float:
    """CPU the processes used so far (user and kernel, or kernel only), from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[12]) + (0 if kernel_only else int(fields[11]))
    return total / TICK


def thread_seconds(pid: int) -> dict[int, float]:
    """CPU each of the process's threads used so far (user and kernel), by thread id."""
    used = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        used[int(task.name)] = (int(fields[11]) + int(fields[12])) / TICK
    return used


def group(pgid: int) -> list[int]:
    """The processes of one process group (Kamailio forks its workers into its own)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def load(sipp: Sipp, kamailio: Kamailio, port: int, seconds_: float) -> None:
    """Re-REGISTER seeded phones at RATE/s for about ``seconds_`` (in the background)."""
    count = int(RATE * seconds_)
    rng = random.Random(2)
    rows = [(f"u{rng.randrange(CONTACTS):06d}", rng.randrange(1800, 3600)) for _ in range(count)]
    sipp.start("register.xml", kamailio, rows=rows, rate=RATE, port=port)


def statistic(kamailio: Kamailio, name: str) -> int:
    """One of Kamailio's statistics (``group:name``), asked over RPC with its group."""
    for line in kamailio.rpc("stats.get_statistics", name.split(":")[0] + ":"):
        if str(line).startswith(f"{name} ="):
            return int(str(line).rsplit("=", 1)[-1])
    raise RuntimeError(f"Kamailio has no {name} statistic")


def contacts(kamailio: Kamailio) -> int:
    """How many contacts Kamailio holds."""
    return statistic(kamailio, "usrloc:location_contacts")


def rows_shown(server: RtmServer) -> int:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith('rtm_table_rows{table="accounts"}'):
            return int(float(line.split()[-1]))
    return 0


class Arrivals:
    """When a row of each username first arrived in an accounts diff (or snapshot)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def read(self, ws: ClientConnection) -> None:
        async for text in ws:
            frame = json.loads(text)
            if frame.get("table") == "accounts" and frame.get("type") in ("diff", "snapshot"):
                # a snapshot built after the warmup REGISTER carries it; a changed row in a
                # diff carries only what changed
                for row in frame.get("upsert", frame.get("rows", [])):
                    if "username" in row:
                        self.at.setdefault(row["username"], time.perf_counter())
                self.changed.set()

    async def wait_for(self, user: str) -> float:
        while user not in self.at:
            self.changed.clear()
            await self.changed.wait()
        return self.at[user]


async def probe(
    server: RtmServer, kamailio: Kamailio, ready: Callable[[], None] = lambda: None
) -> list[float]:
    """REGISTER → frame latencies of PROBES REGISTERs sent at random moments; ``ready`` is
    called once the client holds the table, where the CPU window starts (a connecting
    client's snapshot is issue 10's figure, not the cost of a REGISTER)."""
    arrivals, rng, latencies = Arrivals(), random.Random(1), []
    target = ("127.0.0.1", kamailio.sip_port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        local = sock.getsockname()[1]
        async with server.ws(max_size=None) as ws:
            await ws.recv()  # hello
            await ws.send(json.dumps({"type": "resume", "epoch": None, "seq": {}}))
            reader = asyncio.create_task(arrivals.read(ws))
            try:
                # The first snapshot of the whole table is this client's to digest first.
                sock.sendto(register_request("warmup", kamailio.sip_port, local), target)
                await asyncio.wait_for(arrivals.wait_for("warmup"), 60)
                ready()
                for n in range(PROBES):
                    await asyncio.sleep(rng.uniform(0, 2 * WINDOW / PROBES))
                    user = f"probe{n:04d}"
                    sent = time.perf_counter()
                    sock.sendto(register_request(user, kamailio.sip_port, local), target)
                    latencies.append(await asyncio.wait_for(arrivals.wait_for(user), 30) - sent)
            finally:
                reader.cancel()
    return latencies


def measure(workdir: Path) -> dict[str, float]:
    kamailio = Kamailio(workdir / "kamailio", memory=(1024, 256), defines={"ULTIMER": 60})
    kamailio.start()
    sipp, port = Sipp(workdir / "sipp"), free_port(udp=True)
    server = None
    try:
        started = time.monotonic()
        seed = [(f"u{n:06d}", 3600) for n in range(CONTACTS)]
        # As fast as two cores take it; the few a loaded Kamailio drops are left out.
        sipp.run(
            "register.xml", kamailio, rows=seed, rate=3000, port=port, timeout=120, check=False
        )
        figures = {"seeded": time.monotonic() - started, "contacts": contacts(kamailio)}
        assert kamailio.process is not None
        kamailio_pids = group(kamailio.process.pid)
        load(sipp, kamailio, port, WINDOW + 1)  # without rtm: Kamailio's own cost
        before = cpu_seconds(kamailio_pids)
        time.sleep(WINDOW)
        figures["kamailio_alone"] = (cpu_seconds(kamailio_pids) - before) / WINDOW
        env = {
            "RTM_REGISTRATIONS": kamailio.source_url,
            "RTM_KAMAILIO_EVAPI": kamailio.evapi_url,
            "RTM_POLL_ACCOUNTS": "1",
            "RTM_DEMO": "0",
            "PYTHONASYNCIODEBUG": "",
        }
        server = RtmServer(workdir / "rtm", env)
        server.workdir.mkdir()
        store.migrate(server.db)
        credentials.grant(server)  # an admin session, as the tests' rtm_server has
        asked = time.monotonic()
        server.start()
        while rows_shown(server) < figures["contacts"]:
            time.sleep(0.2)
            if time.monotonic() - asked > 300:
                raise RuntimeError(f"rtm showed {rows_shown(server)} of {CONTACTS} rows")
        assert rows_shown(server) == figures["contacts"]
        figures["first_read"] = time.monotonic() - asked
        assert server.proc is not None
        rtm_pids = [server.proc.pid]
        start: list[float] = []
        threads_before: dict[int, float] = {}

        def ready() -> None:
            # The load starts with the window and outlasts it: a window that began while
            # the client digested its snapshot ran partly without load (runs of 8% and 11%).
            load(sipp, kamailio, port, WINDOW + 30)
            registers = statistic(kamailio, REGISTERS)
            start[:] = [
                cpu_seconds(rtm_pids),
                cpu_seconds(kamailio_pids),
                time.monotonic(),
                registers,
                cpu_seconds(rtm_pids, kernel_only=True),
            ]
            threads_before.update(thread_seconds(rtm_pids[0]))
            if PROFILE:
                spy = Path(sys.executable).with_name("py-spy")
                command = [spy, "record", "-p", str(rtm_pids[0]), "-d", str(int(2 * WINDOW))]
                command += ["-r", "50", "-f", "raw", "-o", PROFILE]
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        latencies = asyncio.run(probe(server, kamailio, ready))
        cpu_before, k_before, wall, registers, kernel_before = start
        wall = time.monotonic() - wall
        used = cpu_seconds(rtm_pids) - cpu_before
        figures["rtm_kernel"] = (cpu_seconds(rtm_pids, kernel_only=True) - kernel_before) / used
        figures["rtm_cpu"] = used / wall
        # The event loop runs in the main thread (its id is the pid); the rest are worker
        # threads (aiosqlite's, asyncio.to_thread's): where py-spy's samples cannot tell.
        threads = thread_seconds(rtm_pids[0])
        loop_used = threads.get(rtm_pids[0], 0.0) - threads_before.get(rtm_pids[0], 0.0)
        figures["rtm_loop_thread"] = loop_used / used
        figures["rtm_threads"] = sum(
            1 for tid, t in threads.items() if t - threads_before.get(tid, 0.0) > 0.01 * used
        )
        figures["kamailio_with_rtm"] = (cpu_seconds(kamailio_pids) - k_before) / wall
        # What the window really carried (sipp lands fewer than asked on a loaded machine).
        landed = statistic(kamailio, REGISTERS) - registers
        figures["registers_per_second"] = landed / wall
        figures["cpu_per_register"] = used / max(landed, 1)
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        figures["p50"], figures["p99"] = cuts[49], cuts[98]
        return figures
    finally:
        if server is not None:
            server.stop()
            # What rtm asked of Kamailio besides the hints (dumps, a lost link, lookups that
            # failed): what the CPU figures of the run include.
            for line in server.log().splitlines():
                if any(word in line for word in ("ul.dump", "evapi", "ul.lookup")):
                    print("   rtm:", line[-160:], flush=True)
        sipp.close()
        kamailio.stop()


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="rtm-bench-kamailio-") as workdir:
        f = measure(Path(workdir))
    load_text = f"{f['contacts'] / 1000:.0f}k contacts, {RATE} REGISTERs/s"
    answering = max(f["kamailio_with_rtm"] - f["kamailio_alone"], 0.0)
    percent = lambda value: f"{value * 100:.1f}% of a core"  # noqa: E731
    return [
        compared(
            "kamailio", f"REGISTER → frame p50, {load_text}", f["p50"], 0.1, "the 100 ms target"
        ),
        compared(
            "kamailio", f"REGISTER → frame p99, {load_text}", f["p99"], 0.25, "the 250 ms target"
        ),
        compared("kamailio", f"rtm CPU, {load_text}", f["rtm_cpu"], 0.1, "the 10% target", percent),
        Figure(
            "kamailio",
            "of which in the kernel (sockets, epoll)",
            f"{f['rtm_kernel']:.0%}",
            "py-spy sees only the rest",
        ),
        Figure(
            "kamailio",
            "of which in rtm's event-loop thread",
            f"{f['rtm_loop_thread']:.0%}",
            f"the rest in {f['rtm_threads'] - 1:.0f} other threads (each over 1% of it)",
        ),
        Figure(
            "kamailio",
            "REGISTERs landed in the window / rtm CPU per REGISTER",
            f"{f['registers_per_second']:.0f}/s / {f['cpu_per_register'] * 1e6:.0f} µs",
            f"so {RATE}/s landed cost {f['cpu_per_register'] * RATE * 100:.1f}% of a core",
        ),
        compared(
            "kamailio",
            f"Kamailio CPU answering rtm, {load_text}",
            answering,
            0.05,
            "the 5% target",
            percent,
        ),
        Figure(
            "kamailio",
            f"first ul.dump shown, {f['contacts']:.0f} contacts",
            seconds(f["first_read"]),
            f"seeded in {seconds(f['seeded'])}",
        ),
    ]

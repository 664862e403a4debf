"""One client connecting to a 100k table as the page does, right after rtm starts and warm.

Part of ``bench/connect.py`` (the wall of displays is there): the client asks
``GET /api/<table>`` (gzip) for the three tables, parses the bodies in full, as a page
would, and resumes ``/ws`` from their epoch and seq. Its first ask is made as soon as rtm
listens, so it waits for rtm's first read of the store and the shared body built then; it
is timed from that first read being in (rtm logs it) and from rtm listening. Then the same
warm, then the old path (snapshot frames over the socket). The shared body's encode is
timed in this process against the encode before (json.dumps, gzip 5), and so is one
snapshot encoded for one client as every connect cost before the shared body.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gzip
import json
import os
import statistics
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection

from server import hub, protocol
from tests.live_server import RtmServer

from .churn import cpu_seconds
from .measure import Figure, best_seconds, compared, interleaved, seconds, size

QUICK = os.environ.get("BENCH_QUICK") == "1"
CONTACTS = 20_000 if QUICK else 100_000
CONNECT_TIMEOUT = 180.0
COLD = 2 if QUICK else 3  # starts of rtm on the same store, a cold client each
TABLES = ("accounts", "trunks", "queue")


@dataclass
class Target:
    host: str
    port: int
    cookie: str
    origin: str
    pid: int = 0  # rtm's


def ready_at(server: RtmServer, since: float) -> float:
    """When rtm logged, after ``since``, that every table was read once (``time.time()``):
    the moment a restart's clients can first have their tables. Asking ``/readyz`` would
    tell it late when rtm's loop is busy right then (an encode holding the GIL)."""
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while time.monotonic() < deadline:
        for stamp, line in logged_since(server, since):
            if line.endswith(hub.READY_MESSAGE):
                return stamp
        time.sleep(0.05)
    raise RuntimeError("rtm never logged that every table was read")


def logged_since(server: RtmServer, since: float) -> list[tuple[float, str]]:
    """rtm's own log lines (``2026-12-03 05:56:28,123 INFO ...``) stamped at or after
    ``since``, with their ``time.time()``: the log holds every start's lines."""
    lines = []
    for line in server.log().splitlines():
        with contextlib.suppress(ValueError):
            stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if stamp >= since:
                lines.append((stamp, line))
    return lines


def timed_out(server: RtmServer, since: float) -> int:
    """Source reads that failed since ``since`` (on a loaded machine, a first read of 100k
    rows can take longer than the source timeout; the table is then read at the next poll)."""
    return sum("source failed" in line for _, line in logged_since(server, since))


def restart(server: RtmServer, target: Target) -> float:
    """Restart rtm on the same store and port; when it listens again (``time.time()``)."""
    server.stop()
    server.start()
    assert server.proc is not None
    target.pid = server.proc.pid
    return time.time()


@dataclass
class OneClient:
    """What one client measured: the page's path right after rtm listened (cold, once per
    start: COLD starts) and again (warm), then the old path (snapshot frames over /ws)."""

    page_bytes: int = 0
    # Per start: from rtm listening to the last row (the first read included), from rtm's
    # first read being in to the last row, and from listening to that first read.
    cold: list[float] = field(default_factory=list)
    cold_from_ready: list[float] = field(default_factory=list)
    first_read: list[float] = field(default_factory=list)
    failed: int = 0  # source reads that failed during those starts
    warm: float = 0.0
    old_bytes: int = 0
    old: float = 0.0
    old_cpu: float = 0.0
    body: dict[str, Any] = field(default_factory=dict)  # the accounts body, parsed


async def one_client(server: RtmServer, target: Target, listening: float) -> OneClient:
    """The page's path (bodies parsed in full, as a page would) started as rtm listens,
    again once warm, then the old path."""
    wire = [0]

    class Counted(ClientConnection):
        def data_received(self, data: bytes) -> None:
            wire[0] += len(data)
            super().data_received(data)

    async def resume(epoch: Any, seq: dict[str, int]) -> None:
        async with server.ws(compression="deflate", max_size=None, create_connection=Counted) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "resume", "epoch": epoch, "seq": seq}))
            sources = 0
            while sources < len(TABLES):
                frame = json.loads(await ws.recv())
                sources += "ok" in frame

    one = OneClient()
    for start in range(COLD):
        listening = restart(server, target) if start else listening
        one.page_bytes, ended, one.body = await page_path(target, resume, wire)
        while len(one.body["rows"]) < CONTACTS:  # the first read failed (timed out): the
            await asyncio.sleep(0.05)  # rows come with the next read, and so its last row
            one.page_bytes, ended, one.body = await page_path(target, resume, wire)
        ready = ready_at(server, listening)
        one.cold.append(ended - listening)
        one.first_read.append(ready - listening)
        one.failed += timed_out(server, listening)
        one.cold_from_ready.append(ended - max(ready, listening))
    started = time.perf_counter()
    await page_path(target, resume, wire)  # the body shared, as for a second tab
    one.warm = time.perf_counter() - started
    wire[0] = 0
    cpu, started = cpu_seconds(target.pid), time.perf_counter()
    await resume(None, {})
    one.old, one.old_cpu = time.perf_counter() - started, cpu_seconds(target.pid) - cpu
    one.old_bytes = wire[0]
    return one


async def page_path(
    target: Target, resume: Any, wire: list[int]
) -> tuple[int, float, dict[str, Any]]:
    """The three bodies, read and parsed in full, then the resume: (bytes, the
    ``time.time()`` when the resume ended, the accounts body)."""
    wire[0] = 0
    http_bytes, seqs, epoch, accounts = 0, {}, None, {}
    for table in TABLES:
        reader, writer = await asyncio.open_connection(target.host, target.port)
        writer.write(
            f"GET /api/{table} HTTP/1.1\r\nHost: {target.host}\r\nAccept-Encoding: gzip\r\n"
            f"Cookie: {target.cookie}\r\nConnection: close\r\n\r\n".encode()
        )
        raw = await reader.read()
        writer.close()
        http_bytes += len(raw)
        body = json.loads(zlib.decompress(raw.split(b"\r\n\r\n", 1)[1], wbits=31))
        epoch, seqs[table] = body["epoch"], body["seq"]
        accounts = body if table == "accounts" else accounts
    await resume(epoch, seqs)
    return http_bytes + wire[0], time.time(), accounts


def encode_figures(body: dict[str, Any]) -> tuple[list[Figure], float]:
    """The shared body's encode as rtm does it (server/protocol.py, hub.GZIP_LEVEL) against
    the encode before (json.dumps, gzip level 5), in this process; and the seconds of one
    snapshot encoded for one client as every connect cost before the shared body (its
    pages' JSON, then permessage-deflate as websockets does it: window 12 bits, memLevel 5)."""
    rows = body["rows"]
    source = protocol.Source("accounts", True, None, body["source"]["since"], read=True)

    def before() -> bytes:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return gzip.compress(text, 5, mtime=0)

    def now() -> bytes:
        text = protocol.table_body(body["epoch"], body["seq"], rows, source)
        return gzip.compress(text, hub.GZIP_LEVEL, mtime=0)

    def per_client() -> None:
        deflate = zlib.compressobj(wbits=-12, memLevel=5)
        for page in protocol.snapshot_pages("accounts", body["seq"], rows):
            deflate.compress(page.encode())
            deflate.flush(zlib.Z_SYNC_FLUSH)

    encode_now, encode_before = interleaved((now, 1), (before, 1), repeat=3)
    old = best_seconds(per_client, repeat=1)
    what = f"shared body of {len(rows):,} rows: JSON + gzip {hub.GZIP_LEVEL}, in the bench"
    return [
        compared("connect", what, encode_now, encode_before, "json.dumps + gzip 5"),
        compared("connect", f"{what}: bytes", len(now()), len(before()), "json.dumps + gzip 5",
                 unit=size),
        compared("connect", "one snapshot encoded for one client, as each connect was before",
                 old, encode_now, "the shared body's encode"),
    ], old  # fmt: skip


def single(server: RtmServer, target: Target, listening: float) -> tuple[list[Figure], float]:
    """One client's figures, its first ask made as soon as rtm listens (``listening``, a
    ``time.time()``), and the seconds one client's snapshot cost before the shared body."""
    one = asyncio.run(one_client(server, target, listening))
    encodes, old = encode_figures(one.body)
    what = f"one client, {CONTACTS:,} rows"
    return [
        Figure("connect", f"{what}: bytes, HTTP gzip + resume", size(one.page_bytes),
               "target ≤ 3 MB"),
        Figure("connect", f"{what}: to its last row, HTTP + resume, from rtm's first read in",
               seconds(statistics.median(one.cold_from_ready)),
               f"target ≤ 1 s; the first client after a start, asking as rtm listens; median "
               f"of {COLD} starts ({spread(one.cold_from_ready)})"),
        Figure("connect", f"{what}: the same from rtm listening",
               seconds(statistics.median(one.cold)),
               f"{spread(one.cold)}; of which rtm's first read of the store "
               f"{spread(one.first_read)}; {one.failed} source reads failed meanwhile"),
        Figure("connect", f"{what}: to its last row, HTTP + resume, body shared",
               seconds(one.warm), "target ≤ 1 s; a second client"),
        Figure("connect", f"{what}: bytes, snapshot frames (epoch null)", size(one.old_bytes),
               "the old path, permessage-deflate"),
        Figure("connect", f"{what}: to its last row, snapshot frames", seconds(one.old),
               f"the old path; {seconds(one.old_cpu)} of rtm CPU"),
        *encodes,
    ], old  # fmt: skip


def spread(values: list[float]) -> str:
    """``412 ms–1.05 s``: the least and the most of several runs."""
    return f"{seconds(min(values))}–{seconds(max(values))}"

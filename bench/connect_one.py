"""One client connecting to a 100k table as the page does, right after rtm starts and warm.

Part of ``bench/connect.py`` (the wall of displays is there): the client asks
``GET /api/<table>`` (gzip) for the three tables, parses the bodies in full, as a page
would, and resumes ``/ws`` from their epoch and seq. Its first ask is made as soon as rtm
listens, so it waits for rtm's first read of the store and the shared body built then; it
is timed from that first read being in (``/readyz``) and from rtm listening. Then the same
warm, then the old path (snapshot frames over the socket). The shared body's encode is
timed in this process against the encode before (json.dumps, gzip 5), and so is one
snapshot encoded for one client as every connect cost before the shared body.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from server import hub, protocol
from tests.live_server import RtmServer

from .churn import cpu_seconds
from .measure import Figure, best_seconds, compared, interleaved, seconds, size

QUICK = os.environ.get("BENCH_QUICK") == "1"
CONTACTS = 20_000 if QUICK else 100_000
CONNECT_TIMEOUT = 180.0
TABLES = ("accounts", "trunks", "queue")


@dataclass
class Target:
    host: str
    port: int
    cookie: str
    origin: str
    pid: int = 0  # rtm's


class Readiness(threading.Thread):
    """Asks ``/readyz`` every 10 ms from the moment rtm listens: ``at`` is when its first
    full read of every table was in (``perf_counter``), ``started`` when the asking began."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.started = time.perf_counter()
        self.at: float | None = None

    def run(self) -> None:
        with httpx.Client(timeout=5) as http:
            while self.at is None and time.perf_counter() - self.started < CONNECT_TIMEOUT:
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(self.url + "/readyz").status_code == 200:
                        self.at = time.perf_counter()
                time.sleep(0.01)


@dataclass
class OneClient:
    """What one client measured: the page's path right after rtm listened (cold) and again
    (warm), then the old path (snapshot frames over /ws); rtm's CPU for that old path."""

    page_bytes: int = 0
    cold: float = 0.0  # from rtm listening to the last row (the first read included)
    cold_from_ready: float = 0.0  # from rtm's first read being in to the last row
    first_read: float = 0.0  # from rtm listening to its first read being in
    warm: float = 0.0
    old_bytes: int = 0
    old: float = 0.0
    old_cpu: float = 0.0
    body: dict[str, Any] = field(default_factory=dict)  # the accounts body, parsed


async def one_client(server: RtmServer, target: Target, ready: Readiness) -> OneClient:
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
    one.page_bytes, ended, one.body = await page_path(target, resume, wire)
    if ready.at is None:
        raise RuntimeError("rtm's /readyz never answered 200")
    one.cold, one.first_read = ended - ready.started, ready.at - ready.started
    one.cold_from_ready = ended - max(ready.at, ready.started)
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
    ``perf_counter`` when the resume ended, the accounts body)."""
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
    return http_bytes + wire[0], time.perf_counter(), accounts


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


def single(server: RtmServer, target: Target, ready: Readiness) -> tuple[list[Figure], float]:
    """One client's figures, and the seconds one client's snapshot cost before the shared
    body (encode_figures)."""
    one = asyncio.run(one_client(server, target, ready))
    encodes, old = encode_figures(one.body)
    what = f"one client, {CONTACTS:,} rows"
    return [
        Figure("connect", f"{what}: bytes, HTTP gzip + resume", size(one.page_bytes),
               "target ≤ 3 MB"),
        Figure("connect", f"{what}: to its last row, HTTP + resume, from rtm's first read in",
               seconds(one.cold_from_ready),
               "target ≤ 1 s; the first client after a start, asking as rtm listens"),
        Figure("connect", f"{what}: the same from rtm listening", seconds(one.cold),
               f"of which rtm's first read of the store {seconds(one.first_read)}"),
        Figure("connect", f"{what}: to its last row, HTTP + resume, body shared",
               seconds(one.warm), "target ≤ 1 s; a second client"),
        Figure("connect", f"{what}: bytes, snapshot frames (epoch null)", size(one.old_bytes),
               "the old path, permessage-deflate"),
        Figure("connect", f"{what}: to its last row, snapshot frames", seconds(one.old),
               f"the old path; {seconds(one.old_cpu)} of rtm CPU"),
        *encodes,
    ], old  # fmt: skip

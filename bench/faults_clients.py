"""The fault bench's clients (bench/faults.py): real WebSockets, one asyncio loop per process.

Each client does what the page does with the socket: hello, resume (its epoch and seqs,
or nothing the first time), applies snapshots and diffs, and reconnects with capped
jittered backoff when closed. It keeps only what the bench compares: accounts as id →
User-Agent, trunks as id → status, the queue's ids, and each source frame of the table
the bench watches (the queue unless told otherwise) it was sent: stale with the reason, and
back. A command pipe asks a process how its clients do.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import connect

AGENT = re.compile(r"fault-(\d+)")
TABLES = ("accounts", "trunks", "queue")


@dataclass
class Target:
    url: str  # ws://host:port/ws
    cookie: str
    origin: str


@dataclass
class Client:
    epoch: str | None = None
    seq: dict[str, int] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)
    live: bool = False  # caught up on every table since its last (re)connect
    connects: int = 0
    closes: list[str] = field(default_factory=list)  # "code reason" of each close by rtm
    arrived: dict[int, float] = field(default_factory=dict)  # fault-N agent -> arrival
    watched: str = "queue"  # the table whose source frames and diffs are recorded
    watched_sources: list[tuple[bool, str]] = field(default_factory=list)
    watched_diffs: int = 0  # its diffs received (a stale source must send none)

    def handle(self, frame: dict[str, Any], now: float, sources: set[str]) -> None:
        kind, table = frame.get("type"), frame.get("table", "")
        if kind == "hello":
            if frame["epoch"] != self.epoch:
                self.seq = {}
            self.epoch = frame["epoch"]
        elif kind == "snapshot":
            page = self.pages.setdefault(table, {})
            page.update({row["id"]: self.keep(table, row, None) for row in frame["rows"]})
            if frame["final"]:
                self.tables[table] = self.pages.pop(table)
                self.seq[table] = frame["seq"]
        elif kind == "diff":
            if frame["seq"] != self.seq.get(table, -1) + 1:
                raise RuntimeError(f"{table}: seq {frame['seq']} after {self.seq.get(table)}")
            self.seq[table] = frame["seq"]
            rows = self.tables.setdefault(table, {})
            for key in frame["delete"]:
                rows.pop(key, None)
            for row in frame["upsert"]:
                rows[row["id"]] = self.keep(table, row, rows.get(row["id"]))
                agent = AGENT.search(str(row.get("user_agent", "")))
                if agent:
                    self.arrived.setdefault(int(agent[1]), now)
            self.watched_diffs += table == self.watched
        elif kind == "source":
            sources.add(table)
            if table == self.watched:
                self.watched_sources.append((bool(frame["ok"]), str(frame.get("error") or "")))

    @staticmethod
    def keep(table: str, row: dict[str, Any], had: Any) -> Any:
        if table == "accounts":
            return row.get("user_agent", had)
        if table == "trunks":
            return row.get("status", had)
        return True


async def small_window(url: str, rcvbuf: int) -> socket.socket:
    """A connected socket with a small receive buffer, set before the handshake so the window
    it advertises stays small: a stopped process's sockets then fill in seconds."""
    address = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (address.hostname, address.port))
    except BaseException:
        sock.close()
        raise
    return sock


async def follow(target: Target, one: Client, stopping: asyncio.Event, rcvbuf: int) -> None:
    """Connect, catch up and follow; on any close, reconnect (0.1–2 s jittered backoff)."""
    backoff = 0.1
    while not stopping.is_set():
        try:
            own = {"sock": await small_window(target.url, rcvbuf)} if rcvbuf else {}
            async with connect(
                target.url,
                **own,  # type: ignore[arg-type]
                compression="deflate",
                additional_headers={"Cookie": target.cookie},
                origin=target.origin,  # type: ignore[arg-type]
                max_size=None,
                open_timeout=20,
                ping_interval=None,
            ) as ws:
                one.connects += 1
                # hello: after a restart its new epoch makes the resume a snapshot
                one.handle(json.loads(await ws.recv()), time.perf_counter(), set())
                await ws.send(json.dumps({"type": "resume", "epoch": one.epoch, "seq": one.seq}))
                sources: set[str] = set()
                async for text in ws:
                    one.handle(json.loads(text), time.perf_counter(), sources)
                    if not one.live and sources >= set(TABLES):
                        one.live, backoff = True, 0.1
                if ws.close_code is not None and not stopping.is_set():
                    one.closes.append(f"{ws.close_code} {ws.close_reason}")
        except Exception as exc:  # noqa: BLE001 - refused, reset or cut: reconnect, as a page
            if not stopping.is_set():
                one.closes.append(type(exc).__name__)
        one.live = False
        await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
        backoff = min(2.0, backoff * 2)


def equal(one: Client, truth: dict[str, dict[str, Any]]) -> bool:
    return one.live and all(one.tables.get(table) == rows for table, rows in truth.items())


async def serve(pipe: Connection, target: Target, count: int, rcvbuf: int) -> None:
    """Run ``count`` clients; answer the bench's commands until "stop"."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    clients = [Client() for _ in range(count)]
    tasks = [asyncio.create_task(follow(target, one, stopping, rcvbuf)) for one in clients]
    while True:
        command, arg = await loop.run_in_executor(None, pipe.recv)
        if command == "equal":  # arg: the server's tables, as the clients keep them
            pipe.send(sum(equal(one, arg) for one in clients))
        elif command == "live":
            pipe.send(sum(one.live for one in clients))
        elif command == "record":  # forget arrivals and source frames so far; arg: a table
            for one in clients:
                one.arrived.clear()
                one.watched = arg or "queue"
                one.watched_sources.clear()
                one.watched_diffs = 0
            pipe.send(None)
        elif command == "latencies":  # arg: {agent number: commit time}
            pipe.send(
                [one.arrived[n] - t for one in clients for n, t in arg.items() if n in one.arrived]
            )
        elif command == "sources":
            pipe.send([(one.watched_sources, one.watched_diffs) for one in clients])
        elif command == "closes":
            pipe.send([close for one in clients for close in one.closes])
        else:
            stopping.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            pipe.send(None)
            return


def worker(pipe: Connection, target: Target, count: int, rcvbuf: int = 0) -> None:
    asyncio.run(serve(pipe, target, count, rcvbuf))

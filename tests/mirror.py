"""A protocol-following WebSocket client that keeps its own copy of every table."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from server.diff import Changes, apply

from .live_server import UNIT

RECHECK = 0.1  # seconds without a frame before ``Mirror.until`` looks at its condition again


async def close_code(ws: ClientConnection, *frames: str) -> int:
    """Send ``frames``, then read until the server closes the socket; the code it closed with."""
    with pytest.raises(ConnectionClosed) as closed:
        for frame in frames:
            await ws.send(frame)
        while True:
            await asyncio.wait_for(ws.recv(), 10 * UNIT)
    assert closed.value.rcvd is not None, "closed without a close frame from the server"
    return closed.value.rcvd.code


class Mirror:
    """Applies hello/snapshot/diff/source frames like the page does, checking seq order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.epoch: str | None = None
        self.hello: dict[str, Any] = {}
        self.tables: dict[str, dict[str, dict[str, Any]]] = {}
        self.seq: dict[str, int] = {}
        self.sources: dict[str, dict[str, Any]] = {}
        self.frames: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._pages: dict[str, list[dict[str, Any]]] = {}

    async def start(self, epoch: str | None = None, seq: dict[str, int] | None = None) -> Mirror:
        """Read hello, send resume, and read until every table has been caught up."""
        await self.receive_one()
        await self.ws.send(json.dumps({"type": "resume", "epoch": epoch, "seq": seq or {}}))
        await self.until(lambda m: set(m.sources) >= set(m.hello["tables"]))
        return self

    def handle(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "hello":
            self.hello = frame
            self.epoch = frame["epoch"]
        elif kind == "snapshot":
            table = frame["table"]
            self._pages.setdefault(table, []).extend(frame["rows"])
            if frame["final"]:
                self.tables[table] = {r["id"]: r for r in self._pages.pop(table)}
                self.seq[table] = frame["seq"]
        elif kind == "diff":
            table = frame["table"]
            expected = self.seq.get(table, 0) + 1
            assert frame["seq"] == expected, f"{table}: seq {frame['seq']} after {expected - 1}"
            self.tables[table] = apply(
                self.tables.get(table, {}), Changes(frame["upsert"], frame["delete"])
            )
            self.seq[table] = frame["seq"]
        elif kind == "source":
            self.sources[frame["table"]] = frame

    async def receive_one(self, timeout: float = 10 * UNIT) -> dict[str, Any]:
        text = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(text, str)
        self.raw.append(text)
        frame: dict[str, Any] = json.loads(text)
        self.frames.append(frame)
        self.handle(frame)
        return frame

    async def until(self, condition: Callable[[Mirror], bool], timeout: float = 10 * UNIT) -> float:
        """Read frames until ``condition(self)`` holds; return the seconds it took. The
        condition is also checked between frames (every ``RECHECK`` seconds of quiet), so
        it may depend on more than the frames: a watcher thread's count, say."""
        started = time.monotonic()
        deadline = started + timeout
        while not condition(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("condition not met in time")
            try:  # cancelling websockets' recv() loses nothing: the frame comes next time
                await self.receive_one(min(remaining, RECHECK))
            except TimeoutError:
                continue
        return time.monotonic() - started


def users_by_node(mirror: Mirror) -> set[tuple[str, str]]:
    """(node, username) of every accounts row the mirror holds (several SIP nodes)."""
    return {(str(r["node"]), str(r["username"])) for r in mirror.tables["accounts"].values()}


def node_health(mirror: Mirror) -> dict[str, dict[str, Any]]:
    """The accounts source's health per node, from its last ``source`` frame."""
    return {n["node"]: n for n in mirror.sources["accounts"].get("nodes", [])}

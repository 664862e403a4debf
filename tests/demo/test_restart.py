"""`make run` again on a store with an earlier demo's rows, watched by a client from the start.

A real uvicorn on a free port (in this process, so the test can order two threads), the
real demo, collectors, SQLite store and a real websockets client. The test only decides
*when* things happen: the demo waits for the client before it writes, and after each of its
commits until the contacts collector has read it. So every state the demo ever commits
reaches the client, with no luck involved in hitting the race a restart sometimes lost.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from collections.abc import Awaitable, Sequence
from contextlib import closing
from pathlib import Path
from typing import TypeVar

import pytest
import uvicorn

from server import store
from server.app import create_app
from server.collectors.base import RowChanges
from server.collectors.registrations import RegistrationCollector
from server.config import from_env
from server.demo import run as demo
from server.demo.traffic import DemoTraffic, Statement
from server.rows import Rows

from .. import credentials
from ..live_server import UNIT, RtmServer
from ..mirror import Mirror
from ..waiting import eventually


class Interleaving:
    """Holds the demo's writes until the client is in, then each until it has been read."""

    def __init__(self) -> None:
        self.client_in = threading.Event()
        self.changed = threading.Condition()
        self.commits = 0  # the demo's commits so far
        self.read = 0  # the latest commit a finished contacts read began after
        self.released = False

    def write(self, conn: sqlite3.Connection, statements: Sequence[Statement]) -> None:
        """The demo's write_statements, in its own thread."""
        self.client_in.wait(10 * UNIT)
        demo_write(conn, statements)
        with self.changed:
            self.commits += 1
            commit = self.commits
            self.changed.wait_for(lambda: self.released or self.read >= commit, 10 * UNIT)

    async def fetch(self, collector: RegistrationCollector) -> Rows | None:
        return await self._reading(collector_fetch(collector))

    async def changes(self, collector: RegistrationCollector) -> RowChanges | None:
        return await self._reading(collector_changes(collector))

    async def _reading(self, read: Awaitable[T]) -> T:
        """A read (whole, or of the change log) that began after the commits so far."""
        with self.changed:
            after = self.commits
        answer = await read
        with self.changed:
            self.read = max(self.read, after)
            self.changed.notify_all()
        return answer

    def release(self) -> None:
        with self.changed:
            self.released = True
            self.changed.notify_all()
        self.client_in.set()


T = TypeVar("T")
demo_write = demo.write_statements
collector_fetch = RegistrationCollector.fetch
collector_changes = RegistrationCollector.changes


def earlier_run(db: str) -> None:
    """What the last `make run` left in the store: the demo's directory and contacts."""
    store.migrate(db)
    traffic = DemoTraffic(random.Random(1), 300, time.time())
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        for batch in traffic.setup(time.time()):
            demo_write(conn, batch)


@pytest.mark.asyncio
async def test_a_client_at_start_never_sees_the_contacts_vanish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo's start-up cleared `location` in one commit and wrote the new contacts in
    # later ones: a poll in between read a complete, committed, empty table, and the page
    # showed Live and "0 registered users" until the next poll (2 of 8 real restarts).
    server = RtmServer(tmp_path)  # its port, store and credentials; served in-process
    earlier_run(server.db)
    credentials.grant(server)
    order = Interleaving()
    monkeypatch.setattr(demo, "write_statements", order.write)
    # A function, so the class binds each collector to it as its `self`.
    monkeypatch.setattr(RegistrationCollector, "fetch", lambda self: order.fetch(self))
    monkeypatch.setattr(RegistrationCollector, "changes", lambda self: order.changes(self))
    env = {"RTM_DB": server.db, "RTM_PORT": str(server.port), "RTM_DEMO": "1", "RTM_POLL": "0.2"}
    app = create_app(from_env(env))
    uv = uvicorn.Server(uvicorn.Config(app, port=server.port, log_level="warning"))
    serving = asyncio.create_task(uv.serve())
    try:
        await eventually(lambda: uv.started, 10 * UNIT, "uvicorn listening")
        async with server.ws() as ws:
            mirror = await Mirror(ws).start()
            earlier = set(mirror.tables["accounts"])
            assert earlier, "the client should first see the earlier run's contacts"
            seen: list[int] = []

            def replaced(m: Mirror) -> bool:
                contacts = m.tables["accounts"]
                seen.append(len(contacts))
                return bool(contacts) and not earlier & contacts.keys()

            order.client_in.set()
            await mirror.until(replaced, 20 * UNIT)
        assert min(seen) > 0, f"contacts the client held, frame by frame: {seen}"
    finally:
        order.release()
        uv.should_exit = True
        await asyncio.wait_for(serving, 10 * UNIT)

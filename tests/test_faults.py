"""Faults survived, small (bench/faults.py has the 500-client figures): 20 real sockets
following rtm through a ``kill -9`` and restart, and a msilo source locked by a writer or
answering garbage: stale with the reason, no queue row changed meanwhile, then recovered."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bench.faults import seed_silo
from bench.faults_clients import Client, Target, equal, follow

from .conftest import StartRtm
from .live_server import UNIT, RtmServer
from .store_rows import add_contact
from .waiting import eventually

pytestmark = pytest.mark.asyncio
CLIENTS = 20


def truth(server: RtmServer) -> dict[str, dict[str, Any]]:
    keep = {"accounts": "user_agent", "trunks": "status", "queue": None}
    tables = {}
    for table, field in keep.items():
        rows = server.get(f"/api/{table}").json()["rows"]
        tables[table] = {r["id"]: (r.get(field) if field else True) for r in rows}
    return tables


@pytest.fixture
def server(start_rtm: StartRtm, tmp_path: Path) -> RtmServer:
    silo = str(tmp_path / "kamailio.sqlite")
    seed_silo(silo)
    env = {"RTM_QUEUE": "msilo+sqlite:///" + silo, "RTM_POLL_QUEUE": "0.2"}
    started = start_rtm(env=env, seed=lambda db: add_contact(db, "alice"))
    started.silo = silo  # type: ignore[attr-defined]
    return started


@pytest_asyncio.fixture
async def clients(server: RtmServer) -> AsyncIterator[list[Client]]:
    cookie = "; ".join(f"{k}={v}" for k, v in server.cookies.items())
    target = Target(server.ws_url, cookie, server.url)
    stopping = asyncio.Event()
    followers = [Client() for _ in range(CLIENTS)]
    tasks = [asyncio.create_task(follow(target, one, stopping, 0)) for one in followers]
    yield followers
    stopping.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def all_equal(server: RtmServer, clients: list[Client], within: float) -> None:
    def check() -> bool:
        tables = truth(server)
        return all(equal(one, tables) for one in clients)

    await eventually(check, within, "every client equal to the server")


async def test_every_client_is_back_and_equal_after_kill_9(
    server: RtmServer, clients: list[Client]
) -> None:
    await all_equal(server, clients, 20 * UNIT)
    server.stop(signal.SIGKILL)
    add_contact(server.db, "written-while-down")
    server.start()
    await all_equal(server, clients, 30 * UNIT)
    assert any(agent for one in clients for agent in one.tables["accounts"].values())
    assert all(one.connects >= 2 for one in clients)


def lock(silo: str) -> Callable[[], None]:
    conn = sqlite3.connect(silo, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("INSERT INTO silo (src_addr, dst_addr, username, callid) VALUES ('a','b','b','x')")

    def release() -> None:
        conn.execute("COMMIT")
        conn.close()

    return release


def garble(silo: str) -> Callable[[], None]:
    good = Path(silo).read_bytes()
    with open(silo, "r+b") as file:
        file.write(os.urandom(len(good)))

    def restore() -> None:
        with open(silo, "r+b") as file:
            file.write(good)

    return restore


@pytest.mark.parametrize(("fault", "reason"), [(lock, "locked"), (garble, "not a database")])
async def test_a_broken_queue_source_is_stale_with_its_reason_and_shows_no_wrong_row(
    server: RtmServer, clients: list[Client], fault: Callable[[str], Any], reason: str
) -> None:
    await all_equal(server, clients, 20 * UNIT)
    before = truth(server)["queue"]
    for one in clients:
        one.watched_sources.clear()
        one.watched_diffs = 0
    repair = fault(server.silo)  # type: ignore[attr-defined]
    try:
        await eventually(
            lambda: all(
                any(not ok and reason in why for ok, why in one.watched_sources) for one in clients
            ),  # fmt: skip
            15 * UNIT,
            "every client told the queue is stale, and why",
        )
        assert all(one.watched_diffs == 0 and one.tables["queue"] == before for one in clients)
    finally:
        repair()
    await eventually(
        lambda: all(one.watched_sources[-1][0] for one in clients), 15 * UNIT, "recovered"
    )
    await all_equal(server, clients, 15 * UNIT)

"""The demo traffic generator: its rows look like a SIP stack's, and they change by themselves.

Two kinds of test: the I/O-free ``DemoTraffic`` driven by a fake clock through ten simulated
minutes against a real SQLite file (fast, deterministic), and ``run_demo`` itself in real
time against a store another connection keeps reading.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from server.demo import people as demo_data
from server.demo import run as demo
from server.demo.traffic import SWEEP_SECONDS, DemoTraffic
from server.store import migrate
from server.times import unix_to_julian as julian

from ..conftest import StartRtm
from ..live_server import UNIT
from ..mirror import Mirror
from ..waiting import eventually, until

START = 1_800_000_000.0
CONTACT = re.compile(r"^sip:[a-z0-9.]+@[0-9.]+:\d{1,5};transport=(udp|tcp|tls)$")
RECEIVED = re.compile(r"^sip:[0-9.]+:\d{1,5}(;transport=(tcp|tls))?$")
SOCKETS = {"udp:127.0.0.1:5060", "tcp:127.0.0.1:5060", "tls:127.0.0.1:5061"}


def _store(tmp_path: Path) -> sqlite3.Connection:
    path = str(tmp_path / "rtm.db")
    migrate(path)
    return sqlite3.connect(path, isolation_level=None)


def _rows(conn: sqlite3.Connection, sql: str) -> dict[str, tuple[object, ...]]:
    """Rows keyed by their first column."""
    return {str(row[0]): row[1:] for row in conn.execute(sql)}


def test_same_seed_replays_the_same_statements() -> None:
    def run(seed: int) -> list[object]:
        traffic = DemoTraffic(random.Random(seed), 50, START)
        out: list[object] = list(traffic.setup(START))
        out += [traffic.tick(START + step * 0.5) for step in range(200)]
        return out

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_simulated_minutes_look_like_a_pbx(tmp_path: Path) -> None:
    conn = _store(tmp_path)
    traffic = DemoTraffic(random.Random(11), 200, START)
    for batch in traffic.setup(START):
        demo.write_statements(conn, batch)
    assert conn.execute("SELECT count(*) FROM accounts").fetchone()[0] == 200
    first = _rows(conn, "SELECT ruid, cseq, expires FROM location")
    trunks_first = _rows(conn, "SELECT trunk, status, since FROM trunk_status")
    expired_seen: dict[str, float] = {}  # ruid -> when it was first seen expired but present
    swept = refreshed = 0
    messages_seen: dict[str, str] = {}
    now = START
    for _ in range(1200):
        now += 0.5
        demo.write_statements(conn, traffic.tick(now))
        present = _rows(conn, "SELECT ruid, cseq, expires FROM location")
        for ruid, (_, expires) in present.items():
            if expires < julian(now):  # type: ignore[operator]
                expired_seen.setdefault(ruid, now)
        for ruid, since in list(expired_seen.items()):
            if ruid not in present:
                # Kamailio keeps an expired contact until its timer runs, then deletes it.
                assert now - since <= SWEEP_SECONDS + 0.5
                del expired_seen[ruid]
                swept += 1
        refreshed += sum(
            1 for r, (cseq, exp) in present.items() if r in first and cseq > first[r][0]
        )
        for message_id, status in conn.execute("SELECT id, status FROM messages"):
            messages_seen.setdefault(message_id, status)
    assert swept > 0 and refreshed > 0
    assert any(status == "ENQUEUED" for status in messages_seen.values())
    still_queued = _rows(conn, "SELECT id FROM messages WHERE status = 'ENQUEUED'")
    assert messages_seen.keys() - still_queued.keys(), "no message was delivered or purged"
    trunks_now = _rows(conn, "SELECT trunk, status, since FROM trunk_status")
    assert trunks_now != trunks_first
    online = conn.execute("SELECT count(DISTINCT username) FROM location").fetchone()[0]
    assert 0.4 * 200 < online < 0.9 * 200
    _assert_rows_are_well_formed(conn, now)
    conn.close()


def _assert_rows_are_well_formed(conn: sqlite3.Connection, now: float) -> None:
    rows = conn.execute(
        "SELECT ruid, username, domain, contact, received, socket, expires, last_modified,"
        " user_agent, callid, cseq, connection_id FROM location"
    ).fetchall()
    assert rows
    for ruid, user, domain, contact, received, socket, expires, modified, *rest in rows:
        ua, callid, cseq, tcp = rest
        assert ruid.startswith("uloc-") and domain == demo_data.DOMAIN
        assert CONTACT.match(contact) and contact.startswith(f"sip:{user}@")
        assert received is None or RECEIVED.match(received)
        assert socket in SOCKETS
        assert (tcp == -1) == socket.startswith("udp:")
        # REAL Julian days in UTC, as Kamailio's db_sqlite writes them.
        assert isinstance(expires, float) and isinstance(modified, float)
        assert julian(now - 3700) < modified <= julian(now) < expires + SWEEP_SECONDS / 86400
        assert 60 / 86400 - 1e-6 <= expires - modified <= 3600 / 86400 + 1e-6
        assert ua and callid and cseq >= 1
    statuses = {s for (s,) in conn.execute("SELECT status FROM trunk_status")}
    assert statuses <= {"OK", "FAILED", "PENDING", "DISABLED"}
    for reason, status in conn.execute("SELECT reason, status FROM trunk_status"):
        assert (reason is None) == (status == "OK")
    for payload, received in conn.execute("SELECT payload, received FROM messages"):
        assert isinstance(payload, bytes) and payload
        assert START * 1000 < received <= now * 1000


class Reader(threading.Thread):
    """Reads the store the way a collector does, as fast as it can, recording any error."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.path, self.errors, self.reads = path, [], 0
        self.stopping = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=1.0)
        try:
            while not self.stopping.is_set():
                try:
                    conn.execute("PRAGMA data_version").fetchone()
                    conn.execute("SELECT * FROM location WHERE expires > julianday('now')")
                    conn.execute("SELECT id, status FROM messages").fetchall()
                    self.reads += 1
                except sqlite3.Error as exc:
                    self.errors.append(str(exc))
        finally:
            conn.close()


def test_run_demo_writes_live_traffic_while_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="rtm.demo")
    path = str(tmp_path / "rtm.db")
    migrate(path)
    reader = Reader(path)
    probe = sqlite3.connect(path)

    def query(sql: str) -> dict[str, tuple[object, ...]]:
        return _rows(probe, sql)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(demo.run_demo(path, seed=3, accounts=120, stop=stop, tick=0.05))
        accounts, contacts = "SELECT id FROM accounts", "SELECT ruid FROM location"
        enqueued = "SELECT id FROM messages WHERE status = 'ENQUEUED'"
        statuses = "SELECT trunk, status FROM trunk_status"
        await eventually(lambda: len(query(accounts)) == 120, 10 * UNIT, "accounts")
        await eventually(lambda: len(query(contacts)) > 40, 10 * UNIT, "contacts")
        reader.start()
        first_contacts, first_statuses = query(contacts), query(statuses)
        await eventually(lambda: bool(query(enqueued)), 10 * UNIT, "a queued message")
        queued = query(enqueued)
        await eventually(
            lambda: bool(first_contacts.keys() - query(contacts).keys()),
            10 * UNIT,
            "a contact to leave",
        )
        await eventually(
            lambda: query(statuses) != first_statuses, 20 * UNIT, "a trunk status change"
        )
        await eventually(
            lambda: bool(queued.keys() - query(enqueued).keys()),
            20 * UNIT,
            "a message to leave the queue",
        )
        stop.set()
        await asyncio.wait_for(task, 5 * UNIT)

    payloads = [p for (p,) in probe.execute("SELECT payload FROM messages")]
    try:
        asyncio.run(scenario())
        payloads += [p for (p,) in probe.execute("SELECT payload FROM messages")]
    finally:
        reader.stopping.set()
        reader.join()
        probe.close()
    assert reader.errors == [] and reader.reads > 0
    assert "skipped" not in caplog.text
    assert payloads
    for payload in payloads:
        for form in (payload.hex(), repr(payload), payload[:16].hex()):
            assert form not in caplog.text


def test_cancelled_demo_closes_and_a_rerun_replaces_its_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "rtm.db")
    migrate(path)

    async def run_until_new_contacts(seed: int, before: set[str]) -> set[str]:
        task = asyncio.create_task(demo.run_demo(path, seed=seed, accounts=30, tick=0.05))
        probe = sqlite3.connect(path, timeout=5)
        try:
            await eventually(
                lambda: bool(_ruids(probe) - before) and _count(probe, "messages") > 0,
                10 * UNIT,
                "new contacts and messages",
            )
        finally:
            probe.close()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with closing(sqlite3.connect(path)) as conn:
            return _ruids(conn)

    first = asyncio.run(run_until_new_contacts(9, set()))
    second = asyncio.run(run_until_new_contacts(10, first))
    # The second run replaced the first run's contacts with its own.
    assert first and second and not first & second
    with closing(sqlite3.connect(path)) as conn:
        assert _count(conn, "accounts") >= 30
    assert len({ruid.rsplit("-", 1)[0] for ruid in second}) == 1


def _ruids(conn: sqlite3.Connection) -> set[str]:
    return {ruid for (ruid,) in conn.execute("SELECT ruid FROM location")}


def _count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_demo_needs_two_accounts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        asyncio.run(demo.run_demo(str(tmp_path / "rtm.db"), accounts=1))


def test_rtm_demo_arguments() -> None:
    parser = argparse.ArgumentParser(exit_on_error=False)
    demo.register(parser.add_subparsers())
    args = parser.parse_args(["demo", "--db", "x.db", "--seed", "4", "--accounts", "50"])
    assert (args.db, args.seed, args.accounts, args.handler) == ("x.db", 4, 50, demo.main)
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--accounts", "1"])


def test_rtm_demo_runs_alone_and_stops_on_sigterm(tmp_path: Path) -> None:
    path = str(tmp_path / "fresh" / "rtm.db")  # no store yet: rtm demo creates it
    command = [sys.executable, "-m", "server.cli", "demo", "--db", path, "--accounts", "20"]
    proc = subprocess.Popen(
        [*command, "--seed", "2"],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        until(
            lambda: Path(path).exists() and _count_when_ready(path, "location") > 0,
            20 * UNIT,
            "rtm demo writing contacts",
            process=proc,
        )
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=10 * UNIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output
    assert b"seed 2" in output and b"Traceback" not in output


def _count_when_ready(path: str, table: str) -> int:
    with closing(sqlite3.connect(path, timeout=5)) as conn:
        try:
            return _count(conn, table)
        except sqlite3.OperationalError:  # schema not created yet
            return 0


@pytest.mark.asyncio
async def test_served_demo_reaches_the_page_through_the_collectors(start_rtm: StartRtm) -> None:
    server = start_rtm(env={"RTM_DEMO": "1", "RTM_POLL": "0.2"})
    async with server.ws() as ws:
        mirror = await Mirror(ws).start()
        assert mirror.hello.get("demo") is True
        await mirror.until(
            lambda m: (
                len(m.tables["accounts"]) > 50
                and len(m.tables["trunks"]) == len(demo_data.TRUNKS)
                and len(m.tables["queue"]) > 0
            ),
            20 * UNIT,
        )
        # The tables keep changing by themselves: contacts refresh or leave, messages move.
        seq = dict(mirror.seq)
        await mirror.until(lambda m: m.seq["accounts"] > seq["accounts"], 10 * UNIT)
        await mirror.until(lambda m: m.seq["queue"] > seq["queue"], 10 * UNIT)
    contact = next(iter(mirror.tables["accounts"].values()))
    assert contact["owner"] and contact["ip"] and contact["transport"] in {"UDP", "TCP", "TLS"}
    assert all(source["ok"] for source in mirror.sources.values())


def test_a_restarted_demo_never_commits_a_store_without_its_contacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `make run` again on a store with demo rows: the demo's start-up cleared `location` in
    # one transaction and wrote the new contacts in later ones, so a poll in between read a
    # complete, committed, empty table and a wall showed "0 registered users". Every
    # commit's state is what readers can see; none may lack the contacts.
    path = str(tmp_path / "rtm.db")
    migrate(path)
    domain = demo_data.DOMAIN
    counts: list[int] = []
    opened = demo._open

    def traced(db_path: str) -> sqlite3.Connection:
        conn = opened(db_path)
        watcher = sqlite3.connect(db_path)

        def on_statement(sql: str) -> None:
            # Traced before it runs: at each BEGIN, the last commit is what readers see.
            if sql.strip().upper().startswith("BEGIN"):
                query = "SELECT count(*) FROM location WHERE domain = ?"
                counts.append(watcher.execute(query, (domain,)).fetchone()[0])

        conn.set_trace_callback(on_statement)
        return conn

    def contacts() -> int:
        with closing(sqlite3.connect(path)) as conn:
            query = "SELECT count(*) FROM location WHERE domain = ?"
            return int(conn.execute(query, (domain,)).fetchone()[0])

    async def run_once(seed: int, started: Callable[[], bool]) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(demo.run_demo(path, seed=seed, accounts=500, stop=stop))
        await eventually(started, 10 * UNIT, "the demo's start-up")
        stop.set()
        await asyncio.wait_for(task, 5 * UNIT)

    # The earlier run whose rows the restart replaces, then the restart, traced.
    asyncio.run(run_once(1, lambda: contacts() > 0))
    monkeypatch.setattr(demo, "_open", traced)
    asyncio.run(run_once(2, lambda: len(counts) >= 3))
    counts.append(contacts())
    assert counts and all(count > 0 for count in counts), counts

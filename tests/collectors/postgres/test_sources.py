"""The PostgreSQL sources against a real server: what they read, what the change log tells
them, and every way of losing track falling back to a full read that loses nothing."""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import psycopg
import pytest

from server.collectors import open_source
from server.collectors.base import YIELD_EVERY, ChangeFeed, RowChanges
from server.collectors.postgres.changes import ChangeLog
from server.collectors.postgres.directory import parse_directory
from server.collectors.postgres.queue import PostgresQueue
from server.collectors.postgres.registrations import CONTACTS_BY_ID_SQL, PostgresRegistrations
from server.collectors.runner import CollectorRunner
from server.config import Config
from server.hub import Hub

from ...services import PostgresServer
from ..test_sqlite_sources import turns_while_building
from .conftest import CONTACT_SQL, MakeDatabase, contact_values, pg_write


def add_contact(url: str, username: str, expires_in: float = 3600, **kwargs: object) -> str:
    values = contact_values(username, time.time() + expires_in, **kwargs)  # type: ignore[arg-type]
    pg_write(url, CONTACT_SQL, values)
    return str(values[0])


@pytest.mark.asyncio
async def test_contacts_of_every_node_in_one_table(kamailio_db: MakeDatabase) -> None:
    url = kamailio_db()
    pg_write(
        url, "INSERT INTO accounts (username, owner, caller_id) VALUES ('alice', 'Alice', '100')"
    )
    a = add_contact(url, "alice", node=1)
    b = add_contact(url, "bob", node=2)
    collector = open_source("accounts", url, Config())
    assert isinstance(collector, PostgresRegistrations) and isinstance(collector, ChangeFeed)
    try:
        rows = await collector.fetch()
        assert set(rows) == {a, b}
        assert (rows[a]["node"], rows[a]["owner"], rows[a]["caller_id"]) == (1, "Alice", "100")
        assert (rows[b]["node"], rows[b]["owner"]) == (2, "")
        assert rows[a]["ip"] == "192.0.2.10" and rows[a]["expires"].endswith("Z")
        assert await collector.changes() == RowChanges()
        c = add_contact(url, "carol", node=2)
        changes = await collector.changes()
        assert changes is not None and set(changes.upsert) == {c} and not changes.delete
        pg_write(url, "DELETE FROM location WHERE ruid = %s", (a,))
        assert await collector.changes() == RowChanges(delete={a})
        pg_write(url, "UPDATE accounts SET owner = 'Alice L.' WHERE username = 'alice'")
        pg_write(url, "INSERT INTO accounts (username, owner) VALUES ('bob', 'Bob')")
        changes = await collector.changes()
        assert changes is not None and {r["owner"] for r in changes.upsert.values()} == {"Bob"}
        pending, rows = await collector.reconcile()
        assert pending == RowChanges() and set(rows) == {b, c}
    finally:
        await collector.close()


@pytest.mark.asyncio
async def test_a_big_full_read_lets_the_loop_run_between_rows(
    kamailio_db: MakeDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = kamailio_db()
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.executemany(
            CONTACT_SQL,
            [contact_values(f"u{i:05d}", time.time() + 3600) for i in range(3 * YIELD_EVERY + 1)],
        )
    collector = open_source("accounts", url, Config())
    try:
        assert len(await turns_while_building(collector, monkeypatch)) >= 4
    finally:
        await collector.close()


@pytest.mark.asyncio
async def test_what_a_full_read_keeps_gives_the_cyclic_gc_nothing_per_contact(
    kamailio_db: MakeDatabase,
) -> None:
    """Each full collection walks every object the GC tracks: kept per contact, a million
    of them were ~1.3 s of a held GIL per read (py-spy on a cluster's new leader). What the
    source keeps between reads (rows, versions) must be plain values, tracked by nothing."""
    url = kamailio_db()
    contacts = 2 * YIELD_EVERY
    collector = open_source("accounts", url, Config())
    try:
        assert await collector.fetch() == {}  # connected, every lazy import done
        with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
            cursor.executemany(
                CONTACT_SQL,
                [contact_values(f"u{i:05d}", time.time() + 3600) for i in range(contacts)],
            )
        gc.collect()
        before = len(gc.get_objects())
        rows = await collector.fetch()
        gc.collect()
        tracked = len(gc.get_objects()) - before
        assert len(rows) == contacts
        assert tracked < contacts / 10, f"{tracked} objects tracked for {contacts} contacts"
    finally:
        await collector.close()


@pytest.mark.asyncio
async def test_the_postgres_alias_and_an_unknown_directory() -> None:
    assert isinstance(
        open_source("accounts", "postgres://x@127.0.0.1/k", Config()), PostgresRegistrations
    )
    with pytest.raises(ValueError, match="RTM_DIRECTORY"):
        open_source(
            "accounts", "postgresql://x@127.0.0.1/k", Config(directory="subscriber:who=rpid")
        )


def test_directory_settings() -> None:
    spec = parse_directory("subscriber:owner=rpid, group=team")
    assert spec.table == "subscriber"
    assert spec.columns == {
        "owner": "rpid",
        "caller_id": None,
        "caller_id_2": None,
        "group": "team",
    }
    assert parse_directory("").table == "accounts" and parse_directory("none").table is None
    for bad in ("sub;scriber", "subscriber:owner", "subscriber:owner=a b", "subscriber:nick=x"):
        with pytest.raises(ValueError, match="RTM_DIRECTORY"):
            parse_directory(bad)


@pytest.mark.asyncio
async def test_owners_from_kamailios_subscriber(kamailio_db: MakeDatabase) -> None:
    url = kamailio_db()
    pg_write(url, "ALTER TABLE subscriber ADD COLUMN rpid TEXT, ADD COLUMN team TEXT")
    pg_write(
        url,
        "INSERT INTO subscriber (username, domain, rpid, team) VALUES ('dan', '', 'Dan', 'ops')",
    )
    ruid = add_contact(url, "dan")
    collector = open_source("accounts", url, Config(directory="subscriber:owner=rpid,group=team"))
    try:
        rows = await collector.fetch()
        assert (rows[ruid]["owner"], rows[ruid]["group"], rows[ruid]["caller_id"]) == (
            "Dan",
            "ops",
            "",
        )
        pg_write(url, "UPDATE subscriber SET rpid = 'Daniel' WHERE username = 'dan'")
        changes = await collector.changes()  # type: ignore[attr-defined]
        assert changes is not None and changes.upsert[ruid]["owner"] == "Daniel"
    finally:
        await collector.close()


@pytest.mark.asyncio
async def test_the_queue_reads_silo_without_the_body(kamailio_db: MakeDatabase) -> None:
    url = kamailio_db()
    pg_write(
        url,
        "INSERT INTO silo (src_addr, dst_addr, username, domain, inc_time, body, callid)"
        " VALUES ('sip:a@x', 'sip:b@x', 'b', 'x', 1700000000, 'secret text', 'c1')",
    )
    collector = open_source("queue", url, Config())
    assert isinstance(collector, PostgresQueue)
    try:
        rows = await collector.fetch()
        assert [(r["from"], r["to"], r["uuid"]) for r in rows.values()] == [
            ("sip:a@x", "sip:b@x", "c1")
        ]
        assert "secret" not in repr(rows)
        pg_write(url, "DELETE FROM silo")
        assert await collector.changes() == RowChanges(delete=set(rows))
    finally:
        await collector.close()
    assert "body" not in (collector._sql + collector._keyed_sql)


@pytest.mark.asyncio
async def test_rtms_own_messages_when_there_is_no_silo(kamailio_db: MakeDatabase) -> None:
    url = kamailio_db(kamailio=False)
    pg_write(
        url,
        "INSERT INTO messages (id, uuid, received, payload)"
        " VALUES ('m1', 'u1', 1700000000000, 'x')",
    )
    collector = open_source("queue", url, Config())
    try:
        rows = await collector.fetch()
        assert list(rows) == ["m1"] and rows["m1"]["status"] == "ENQUEUED"
        pg_write(url, "UPDATE messages SET status = 'SENT' WHERE id = 'm1'")
        assert await collector.changes() == RowChanges(delete={"m1"})  # type: ignore[attr-defined]
    finally:
        await collector.close()


@pytest.mark.asyncio
async def test_trunks_and_their_status(kamailio_db: MakeDatabase) -> None:
    url = kamailio_db(kamailio=False)
    pg_write(url, "INSERT INTO trunks (name, host, port) VALUES ('carrier', '192.0.2.1', 5060)")
    collector = open_source("trunks", url, Config())
    try:
        rows = await collector.fetch()
        assert (
            rows["carrier"]["status"] == "PENDING" and rows["carrier"]["host"] == "192.0.2.1:5060"
        )
        pg_write(
            url,
            "INSERT INTO trunk_status (trunk, status, since, latency_ms)"
            " VALUES ('carrier', 'OK', 1700000000, 12.5)",
        )
        pg_write(
            url,
            "INSERT INTO trunk_status (trunk, status, since)"
            " VALUES ('ghost', 'FAILED', 1700000000)",
        )
        changes = await collector.changes()  # type: ignore[attr-defined]
        assert changes is not None and changes.upsert["carrier"]["status"] == "OK"
        assert (
            changes.upsert["carrier"]["latency_ms"] == 12.5
            and changes.upsert["ghost"]["host"] == ""
        )
    finally:
        await collector.close()


@pytest.mark.asyncio
async def test_a_database_without_the_log_is_read_whole(
    postgres: object, kamailio_db: MakeDatabase
) -> None:
    url = kamailio_db()
    pg_write(url, "DROP TRIGGER rtm_location_change ON location")
    ruid = add_contact(url, "alice")
    collector = PostgresRegistrations(url)
    try:
        assert set(await collector.fetch()) == {ruid}
        assert await collector.changes() is None  # no log: read me whole
    finally:
        await collector.close()


@pytest.mark.asyncio
async def test_a_reconnect_and_a_pruned_log_mean_a_full_read(kamailio_db: MakeDatabase) -> None:
    url = kamailio_db()
    keep = add_contact(url, "alice")
    collector = PostgresRegistrations(url)
    try:
        await collector.fetch()
        # The server dropped rtm's connection (a restart, a failover): the cursor is void.
        pg_write(
            url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'rtm'",
        )
        with pytest.raises(psycopg.OperationalError):
            await collector.changes()
        assert await collector.changes() is None
        assert set(await collector.fetch()) == {keep}
        # Another reader pruned entries rtm had not read yet: its marker says so.
        for n in range(5):
            add_contact(url, f"user{n}")
        other = ChangeLog(collector.source, ["location"], kept=1)
        other._pruned = 0.0
        await other._prune()
        assert await collector.changes() is None
        assert len(await collector.fetch()) == 6
        assert await collector.changes() == RowChanges()
    finally:
        await collector.close()


@pytest.mark.asyncio
async def test_an_ask_cancelled_midway_means_a_full_read(
    kamailio_db: MakeDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner's timeout cancels an ask after the log moved the cursor and before the
    rows it names were read: those entries are behind the cursor now, so the connection
    goes with the query, and the next ask says to read whole rather than miss them."""
    url = kamailio_db()
    add_contact(url, "alice")
    collector = PostgresRegistrations(url)
    try:
        await collector.fetch()
        bob = add_contact(url, "bob")
        real = collector.source.query

        async def stuck(sql: Any, params: Any = ()) -> list[dict[str, Any]]:
            if sql is CONTACTS_BY_ID_SQL:  # the rows the entries name: the server hangs
                return await real("SELECT pg_sleep(30)")
            return await real(sql, params)

        monkeypatch.setattr(collector.source, "query", stuck)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await collector.changes()
        monkeypatch.undo()
        assert await collector.changes() is None
        assert bob in await collector.fetch()
    finally:
        await collector.close()


@pytest.mark.asyncio
async def test_postgresql_restarted_is_stale_then_recovers_by_itself(
    postgres: PostgresServer, kamailio_db: MakeDatabase
) -> None:
    url = kamailio_db()
    before = add_contact(url, "alice")
    collector = PostgresRegistrations(url)
    hub = Hub(["accounts"])
    runner = CollectorRunner(collector, hub, expires_field="expires", interval=0)
    try:
        await runner.poll_once()
        postgres.stop()
        await runner.follow_once(collector)
        source = hub.tables["accounts"].source
        assert not source.ok and source.error and set(hub.tables["accounts"].rows) == {before}
        postgres.start()
        after = add_contact(url, "bob")
        await runner.follow_once(collector)  # reconnected: lost track, so a full read
        assert hub.tables["accounts"].source.ok
        assert set(hub.tables["accounts"].rows) == {before, after}
    finally:
        await collector.close()

"""A cluster's new leader goes on from the last leader's position (collectors/base.py
``Resumable``) instead of a first full read, against a real PostgreSQL: what it ends with
is what a full read says, the reconcile after finds nothing, and every position it cannot
trust sends it back to a full read."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from server.cluster import entries
from server.collectors.base import Resumable
from server.collectors.postgres import registrations as pg_registrations
from server.collectors.postgres.changes import POSITION, ChangeLog
from server.collectors.postgres.registrations import PostgresRegistrations
from server.collectors.runner import FIRST_READ_TIMEOUT, CollectorRunner
from server.config import TABLES
from server.hub import Hub
from server.rows import Rows
from server.times import parse_iso

from ...live_server import UNIT
from ...services import PostgresServer
from ...waiting import cancelled, eventually
from .conftest import MakeDatabase, pg_write
from .test_sources import add_contact


class Counted(PostgresRegistrations):
    """Counts its full reads."""

    fetches = 0

    async def fetch(self) -> Rows:
        self.fetches += 1
        return await super().fetch()


def runner(collector: PostgresRegistrations, hub: Hub) -> CollectorRunner:
    return CollectorRunner(collector, hub, expires_field="expires", reconcile=3600)


async def shown_now(url: str) -> Rows:
    """What a full read by a fresh collector shows: the rows not past their expiry."""
    collector = PostgresRegistrations(url)
    try:
        rows = await collector.fetch()
    finally:
        await collector.close()
    now = time.time()
    return {key: row for key, row in rows.items() if parse_iso(row["expires"]) > now}


async def led_once(url: str) -> Hub:
    """A last leader's doing: a full read and a change followed, into a hub of its own.
    The hub it leaves is what every follower holds: its rows and its position."""
    hub = Hub(TABLES)
    collector = PostgresRegistrations(url)
    leading = runner(collector, hub)
    try:
        assert await leading.poll_once()
        add_contact(url, "late")
        await leading.follow_once(collector)
    finally:
        await collector.close()
    return hub


def taken_over(last: Hub) -> Hub:
    """The hub a new leader starts from (cluster/node.py ``_source_hub``)."""
    hub = Hub(TABLES)
    state, held = hub.tables["accounts"], last.tables["accounts"]
    state.rows, state.seq, state.position = dict(held.rows), held.seq, held.position
    return hub


@pytest.mark.asyncio
async def test_a_new_leader_goes_on_from_the_last_ones_position(kamailio_db: MakeDatabase) -> None:
    url = kamailio_db()
    pg_write(url, "INSERT INTO accounts (username, owner) VALUES ('alice', 'Alice')")
    alice, bob = add_contact(url, "alice"), add_contact(url, "bob")
    expired = add_contact(url, "carol", expires_in=-60)  # listed, never shown
    soon = add_contact(url, "dave", expires_in=5 * UNIT)  # leaves at its expiry, taken over
    last = await led_once(url)
    position = last.tables["accounts"].position
    assert position is not None and position.startswith(POSITION)
    assert expired not in last.tables["accounts"].rows
    # Nobody leads for a while; Kamailio writes on.
    pg_write(url, "UPDATE location SET user_agent = 'moved' WHERE ruid = %s", (alice,))
    pg_write(url, "DELETE FROM location WHERE ruid = %s", (bob,))
    new = add_contact(url, "erin")
    pg_write(url, "UPDATE accounts SET owner = 'Alice L.' WHERE username = 'alice'")

    hub = taken_over(last)
    collector = Counted(url)
    assert isinstance(collector, Resumable)
    leading = runner(collector, hub)
    task = asyncio.create_task(leading.run())
    try:
        want = await shown_now(url)
        assert {alice, new} <= set(want) and bob not in want
        rows = hub.tables["accounts"].rows

        def but_soon(shown: Rows) -> Rows:  # whether dave is there yet depends on the clock
            return {key: row for key, row in shown.items() if key != soon}

        await eventually(
            lambda: but_soon(rows) == but_soon(want), 10 * UNIT, "the new leader's = a full read's"
        )
        assert collector.fetches == 0, "went on from the position, no full read"
        assert rows[alice]["owner"] == "Alice L." and rows[alice]["user_agent"] == "moved"
        assert hub.tables["accounts"].source.ok
        await eventually(lambda: soon not in rows, 10 * UNIT, "a taken-over row leaves at expiry")
        await cancelled([task])
        assert await leading.reconcile_once()
        assert collector.fetches == 0  # the reconcile reads in its own snapshot
        assert hub.stats.reconcile_mismatches == {}, "the reconcile after finds nothing"
        assert rows == await shown_now(url)
        assert hub.tables["accounts"].position != position  # it moved on, and says so
    finally:
        await cancelled([task])
        await collector.close()


@pytest.mark.asyncio
async def test_rows_are_taken_over_a_part_at_a_time_while_changes_go_on(
    kamailio_db: MakeDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which record each row taken over is comes a part per ask of the log: changes go out
    meanwhile, a row whose record went before its part was read still leaves, and once
    every part is in, a delete is a delete and the reconcile finds nothing."""
    monkeypatch.setattr(pg_registrations, "SEED_PART", 2)  # parts of two records
    url = kamailio_db()
    contacts = [add_contact(url, f"user{n}") for n in range(8)]
    hub = taken_over(await led_once(url))
    rows = hub.tables["accounts"].rows
    # A row the last leader built otherwise (another directory setting, another rtm): the
    # record is what counts. One it built alike stays the very object clients hold.
    rows[contacts[3]] = {**rows[contacts[3]], "owner": "built elsewhere"}
    alike = rows[contacts[4]]
    collector = PostgresRegistrations(url)
    leading = runner(collector, hub)
    try:
        assert await leading._resume()
        pg_write(url, "DELETE FROM location WHERE ruid = %s", (contacts[-1],))  # seen last
        pg_write(url, "UPDATE location SET user_agent = 'moved' WHERE ruid = %s", (contacts[1],))
        await leading.follow_once(collector)
        assert rows[contacts[1]]["user_agent"] == "moved", "a change goes out at once"
        asks = 1
        while collector._shown.seeding:
            assert contacts[-1] in rows, "not known to be gone before its part is read"
            await leading.follow_once(collector)
            asks += 1
        assert asks >= 4 and contacts[-1] not in rows
        assert rows == await shown_now(url)
        assert rows[contacts[3]]["owner"] == "" and rows[contacts[4]] is alike
        pg_write(url, "DELETE FROM location WHERE ruid = %s", (contacts[2],))
        await leading.follow_once(collector)
        assert contacts[2] not in rows, "a row taken over is known by its record now"
        assert await leading.reconcile_once()
        assert hub.stats.reconcile_mismatches == {} and rows == await shown_now(url)
    finally:
        await collector.close()


@pytest.mark.asyncio
async def test_losing_track_after_a_takeover_reads_whole_with_a_first_reads_time(
    kamailio_db: MakeDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log pruned past the cursor taken over: the full read that follows builds every
    row, as a first read does, so it gets a first read's time, not an ask's (a million rows
    would time out and start over for ever). The time each full read is given is noted."""
    url = kamailio_db()
    add_contact(url, "alice")
    hub = taken_over(await led_once(url))
    collector = Counted(url)
    leading = CollectorRunner(collector, hub, expires_field="expires", timeout=0.3)
    given: list[float | None] = []
    ask = leading._ask

    async def noted(call: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(call, "__name__", "") == "fetch":
            given.append(kwargs.get("within"))
        return await ask(call, *args, **kwargs)

    monkeypatch.setattr(leading, "_ask", noted)
    try:
        assert await leading._resume()
        for n in range(3):
            add_contact(url, f"user{n}")
        pruner = ChangeLog(collector.source, ["location"], kept=1)
        pruner._pruned = 0.0
        await pruner._prune()
        leading.interval = 0  # the fallback read is due at once
        await leading.follow_once(collector)
        assert collector.fetches == 1 and given == [FIRST_READ_TIMEOUT]
        assert hub.tables["accounts"].rows == await shown_now(url)
    finally:
        await collector.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "kind", ["another database", "ahead of the database", "a restarted server", "garbage"]
)
async def test_a_position_it_cannot_trust_means_a_full_read(
    kamailio_db: MakeDatabase, postgres: PostgresServer, kind: str
) -> None:
    url = kamailio_db()
    add_contact(url, "alice")
    last = await led_once(url)
    bob = add_contact(url, "bob")
    hub = taken_over(last)
    held = hub.tables["accounts"].position
    assert held is not None
    head, _, database = held.removeprefix(POSITION).partition("@")
    cursor, _, started = head.partition(":")
    if kind == "a restarted server":  # a promoted replica would number on from before too
        postgres.restart()
    hub.tables["accounts"].position = {
        "another database": f"{POSITION}{head}@{kamailio_db()}",
        "ahead of the database": f"{POSITION}{int(cursor) + 10**9}:{started}@{database}",
        "a restarted server": held,
        "garbage": "sqlite-seq:12",
    }[kind]
    collector = Counted(url)
    task = asyncio.create_task(runner(collector, hub).run())
    try:
        rows = hub.tables["accounts"].rows
        await eventually(lambda: bob in rows, 20 * UNIT, "bob, by a full read")
        assert collector.fetches == 1
        assert rows == await shown_now(url)
    finally:
        await cancelled([task])
        await collector.close()


def test_the_position_travels_with_diffs_and_snapshots() -> None:
    fields = entries.diff_fields("e1", 7, {}, ["gone"], 1.0, "pg-xid8:42@db")
    assert entries.decode(fields).position == "pg-xid8:42@db"
    assert entries.decode(entries.diff_fields("e1", 7, {}, [], 1.0)).position is None
    meta = entries.SnapshotMeta("e1", 7, "1-0", {"ok": True}, position="pg-xid8:42@db")
    assert entries.decode_meta(entries.snapshot_fields(meta, {})["meta"]).position == (
        "pg-xid8:42@db"
    )
    hub = Hub(TABLES)
    hub.apply_remote("accounts", 1, {"a": {"id": "a"}}, [], "pg-xid8:43@db")
    assert hub.tables["accounts"].position == "pg-xid8:43@db"
    hub.load_remote("accounts", 5, {}, None)  # a snapshot an older rtm wrote: no position
    assert hub.tables["accounts"].position is None
    # Rows changed by a source that cannot be continued clear it: no new leader may go on
    # from a position older than they are.
    hub.publish_changes("accounts", {"b": {"id": "b"}}, [], position="pg-xid8:44@db")
    hub.publish_changes("accounts", {"c": {"id": "c"}}, [])
    assert hub.tables["accounts"].position is None

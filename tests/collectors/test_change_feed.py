"""The embedded store's change log, followed by the runner: the state a client builds from the
change stream equals a full read at every point, and every way of losing track falls back
to a full read that loses nothing."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import store
from server.collectors.base import RowChanges
from server.collectors.queue import QueueCollector
from server.collectors.registrations import RegistrationCollector
from server.collectors.runner import CollectorRunner
from server.collectors.trunks import TrunkCollector
from server.diff import Changes, apply
from server.hub import Hub
from server.rows import Rows
from server.times import parse_iso, unix_to_julian

from ..store_rows import (
    add_account,
    add_contact,
    add_message,
    add_trunk,
    delete_contact,
    set_message_status,
    set_trunk_status,
    write,
)
from ..waiting import eventually

USERS = ("alice", "bob", "carol")
DOMAINS = (None, "", "example.org")


def visible(rows: Rows) -> Rows:
    """A full read as a client must see it: contacts whose expiry passed are gone."""
    now = time.time()
    return {
        key: row
        for key, row in rows.items()
        if not isinstance(row.get("expires"), str) or parse_iso(row["expires"]) > now
    }


async def full_read(db: str) -> Rows:
    collector = RegistrationCollector(db)
    try:
        return visible(await collector.fetch())
    finally:
        await collector.close()


def client_state(frames: list[str]) -> dict[str, Any]:
    """What a browser holds after these frames (snapshots and diffs of ``accounts``)."""
    rows: dict[str, Any] = {}
    for text in frames:
        frame = json.loads(text)
        if frame.get("table") != "accounts":
            continue
        if frame["type"] == "snapshot":
            rows = {r["id"]: r for r in frame["rows"]}
        elif frame["type"] == "diff":
            rows = apply(rows, Changes(frame["upsert"], frame["delete"]))
    return rows


# --- the property -----------------------------------------------------------------------

operation = st.one_of(
    st.tuples(
        st.just("register"),
        st.sampled_from(USERS),
        st.sampled_from(DOMAINS),
        st.sampled_from((3600, -100)),
    ),
    st.tuples(st.just("refresh"), st.integers(0, 20), st.sampled_from((7200, -50))),
    st.tuples(st.just("user_agent"), st.integers(0, 20), st.text(max_size=8)),
    st.tuples(st.just("new_ruid"), st.integers(0, 20)),
    st.tuples(st.just("unregister"), st.integers(0, 20)),
    st.tuples(
        st.just("owner"), st.sampled_from(USERS), st.sampled_from(DOMAINS[1:]), st.text(max_size=6)
    ),
    st.tuples(st.just("drop_account"), st.sampled_from(USERS)),
    st.tuples(st.just("rename_account"), st.sampled_from(USERS), st.sampled_from(USERS)),
    st.just(("step",)),
)


def perform(db: str, op: tuple[Any, ...]) -> None:
    """One write, by another connection, as Kamailio or an operator's tool would make it."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        ids = [r[0] for r in conn.execute("SELECT id FROM location ORDER BY id")]

        def pick(n: int) -> int | None:
            return ids[n % len(ids)] if ids else None

        kind = op[0]
        if kind == "register":
            add_contact(db, op[1], expires_in=op[3], domain=op[2])
        elif kind == "refresh" and (row := pick(op[1])) is not None:
            when = unix_to_julian(time.time() + op[2])
            conn.execute(
                "UPDATE location SET expires = ?, cseq = cseq + 1 WHERE id = ?", (when, row)
            )
        elif kind == "user_agent" and (row := pick(op[1])) is not None:
            conn.execute("UPDATE location SET user_agent = ? WHERE id = ?", (op[2], row))
        elif kind == "new_ruid" and (row := pick(op[1])) is not None:
            conn.execute("UPDATE location SET ruid = ruid || 'x' WHERE id = ?", (row,))
        elif kind == "unregister" and (row := pick(op[1])) is not None:
            conn.execute("DELETE FROM location WHERE id = ?", (row,))
        elif kind == "owner":
            conn.execute(
                "INSERT INTO accounts (username, domain, owner) VALUES (?, ?, ?)"
                " ON CONFLICT (username, domain) DO UPDATE SET owner = excluded.owner",
                (op[1], op[2], op[3]),
            )
        elif kind == "drop_account":
            conn.execute("DELETE FROM accounts WHERE username = ?", (op[1],))
        elif kind == "rename_account":
            conn.execute(
                "UPDATE OR IGNORE accounts SET username = ? WHERE username = ?", (op[2], op[1])
            )
    finally:
        conn.close()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(operation, min_size=1, max_size=40))
def test_the_change_stream_equals_a_full_read_at_every_point(ops: list[tuple[Any, ...]]) -> None:
    asyncio.run(_follow(ops))


async def _follow(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory(prefix="rtm-feed-") as workdir:
        db = str(Path(workdir) / "store.db")
        store.migrate(db)
        add_account(db, "alice", owner="Alice")
        add_contact(db, "alice")
        hub = Hub(["accounts"])
        client, frames = hub.connect(None)
        collector = RegistrationCollector(db)
        runner = CollectorRunner(collector, hub, expires_field="expires")
        try:
            await runner.poll_once()
            for op in [*ops, ("step",)]:
                if op[0] != "step":
                    perform(db, op)
                    continue
                await runner.follow_once(collector)
                expected = await full_read(db)
                assert hub.tables["accounts"].rows == expected
                frames += client.take()
                assert client_state(frames) == {k: {**r} for k, r in expected.items()}
            assert await runner.reconcile_once()
            assert hub.stats.reconcile_mismatches == {}
        finally:
            await collector.close()


# --- the ways of losing track -------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "store.db")
    store.migrate(path)
    return path


def runner_for(collector: Any, hub: Hub, **kwargs: Any) -> CollectorRunner:
    # interval 0: a feed that lost track is read whole at once (not once per interval).
    return CollectorRunner(collector, hub, expires_field="expires", interval=0, **kwargs)


@pytest.mark.asyncio
async def test_a_register_reads_only_that_contact(db: str) -> None:
    for n in range(300):
        add_contact(db, f"user{n}")
    collector = RegistrationCollector(db)
    hub = Hub(["accounts"])
    runner = runner_for(collector, hub)
    await runner.poll_once()
    assert await collector.changes() == RowChanges()  # nothing new: nothing to do
    before = hub.stats.rows_compared
    ruid = add_contact(db, "newcomer")
    changes = await collector.changes()
    assert changes is not None and set(changes.upsert) == {ruid} and not changes.delete
    runner.apply(changes)
    assert hub.stats.rows_compared - before == 1
    delete_contact(db, ruid)
    changes = await collector.changes()
    assert changes == RowChanges(delete={ruid})
    await collector.close()


@pytest.mark.asyncio
async def test_an_owner_renamed_updates_that_users_contacts_only(db: str) -> None:
    add_account(db, "alice", owner="Alice")
    mine = {add_contact(db, "alice"), add_contact(db, "alice", ip="192.0.2.11")}
    others = {add_contact(db, f"user{n}") for n in range(50)}
    collector = RegistrationCollector(db)
    rows = await collector.fetch()
    assert {rows[k]["owner"] for k in mine} == {"Alice"} and set(rows) == mine | others
    write(db, "UPDATE accounts SET owner = 'Alice Liddell' WHERE username = 'alice'")
    changes = await collector.changes()
    assert changes is not None and set(changes.upsert) == mine and not changes.delete
    assert {row["owner"] for row in changes.upsert.values()} == {"Alice Liddell"}
    await collector.close()


@pytest.mark.asyncio
async def test_a_reconcile_reuses_the_rows_of_unchanged_records(db: str) -> None:
    # A reconcile that built every row again would hold the table twice for a moment.
    add_account(db, "alice", owner="Alice")
    alice = add_contact(db, "alice")
    others = [add_contact(db, f"user{n}") for n in range(20)]
    collector = RegistrationCollector(db)
    first = await collector.fetch()
    write(db, "UPDATE accounts SET owner = 'Alice Liddell' WHERE username = 'alice'")
    write(db, "UPDATE location SET user_agent = 'moved' WHERE ruid = ?", (others[0],))
    changes = await collector.changes()
    assert changes is not None and set(changes.upsert) == {alice, others[0]}
    assert not changes.delete  # rows replaced under the same id are upserts only
    again = await collector.fetch()  # the reconcile: equal to the changes applied
    assert again == {**first, **changes.upsert}
    assert again[alice]["owner"] == "Alice Liddell"  # not the row the first read built
    assert all(again[key] is first[key] for key in others[1:])
    assert again[others[0]] is changes.upsert[others[0]]
    await collector.close()


@pytest.mark.asyncio
async def test_a_pruned_log_falls_back_to_a_full_read_and_loses_nothing(db: str) -> None:
    keep = add_contact(db, "alice")
    collector = RegistrationCollector(db)
    hub = Hub(["accounts"])
    runner = runner_for(collector, hub)
    await runner.poll_once()
    # Writes rtm did not see, then the log pruned past its cursor.
    new = add_contact(db, "bob")
    delete_contact(db, keep)
    write(db, "DELETE FROM rtm_changes")
    later = add_contact(db, "carol")
    assert await collector.changes() is None
    await runner.follow_once(collector)
    assert set(hub.tables["accounts"].rows) == {new, later}
    assert await collector.changes() == RowChanges()
    await collector.close()


@pytest.mark.asyncio
async def test_a_restart_loses_the_cursor_and_reads_whole(db: str) -> None:
    first = add_contact(db, "alice")
    collector = RegistrationCollector(db)
    assert await collector.changes() is None  # never read: no cursor yet
    assert set(await collector.fetch()) == {first}
    await collector.close()


@pytest.mark.asyncio
async def test_a_file_without_triggers_is_read_whole_after_each_change(tmp_path: Path) -> None:
    # A usrloc file made by Kamailio's kamdbctl: same schema, none of rtm's triggers.
    db = str(tmp_path / "kamailio.db")
    store.migrate(db)
    conn = sqlite3.connect(db)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DROP TABLE rtm_changes")
    conn.commit()
    conn.close()
    first = add_contact(db, "alice")
    collector = RegistrationCollector(db)
    hub = Hub(["accounts"])
    runner = runner_for(collector, hub)
    await runner.poll_once()
    assert await collector.changes() == RowChanges()  # unchanged: still one pragma
    second = add_contact(db, "bob")
    assert await collector.changes() is None
    assert await collector.changes() is None  # until the full read happened
    await runner.follow_once(collector)
    assert set(hub.tables["accounts"].rows) == {first, second}
    assert await collector.changes() == RowChanges()
    await collector.close()


@pytest.mark.asyncio
async def test_a_replaced_file_is_read_whole(tmp_path: Path, db: str) -> None:
    add_contact(db, "alice")
    collector = RegistrationCollector(db)
    await collector.fetch()
    fresh = str(tmp_path / "fresh.db")
    store.migrate(fresh)
    ruid = add_contact(fresh, "dave")
    os.rename(fresh, db)
    assert await collector.changes() is None
    assert list(await collector.fetch()) == [ruid]
    await collector.close()


@pytest.mark.asyncio
async def test_trunks_and_queue_follow_the_log(db: str) -> None:
    add_trunk(db, "a")
    add_message(db, "m1")
    trunks, queue = TrunkCollector(db), QueueCollector(db)
    assert set(await trunks.fetch()) == {"a"} and set(await queue.fetch()) == {"m1"}
    set_trunk_status(db, "a", "FAILED", "503 Service Unavailable")
    set_trunk_status(db, "watcher-only", "OK")
    add_message(db, "m2")
    set_message_status(db, "m1", "DELIVERED")
    changed = await trunks.changes()
    assert changed is not None and changed.upsert["a"]["status"] == "FAILED"
    assert set(changed.upsert) == {"a", "watcher-only"}
    changed = await queue.changes()
    assert changed is not None and set(changed.upsert) == {"m2"} and "m1" in changed.delete
    write(db, "DELETE FROM trunks WHERE name = 'a'")
    changed = await trunks.changes()
    assert changed is not None and changed.upsert["a"]["host"] == ""  # its status stays shown
    await trunks.close()
    await queue.close()


@pytest.mark.asyncio
async def test_a_reconcile_counts_what_the_feed_missed(db: str) -> None:
    add_contact(db, "alice")
    collector = RegistrationCollector(db)
    hub = Hub(["accounts"])
    runner = runner_for(collector, hub)
    await runner.poll_once()
    add_contact(db, "bob")
    assert await runner.reconcile_once()
    assert hub.stats.reconcile_mismatches == {}  # bob was in the log: not a miss
    # A write the log does not name (its entry lost): a bug the reconcile must catch.
    missed = add_contact(db, "carol")
    write(db, "DELETE FROM rtm_changes WHERE seq = (SELECT max(seq) FROM rtm_changes)")
    assert await runner.reconcile_once()
    assert hub.stats.reconcile_mismatches == {"accounts": 1}
    assert missed in hub.tables["accounts"].rows
    await collector.close()


@pytest.mark.asyncio
async def test_a_writer_holding_the_file_locked_makes_it_stale_not_wrong(db: str) -> None:
    # WAL (rtm's store) never blocks a reader; a rollback-journal file (Kamailio's own
    # db_sqlite file) does, for as long as a writer holds its exclusive lock.
    write(db, "PRAGMA journal_mode = DELETE")
    shown = add_contact(db, "alice")
    collector = RegistrationCollector(db)
    hub = Hub(["accounts"])
    runner = runner_for(collector, hub, timeout=1.0)
    task = asyncio.create_task(runner.run())
    try:
        state = hub.tables["accounts"]
        await eventually(lambda: shown in state.rows, 5, "the first read")
        locker = sqlite3.connect(db, isolation_level=None, timeout=10)
        locker.execute("BEGIN EXCLUSIVE")
        hidden = add_contact_in(locker, "bob")
        await eventually(lambda: not state.source.ok, 10, "the source stale")
        assert set(state.rows) == {shown}  # the last good rows, nothing invented
        locker.execute("COMMIT")
        locker.close()
        await eventually(lambda: state.source.ok and hidden in state.rows, 10, "recovery")
    finally:
        task.cancel()
        await collector.close()


def add_contact_in(conn: sqlite3.Connection, username: str) -> str:
    from ..store_rows import CONTACT_SQL, contact_params

    params = contact_params(username)
    conn.execute(CONTACT_SQL, params)
    return str(params[0])

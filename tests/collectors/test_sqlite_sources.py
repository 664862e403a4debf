"""Each embedded-store collector against a real SQLite file."""

from __future__ import annotations

import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from server import store
from server.collectors import open_source
from server.collectors.base import YIELD_EVERY, RowChanges
from server.collectors.queue import QueueCollector
from server.collectors.registrations import RegistrationCollector
from server.collectors.runner import CollectorRunner
from server.collectors.trunks import TrunkCollector
from server.config import Config
from server.hub import Hub
from server.times import parse_iso, unix_to_julian

from ..store_rows import (
    add_account,
    add_contact,
    add_contacts,
    add_message,
    add_trunk,
    contact_params,
    set_message_status,
    set_trunk_status,
    write,
)
from ..waiting import LoopTurns

pytestmark = pytest.mark.asyncio


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "store.db")
    store.migrate(path)
    return path


async def turns_while_building(collector: Any, monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """The event loop's turn count at each row a full read built: more than one value
    means the event loop ran other tasks in the middle of the read (it must, at 1M rows)."""
    seen: set[int] = set()
    build = type(collector)._row

    def counted(self: Any, record: Any) -> Any:
        seen.add(turns.count)
        return build(self, record)

    monkeypatch.setattr(type(collector), "_row", counted)
    with LoopTurns() as turns:
        await collector.fetch()
    return seen


async def test_a_big_full_read_lets_the_loop_run_between_rows(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_contacts(db, [contact_params(f"u{i:05d}") for i in range(3 * YIELD_EVERY + 1)])
    collector = RegistrationCollector(db)
    try:
        # One value per YIELD_EVERY rows: the loop ran at each of those points.
        assert len(await turns_while_building(collector, monkeypatch)) >= 4
    finally:
        await collector.close()


async def test_registrations_join_directory_and_locate_contacts(db: str) -> None:
    add_account(db, "alice", domain="", owner="Alice", caller_id="+3906", group="NOC")
    nat = add_contact(db, "alice", ip="10.0.0.5", received="sip:203.0.113.9:4512", transport="tcp")
    plain = add_contact(db, "bob", ip="[2001:db8::1]", port=5062, expires_in=120)
    collector = RegistrationCollector(db)
    rows = await collector.fetch()
    assert rows is not None and set(rows) == {nat, plain}
    alice, bob = rows[nat], rows[plain]
    assert (alice["owner"], alice["caller_id"], alice["group"]) == ("Alice", "+3906", "NOC")
    assert (alice["ip"], alice["port"], alice["transport"]) == ("203.0.113.9", 4512, "TCP")
    assert (bob["ip"], bob["port"], bob["owner"]) == ("2001:db8::1", 5062, "")
    assert abs(parse_iso(bob["expires"]) - (time.time() + 120)) < 2
    await collector.close()


async def test_unchanged_store_has_no_changes_until_a_write(db: str) -> None:
    collector = RegistrationCollector(db)
    assert await collector.fetch() == {}
    assert await collector.changes() == RowChanges()
    ruid = add_contact(db, "carol")
    changes = await collector.changes()
    assert changes is not None and list(changes.upsert) == [ruid]
    await collector.close()


async def test_expired_and_permanent_contacts(db: str) -> None:
    now = time.time()
    write(
        db,
        "INSERT INTO location (ruid, username, contact, expires) VALUES"
        " ('gone', 'x', 'sip:x@h', ?), ('forever', 'y', 'sip:y@h', ?), ('text', 'z', 'sip:z@h', ?)",
        (unix_to_julian(now - 5), unix_to_julian(0), "2099-01-01 00:00:00"),
    )
    collector = RegistrationCollector(db)
    hub = Hub(["accounts"])
    await CollectorRunner(collector, hub, expires_field="expires").poll_once()
    await collector.close()
    rows = hub.tables["accounts"].rows
    assert set(rows) == {"forever", "text"}  # the collector lists "gone"; the runner hides it
    assert rows["forever"]["expires"] is None
    assert rows["text"]["expires"] == "2099-01-01T00:00:00Z"


async def test_missing_then_replaced_file(tmp_path: Path, db: str) -> None:
    collector = RegistrationCollector(db)
    await collector.fetch()
    os.rename(db, db + ".old")
    with pytest.raises(FileNotFoundError):
        await collector.fetch()
    fresh = str(tmp_path / "fresh.db")
    store.migrate(fresh)
    ruid = add_contact(fresh, "dave")
    os.rename(fresh, db)
    rows = await collector.fetch()
    assert rows is not None and list(rows) == [ruid]
    await collector.close()


async def test_trunks_with_and_without_status(db: str) -> None:
    add_trunk(db, "a", host="sip.a.example", port=5061, transport="TLS", encryption=1,
              virtual_number="+3902", username="acme")  # fmt: skip
    add_trunk(db, "b")
    set_trunk_status(db, "a", "FAILED", "503 Service Unavailable", latency_ms=12.5)
    set_trunk_status(db, "watcher-only", "OK")
    collector = TrunkCollector(db)
    rows = await collector.fetch()
    await collector.close()
    assert rows is not None
    assert rows["a"]["host"] == "sip.a.example:5061"
    assert (rows["a"]["status"], rows["a"]["reason"]) == ("FAILED", "503 Service Unavailable")
    assert rows["a"]["encryption"] is True and rows["a"]["latency_ms"] == 12.5
    assert rows["b"]["status"] == "PENDING"
    assert rows["watcher-only"]["status"] == "OK"


async def test_queue_holds_enqueued_only_and_never_the_payload(db: str) -> None:
    add_message(db, "m1", payload=b"SECRET", from_number="+3906", to_account="bob", sent=2,
                managed=1, received=1389851237105)  # fmt: skip
    add_message(db, "m2")
    set_message_status(db, "m2", "DELIVERED")
    collector = QueueCollector(db)
    rows = await collector.fetch()
    await collector.close()
    assert rows is not None and list(rows) == ["m1"]
    m1 = rows["m1"]
    assert m1["received"] == "2014-01-16T05:47:17.105Z"
    assert (m1["from"], m1["to"], m1["sent"], m1["managed"]) == ("+3906", "bob", 2, True)
    assert "SECRET" not in repr(rows)


async def test_a_broken_store_raises_and_recovers(db: str) -> None:
    collector = QueueCollector(db)
    conn = sqlite3.connect(db)
    conn.execute("ALTER TABLE messages RENAME TO messages_away")
    conn.commit()
    with pytest.raises(sqlite3.OperationalError):
        await collector.fetch()
    conn.execute("ALTER TABLE messages_away RENAME TO messages")
    conn.commit()
    conn.close()
    assert await collector.fetch() == {}
    await collector.close()


async def test_a_three_slash_url_to_an_absolute_path_says_to_use_four(db: str) -> None:
    # Kamailio's own db_url writes sqlite:///var/lib/x for /var/lib/x; rtm reads a URL the
    # way SQLAlchemy does (three slashes: relative), so it says which form was meant.
    three_slashes = open_source("queue", "sqlite://" + db, Config(db=db))
    with pytest.raises(FileNotFoundError) as missing:
        await three_slashes.fetch()
    await three_slashes.close()
    assert f"no database at {db[1:]}" in str(missing.value)
    assert f"four slashes, as in sqlite:///{db}" in str(missing.value)
    four_slashes = open_source("queue", "sqlite:///" + db, Config(db=db))
    assert await four_slashes.fetch() == {}
    await four_slashes.close()


async def test_the_four_slash_hint_keeps_the_msilo_scheme(tmp_path: Path) -> None:
    silo = str(tmp_path / "kamailio.sqlite")
    write(silo, "CREATE TABLE silo (id INTEGER PRIMARY KEY)")
    three_slashes = open_source("queue", "msilo+sqlite://" + silo, Config(db=silo))
    with pytest.raises(FileNotFoundError, match=re.escape(f"msilo+sqlite:///{silo}")):
        await three_slashes.fetch()
    await three_slashes.close()

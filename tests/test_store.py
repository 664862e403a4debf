"""The embedded store's schema: versioned, repeatable, and Kamailio's own usrloc table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from server import store
from server.config import ConfigError


def test_migrations_are_versioned_and_run_once(tmp_path: Path) -> None:
    db = str(tmp_path / "rtm.db")
    version = store.migrate(db)
    assert version == len(store.MIGRATIONS)
    assert store.migrate(db) == version  # a second start changes nothing
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == version
    # Kamailio's db_sqlite refuses a location table without its version row.
    assert conn.execute(
        "SELECT table_version FROM version WHERE table_name = 'location'"
    ).fetchone() == (9,)
    conn.close()


def test_a_store_from_a_newer_rtm_is_refused_untouched(tmp_path: Path) -> None:
    db = str(tmp_path / "rtm.db")
    store.migrate(db)
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {len(store.MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this rtm"):
        store.migrate(db)


def test_location_has_kamailios_columns(tmp_path: Path) -> None:
    db = str(tmp_path / "rtm.db")
    store.migrate(db)
    conn = sqlite3.connect(db)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(location)")]
    conn.close()
    assert columns == [
        "id", "ruid", "username", "domain", "contact", "received", "path", "expires", "q",
        "callid", "cseq", "last_modified", "flags", "cflags", "user_agent", "socket", "methods",
        "instance", "reg_id", "server_id", "connection_id", "keepalive", "partition",
    ]  # fmt: skip


def test_a_url_of_an_unknown_scheme_is_no_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Once, RTM_DB=postgresql://… became a relative folder named "postgresql:".
    monkeypatch.chdir(tmp_path)
    for url in ("mysql://rtm@db/rtm", "sqlite:///var/rtm.db"):
        with pytest.raises(ConfigError, match="RTM_DB: unknown scheme"):
            store.migrate(url)
    with pytest.raises(ConfigError, match="is a database URL, not a file path"):
        store.connect("postgresql://rtm@db/rtm")
    assert list(tmp_path.iterdir()) == []

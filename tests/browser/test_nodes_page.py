"""The page with two nodes feeding the accounts table: the Node column, the counts across
nodes, and a stale banner that names the stale node while the other stays live."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from server import store

from ..store_rows import add_contact, write
from .conftest import MS, OpenPage
from .page import headline, row_with, rows

pytestmark = pytest.mark.browser


def node_store(tmp_path: Path, name: str) -> str:
    db = str(tmp_path / f"{name}.db")
    store.migrate(db)
    return db


def read_schema(db: str, table: str) -> str:
    conn = store.connect(db)
    try:
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        return str(sql)
    finally:
        conn.close()


def test_the_banner_names_the_stale_node_and_the_node_column_shows(
    start_rtm: Any, open_page: OpenPage, tmp_path: Path
) -> None:
    east, west = node_store(tmp_path, "east"), node_store(tmp_path, "west")
    add_contact(east, "alice", ip="192.0.2.10")
    add_contact(east, "bob", ip="192.0.2.11")
    add_contact(west, "alice", ip="192.0.2.20")  # alice on both nodes: one user
    server = start_rtm(
        env={"RTM_REGISTRATIONS": f"sqlite:///{east}?node=east sqlite:///{west}?node=west"}
    )
    page = open_page(server)
    expect(rows(page)).to_have_count(3, timeout=5 * MS)
    expect(headline(page)).to_have_text(" - 2 registered users")
    expect(page.locator("#view-accounts th").filter(has_text="Node")).to_be_visible()
    expect(row_with(page, "192.0.2.20")).to_contain_text("west")
    expect(row_with(page, "192.0.2.11")).to_contain_text("east")

    schema = read_schema(west, "location")
    write(west, "DROP TABLE location")  # west now fails every read
    banner = page.locator(".banner-stale")
    expect(banner).to_have_count(1, timeout=5 * MS)
    expect(banner).to_contain_text(
        re.compile(
            r"Registrations source of node west is stale since"
            r" \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC .*location"
        )
    )
    expect(banner).not_to_contain_text("east")
    # east stays live; west's last good row stays on screen
    add_contact(east, "carol", ip="192.0.2.12")
    expect(row_with(page, "carol")).to_be_visible(timeout=2 * MS)
    expect(row_with(page, "192.0.2.20")).to_be_visible()
    expect(headline(page)).to_have_text(" - 3 registered users")

    write(west, schema)
    expect(banner).to_have_count(0, timeout=5 * MS)

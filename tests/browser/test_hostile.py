"""Hostile SIP strings (User-Agent, contact, owner, username) are shown literally, never run."""

from __future__ import annotations

import csv
import io
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from server.times import unix_to_julian

from ..store_rows import add_account, write
from .conftest import OpenPage
from .page import rows

pytestmark = pytest.mark.browser

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = '"><script>alert(1)</script>'
JS_URI = "javascript:alert(document.cookie)"
RTL = "\u202eevil\u202c-agent"
LONG = "A" * 10_240
FORMULA = '=HYPERLINK("http://attacker.example","click")'
HOSTILE_AGENTS = [IMG, SCRIPT, JS_URI, RTL, LONG, FORMULA, "+cmd|' /C calc'!A0", "@SUM(1+1)"]


def seed_hostile(db: str) -> None:
    add_account(db, "mallory", owner=SCRIPT, group=IMG, caller_id=JS_URI)
    add_account(db, IMG, owner=FORMULA)
    now = time.time()
    contacts = [
        (
            f"evil-{i}-{uuid.uuid4().hex[:6]}",
            IMG if i == 0 else "mallory",
            f"sip:{JS_URI}@192.0.2.{i + 1}:5060;x={SCRIPT}",
            unix_to_julian(now + 3600),
            unix_to_julian(now),
            agent,
            "udp:127.0.0.1:5060",
        )
        for i, agent in enumerate(HOSTILE_AGENTS)
    ]
    write(
        db,
        "INSERT INTO location (ruid, username, contact, expires, last_modified,"
        " user_agent, socket) VALUES (?, ?, ?, ?, ?, ?, ?)",
        contacts,
    )


def test_hostile_strings_are_text_only(start_rtm: Any, open_page: OpenPage, tmp_path: Path) -> None:
    server = start_rtm(seed=seed_hostile)
    page = open_page(server)
    expect(rows(page)).to_have_count(len(HOSTILE_AGENTS))
    texts = page.eval_on_selector_all(
        "#view-accounts tr.row td", "cells => cells.map(c => c.textContent)"
    )
    for value in [*HOSTILE_AGENTS, IMG, SCRIPT, JS_URI]:
        assert value in texts, f"{value[:40]!r} not shown literally"
    # Nothing the data carried became markup: no element from the strings exists anywhere.
    assert (
        page.evaluate("document.querySelectorAll('body img, body script, body iframe').length") == 0
    )
    assert page.evaluate(
        "[...document.querySelectorAll('a[href]')].every(a => !a.href.startsWith('javascript:'))"
    )
    # The 10 KB agent is trimmed by CSS, not by cutting the text; the row keeps its height.
    heights = page.eval_on_selector_all(
        "#view-accounts tr.row", "rows => rows.map(r => r.offsetHeight)"
    )
    assert max(heights) == min(heights)

    # Details of the account whose username is itself markup: shown literally too.
    page.locator("#view-accounts a.cell-link", has_text=IMG).first.click()
    details = page.locator(".details")
    expect(details).to_contain_text(FORMULA)
    expect(details.locator("h2")).to_have_text(f"Account {IMG}")
    assert page.evaluate("document.querySelectorAll('body img, body script').length") == 0
    page.keyboard.press("Escape")
    expect(details).to_be_hidden()

    # CSV export: properly quoted, formulas neutralised for spreadsheets.
    with page.expect_download() as download_info:
        page.locator("#view-accounts button", has_text="Export CSV").click()
    path = tmp_path / "export.csv"
    download_info.value.save_as(path)
    table = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))
    assert table[0][0] == "Username"
    cells = {cell for row in table[1:] for cell in row}
    assert "'" + FORMULA in cells and FORMULA not in cells
    assert "'@SUM(1+1)" in cells and "'+cmd|' /C calc'!A0" in cells
    assert IMG in cells and SCRIPT in cells and LONG in cells
    assert len(table) == 1 + len(HOSTILE_AGENTS)

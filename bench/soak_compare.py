"""Does a page show the server's tables? (bench/soak.py asks after every restart.)

The desk page's "Export CSV" of each view is the page's own copy of the table (every row,
not only the rendered ones), compared as a multiset of what identifies a row and what
changes in it: accounts by username, port and User-Agent; trunks by name and status; the
queue by from, to and attempts. The kiosk has no export: its tiles (contacts, users,
queue) must give the server's counts. The page is given time to reconnect and catch up:
the tables are compared again until they agree or ``WITHIN`` seconds pass.
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

from tests.live_server import RtmServer
from tests.mirror import Mirror

WITHIN = 60.0
VIEWS = {  # view -> (tab label, CSV columns, the server's fields in the same order)
    "accounts": (
        "Registered Accounts",
        ("Username", "Port", "UserAgent"),
        ("username", "port", "user_agent"),
    ),
    "trunks": ("Sip trunk status", ("Name", "Status"), ("name", "status")),
    "queue": ("Message Queue", ("From", "To", "Sent"), ("from", "to", "sent")),
}


def defused(value: Any) -> str:
    """A server value as the page's CSV writes it (formula-looking text gets an apostrophe)."""
    text = "" if value is None else str(value)
    return "'" + text if re.match(r"^[=+\-@\t\r]", text) else text


def socket_to(server: RtmServer) -> ClientConnection:
    """A WebSocket to ``server`` carrying its session, as the page's own origin."""
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in server.cookies.items())}
    return connect(
        server.ws_url, additional_headers=headers, origin=server.url, max_size=None,
        open_timeout=30,
    )  # fmt: skip


def server_tables(server: RtmServer) -> dict[str, Counter[tuple[str, ...]]]:
    """The hub's tables now, as a fresh WebSocket snapshot (``GET /api`` may serve a body
    up to ten seconds old that a page would bring up to date from the ring)."""
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    with socket_to(server) as ws:
        ws.recv(30)  # hello
        ws.send(json.dumps({"type": "resume", "epoch": None, "seq": {}}))
        sources: set[str] = set()
        while sources < set(VIEWS):
            frame = json.loads(ws.recv(30))
            table = rows.setdefault(frame.get("table", ""), {})
            if frame["type"] == "snapshot":
                table.update((row["id"], row) for row in frame["rows"])
            elif frame["type"] == "diff":  # the ring's diffs since a shared snapshot's seq
                for key in frame["delete"]:
                    table.pop(key, None)
                for row in frame["upsert"]:
                    table[row["id"]] = {**table.get(row["id"], {}), **row}
            elif frame["type"] == "source":
                sources.add(frame["table"])
    return as_views(rows)


def as_views(rows: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Counter[tuple[str, ...]]]:
    """Tables of rows by id as the comparison counts them (see the module's docstring)."""
    return {
        view: Counter(
            tuple(defused(row.get(f)) for f in fields) for row in rows.get(view, {}).values()
        )
        for view, (_, _, fields) in VIEWS.items()
    }


def unequal(
    who: str, held: dict[str, Counter[tuple[str, ...]]], truth: dict[str, Counter[tuple[str, ...]]]
) -> str:
    """'' when ``held`` has the server's tables, else what the first unequal one lacks."""
    for view, rows in truth.items():
        if held[view] != rows:
            extra, missing = held[view] - rows, rows - held[view]
            return (
                f"{who} {view}: {sum(extra.values())} extra {list(extra)[:2]},"
                f" {sum(missing.values())} missing {list(missing)[:2]}"
            )
    return ""


class Follower(threading.Thread):
    """A WebSocket client of the server the soak never restarts (whose RSS is judged over
    the whole run), holding its tables as a script would: every frame applied in seq order
    (tests/mirror.py; a gap fails it), a fresh snapshot if it ever has to reconnect."""

    def __init__(self, server: RtmServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.mirror = Mirror(cast(Any, None))
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.frames = self.reconnects = 0
        self.failure = ""

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                with socket_to(self.server) as ws:
                    self.mirror = Mirror(cast(Any, None))
                    ws.send(json.dumps({"type": "resume", "epoch": None, "seq": {}}))
                    while not self.stopped.is_set():
                        try:
                            text = ws.recv(0.5)
                        except TimeoutError:
                            continue
                        with self.lock:
                            self.mirror.handle(json.loads(text))
                            self.frames += 1
            except (OSError, ConnectionClosed, InvalidHandshake):
                self.reconnects += 1
                self.stopped.wait(1)
            except AssertionError as exc:  # a seq gap: what the soak must never see
                self.failure = str(exc)
                return

    def stop(self) -> None:
        self.stopped.set()
        self.join(10)

    def difference(self) -> str:
        """'' when this client holds the server's tables, else what differs."""
        if self.failure:
            return f"follower failed: {self.failure}"
        truth = server_tables(self.server)
        with self.lock:
            held = as_views(self.mirror.tables)
        return unequal("follower", held, truth)


def desk_tables(page: Any) -> dict[str, Counter[tuple[str, ...]]]:
    tables = {}
    for view, (label, columns, _) in VIEWS.items():
        page.get_by_role("button", name=label, exact=True).click()
        with page.expect_download() as download:
            page.locator(f"#view-{view} button", has_text="Export CSV").click()
        text = Path(download.value.path()).read_text(encoding="utf-8-sig")
        table = list(csv.reader(io.StringIO(text, newline="")))
        index = [table[0].index(column) for column in columns]
        tables[view] = Counter(tuple(row[i] for i in index) for row in table[1:])
    page.get_by_role("button", name=VIEWS["accounts"][0], exact=True).click()
    return tables


def kiosk_counts(page: Any) -> dict[str, int]:
    values = {}
    for tile in ("contacts", "users", "queue"):
        text = page.locator(f'.tile[data-tile="{tile}"] .tile-value').text_content() or ""
        digits = re.sub(r"\D", "", text)
        values[tile] = int(digits) if digits else -1
    return values


def difference(server: RtmServer, pages: dict[str, Any]) -> str:
    """'' when every page shows the server's tables, else what differs."""
    if pages["desk"].locator(".link").get_attribute("data-state") != "live":
        return "desk not live"
    truth = server_tables(server)
    desk = desk_tables(pages["desk"])
    if differs := unequal("desk", desk, truth):
        return differs
    users = len({row[0] for row in truth["accounts"]})
    counts = {
        "contacts": sum(truth["accounts"].values()),
        "users": users,
        "queue": sum(truth["queue"].values()),
    }
    if (shown := kiosk_counts(pages["kiosk"])) != counts:
        return f"kiosk tiles {shown} != server {counts}"
    return ""


def pages_equal_server(
    server: RtmServer,
    pages: dict[str, Any],
    seen: list[str] | None = None,
    follower: Follower | None = None,
) -> str:
    """'equal', or what still differed after WITHIN seconds; each difference met on the way
    (a page still reconnecting, a short registration lapsing meanwhile) goes to ``seen``.
    A ``follower`` (of another server on the same store) must hold its server's tables too."""
    deadline, differs = time.monotonic() + WITHIN, ""
    while time.monotonic() < deadline:
        differs = difference(server, pages) or (follower.difference() if follower else "")
        if not differs:
            return "equal"
        if seen is not None:
            seen.append(differs)
        pages["desk"].wait_for_timeout(500)
    return differs

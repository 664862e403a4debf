"""JSON for scripts and for the page's detail views."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from .config import Config
from .hub import Hub

# Directory columns an account-details view shows (the id is internal).
DIRECTORY_COLUMNS = (
    "username", "domain", "owner", "caller_id", "caller_id_2", "group", "email", "enabled",
    "created", "notes",
)  # fmt: skip


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def not_found(what: str) -> JSONResponse:
    return JSONResponse({"error": f"{what} not found"}, status_code=404)


async def table(request: Request) -> JSONResponse:
    """``GET /api/{table}``: the table's rows, its seq and its source's health."""
    hub = _hub(request)
    state = hub.tables.get(request.path_params["table"])
    if state is None:
        return not_found("table")
    source = dataclasses.asdict(state.source)
    source.pop("type")
    source.pop("table")
    return JSONResponse({"seq": state.seq, "rows": list(state.rows.values()), "source": source})


def _directory(db: str, username: str) -> list[dict[str, Any]]:
    columns = ", ".join(f'"{c}"' for c in DIRECTORY_COLUMNS)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
    try:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(f"SELECT {columns} FROM accounts WHERE username = ?", (username,))
        return [dict(row) for row in rows]
    except sqlite3.Error:
        return []  # no directory in this store: details show the live contacts only
    finally:
        conn.close()


async def account(request: Request) -> JSONResponse:
    """``GET /api/accounts/{username}``: directory entry and live contacts."""
    username = request.path_params["username"]
    config: Config = request.app.state.config
    contacts = [
        r for r in _hub(request).tables["accounts"].rows.values() if r["username"] == username
    ]
    entries = await asyncio.to_thread(_directory, config.db, username)
    if not entries and not contacts:
        return not_found("account")
    domains = {c.get("domain") for c in contacts}
    entry = next((e for e in entries if e["domain"] in domains), entries[0] if entries else None)
    if entry is not None:
        entry["enabled"] = bool(entry["enabled"])
    return JSONResponse({"username": username, "directory": entry, "contacts": contacts})


async def message(request: Request) -> JSONResponse:
    """``GET /api/queue/{id}``: one queued message's metadata (never its content)."""
    row = _hub(request).tables["queue"].rows.get(request.path_params["id"])
    return JSONResponse(row) if row is not None else not_found("message")


async def healthz(request: Request) -> JSONResponse:
    """Liveness for load balancers: 200 while serving, with which sources are stale."""
    hub = _hub(request)
    stale = [name for name, state in hub.tables.items() if not state.source.ok]
    stats = hub.stats
    return JSONResponse(
        {"status": "ok", "stale": stale, "clients": stats.clients, "resyncs": stats.resyncs}
    )

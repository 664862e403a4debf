"""JSON for scripts and for the page's detail views."""

from __future__ import annotations

import asyncio
import gzip
import re
import sqlite3
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from . import database
from .config import Config, is_postgres
from .hub import MAX_FIRST, Hub
from .metrics import exposition

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


async def not_found_handler(request: Request, exc: Exception) -> Response:
    """No route: scripts asking under ``/api/`` get JSON like every other API answer."""
    if request.url.path.startswith("/api/"):
        return not_found(request.url.path.removeprefix("/api/")[:64] or "resource")
    return PlainTextResponse("Not Found", status_code=404)


def table_route(name: str) -> Route:
    """``GET /api/<name>``: the table's rows, its epoch and seq, and its source's health.

    Served from one gzipped encode shared by every client (docs/protocol.md, "Snapshots
    over HTTP"): a wall of displays reconnecting at once costs one encode, not one each. The
    body may be a few seqs behind the table; its client resumes the WebSocket from there.
    """

    async def table(request: Request) -> Response:
        hub = _hub(request)
        if "first" in request.query_params:
            return await _head(request, hub, name)
        await hub.first_poll()
        shared = await hub.tables[name].shared_snapshot(hub.epoch)
        headers = {"ETag": shared.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
        if shared.etag in _etags(request.headers.get("if-none-match", "")):
            return Response(status_code=304, headers=headers)
        if _accepts_gzip(request.headers.get("accept-encoding", "")):
            headers["Content-Encoding"] = "gzip"
            return Response(shared.gzipped, media_type="application/json", headers=headers)
        body = await asyncio.to_thread(gzip.decompress, shared.gzipped)  # a script, not a browser
        return Response(body, media_type="application/json", headers=headers)

    return Route(f"/api/{name}", table, methods=["GET"])


# A preview's sort is a row field's name, nothing else (it is echoed in errors).
_FIELD = re.compile(r"[a-z][a-z0-9_]{0,63}")


async def _head(request: Request, hub: Hub, name: str) -> Response:
    """``GET /api/<name>?first=N&sort=field&dir=asc|desc``: the first N rows in that order,
    for a page to paint before the whole table has arrived (docs/protocol.md)."""
    query = request.query_params
    first, sort, direction = (
        query.get("first", ""),
        query.get("sort", "id"),
        query.get("dir", "asc"),
    )
    problem = None
    if not first.isdigit() or not 1 <= int(first) <= MAX_FIRST:
        problem = f"first must be a whole number from 1 to {MAX_FIRST}"
    elif not _FIELD.fullmatch(sort):
        problem = "sort must be a column name (lower-case letters, digits, _)"
    elif direction not in ("asc", "desc"):
        problem = "dir must be asc or desc"
    if problem:
        return JSONResponse({"error": problem}, status_code=400)
    await hub.first_poll()
    body = await hub.tables[name].head(hub.epoch, sort, direction == "desc", int(first))
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _accepts_gzip(header: str) -> bool:
    """True when Accept-Encoding names gzip (or ``*``) with a quality above 0."""
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "*"):
            continue
        quality = params.strip()
        if not quality.startswith("q="):
            return True
        try:
            return float(quality[2:]) > 0
        except ValueError:
            return False
    return False


def _directory(db: str, username: str) -> list[dict[str, Any]]:
    columns = ", ".join(f'"{c}"' for c in DIRECTORY_COLUMNS)
    if is_postgres(db):
        return _postgres_directory(db, columns, username)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
    try:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(f"SELECT {columns} FROM accounts WHERE username = ?", (username,))
        return [dict(row) for row in rows]
    except sqlite3.Error:
        return []  # no directory in this store: details show the live contacts only
    finally:
        conn.close()


def _postgres_directory(db: str, columns: str, username: str) -> list[dict[str, Any]]:
    try:
        with database.open_db(db) as conn:
            rows = conn.execute(
                f"SELECT {columns} FROM accounts WHERE username = ?", (username,)
            ).fetchall()
    except database.DatabaseError:
        return []  # PostgreSQL down: details show the live contacts only
    return [dict(zip(DIRECTORY_COLUMNS, row, strict=True)) for row in rows]


async def account(request: Request) -> JSONResponse:
    """``GET /api/accounts/{username}``: directory entry and live contacts.

    An account rtm knows nothing of right now is an answer, not an error (``directory``
    null, no contacts): the page asks for accounts that just left, and browsers log every
    4xx in the console as a failure.
    """
    username = request.path_params["username"]
    config: Config = request.app.state.config
    contacts = [
        r for r in _hub(request).tables["accounts"].rows.values() if r["username"] == username
    ]
    entries = await asyncio.to_thread(_directory, config.db, username)
    domains = {c.get("domain") for c in contacts}
    entry = next((e for e in entries if e["domain"] in domains), entries[0] if entries else None)
    if entry is not None:
        entry["enabled"] = bool(entry["enabled"])
    return JSONResponse({"username": username, "directory": entry, "contacts": contacts})


async def message(request: Request) -> JSONResponse:
    """``GET /api/queue/{id}``: one queued message's metadata (never its content), or
    ``{"id": .., "queued": false}`` once it has left the queue (an answer, as for accounts)."""
    key = request.path_params["id"]
    row = _hub(request).tables["queue"].rows.get(key)
    return JSONResponse(row if row is not None else {"id": key, "queued": False})


async def healthz(request: Request) -> JSONResponse:
    """Liveness for load balancers: 200 while serving, with which sources are stale."""
    hub = _hub(request)
    stale = [name for name, state in hub.tables.items() if not state.source.ok]
    stats = hub.stats
    return JSONResponse(
        {"status": "ok", "stale": stale, "clients": stats.clients, "resyncs": stats.resyncs}
    )


async def readyz(request: Request) -> JSONResponse:
    """Readiness for a balancer: 200 once every source was polled once and the store takes
    writes, else 503 with what is missing. Stale sources do not make rtm unready: it still
    serves their last rows, marked stale (``/healthz`` lists them)."""
    hub = _hub(request)
    config: Config = request.app.state.config
    waiting = [name for name in hub.tables if not hub.polled(name)]
    problems = [f"{name}: not polled yet" for name in waiting]
    store_error = await asyncio.to_thread(database.write_problem, config.db)
    if store_error:
        problems.append(store_error)
    status = 503 if problems else 200
    return JSONResponse({"ready": not problems, "problems": problems}, status_code=status)


async def metrics(request: Request) -> Response:
    """``GET /metrics``: Prometheus text; the security gate admits loopback, a token or staff."""
    body = exposition(request.app.state.metrics)
    return Response(body, media_type=CONTENT_TYPE_LATEST)

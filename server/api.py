"""JSON for scripts and for the page's detail views."""

from __future__ import annotations

import asyncio
import gzip
import sqlite3
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

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


def _metric_lines(hub: Hub) -> list[str]:
    stats = hub.stats
    lines = [
        "# HELP rtm_clients WebSocket clients connected now.",
        "# TYPE rtm_clients gauge",
        f"rtm_clients {stats.clients}",
        "# HELP rtm_client_resyncs_total Clients that fell behind and were sent a snapshot.",
        "# TYPE rtm_client_resyncs_total counter",
        f"rtm_client_resyncs_total {stats.resyncs}",
        "# HELP rtm_diffs_published_total Diffs published across all tables.",
        "# TYPE rtm_diffs_published_total counter",
        f"rtm_diffs_published_total {stats.published}",
        "# HELP rtm_ws_bad_messages_total Client frames answered with an error message.",
        "# TYPE rtm_ws_bad_messages_total counter",
        f"rtm_ws_bad_messages_total {stats.bad_messages}",
        "# HELP rtm_ws_closed_total Client sockets closed by rtm, by reason.",
        "# TYPE rtm_ws_closed_total counter",
        f'rtm_ws_closed_total{{reason="oversized"}} {stats.closed_oversized}',
        f'rtm_ws_closed_total{{reason="flood"}} {stats.closed_flood}',
        f'rtm_ws_closed_total{{reason="slow"}} {stats.closed_slow}',
    ]
    for metric, kind, help_text in (
        ("rtm_table_rows", "gauge", "Rows in each table now."),
        ("rtm_table_seq", "counter", "Each table's diff sequence number."),
        ("rtm_source_up", "gauge", "1 while the table's source answers, 0 while stale."),
        (
            "rtm_reconcile_mismatches_total",
            "counter",
            "Rows a source's change feed missed and the reconcile found (should stay 0).",
        ),
    ):
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}"]
        for name, state in hub.tables.items():
            value = {
                "rtm_table_rows": len(state.rows),
                "rtm_table_seq": state.seq,
                "rtm_source_up": int(state.source.ok),
                "rtm_reconcile_mismatches_total": stats.reconcile_mismatches.get(name, 0),
            }[metric]
            lines.append(f'{metric}{{table="{name}"}} {value}')
    return lines


async def metrics(request: Request) -> PlainTextResponse:
    """``GET /metrics``: Prometheus text; the security gate admits loopback, a token or staff."""
    body = "\n".join(_metric_lines(_hub(request))) + "\n"
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4")

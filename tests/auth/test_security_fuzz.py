"""Hostile requests at the gate: whatever bytes arrive, SecurityMiddleware answers, never crashes,
and lets nothing through without credentials."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import store
from server.auth import Auth
from server.auth.gate import SecurityMiddleware
from server.auth.roles import is_public
from server.config import Config

REACHED: list[str] = []


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    REACHED.append(scope["path"])
    if scope["type"] == "websocket":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


header_bytes = st.binary(max_size=300)
# Random bytes alone almost never spell `display=`: half the queries carry one among them,
# so the last assertion below (the token leaves the scope uvicorn logs) is really tested.
queries = st.one_of(
    st.binary(max_size=200),
    st.tuples(st.binary(max_size=100), st.binary(max_size=60)).map(
        lambda parts: parts[0] + b"&display=" + parts[1]
    ),
)
paths = st.one_of(
    st.sampled_from(
        ["/", "/ws", "/api/accounts", "/api/displays", "/metrics", "/login", "/static/x"]
    ),
    st.text(max_size=60).map(lambda t: "/" + t),
)


def run(gate: SecurityMiddleware, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if scope["type"] == "websocket":
            return {"type": "websocket.connect"}
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(gate(scope, receive, send))
    return sent


_GATE: dict[str, SecurityMiddleware] = {}


def gate(tmp: Path) -> SecurityMiddleware:
    if "gate" not in _GATE:
        store.migrate(str(tmp / "fuzz.db"))
        auth = Auth(Config(db=str(tmp / "fuzz.db")))
        auth.displays.add("wall")
        _GATE["gate"] = SecurityMiddleware(app, auth)
    return _GATE["gate"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["http", "websocket"]),
    method=st.sampled_from(["GET", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH", "X" * 40]),
    path=paths,
    query=queries,
    cookie=header_bytes,
    authorization=header_bytes,
    origin=header_bytes,
    host=header_bytes,
)
def test_hostile_requests_get_an_answer_and_no_access(
    tmp_path_factory: Any,
    kind: str,
    method: str,
    path: str,
    query: bytes,
    cookie: bytes,
    authorization: bytes,
    origin: bytes,
    host: bytes,
) -> None:
    gatekeeper = gate(tmp_path_factory.getbasetemp())
    headers = [(b"cookie", cookie), (b"authorization", authorization), (b"origin", origin),
               (b"host", host)]  # fmt: skip
    scope: dict[str, Any] = {
        "type": kind, "path": path, "query_string": query, "headers": headers,
        "scheme": "ws" if kind == "websocket" else "http", "client": ("198.51.100.1", 1234),
        "root_path": "",
    }  # fmt: skip
    if kind == "http":
        scope["method"] = method
    REACHED.clear()
    sent = run(gatekeeper, scope)
    assert sent, "no answer"
    if REACHED:  # only public paths get through without a valid credential
        assert kind == "http" and is_public(path), (kind, path)
    elif kind == "http":
        assert sent[0]["status"] in (303, 401, 403), sent[0]
    else:
        assert sent == [{"type": "websocket.close", "code": 1008}]
    left = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    assert "display" not in {key for key, _ in left}  # never reaches a log line

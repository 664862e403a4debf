"""Walks rtm's real route table: a route added tomorrow cannot forget authentication."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from server.app import create_app
from server.auth import Auth
from server.auth.roles import DISPLAY_ALLOWED, is_public, role_allows
from server.auth.sessions import COOKIE_NAME
from server.config import Config

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its TestClient; httpx works the same for these tests.
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient

# Deliberately public; adding to this list is a security decision (docs/security.md).
PUBLIC_ROUTES = {"/login", "/logout", "/healthz", "/readyz", "/static"}
PARAM = re.compile(r"\{[^}]+\}")


@pytest.fixture
def app(tmp_path: Path) -> Starlette:
    return create_app(Config(db=str(tmp_path / "rtm.db")))


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    # No `with`: the lifespan (collectors) is not needed to be turned away at the gate.
    yield TestClient(app, follow_redirects=False)


def endpoints(app: Starlette) -> Iterator[tuple[str, str, str]]:
    """(route path, method or WEBSOCKET, a concrete path) for every route of the app."""
    for route in app.routes:
        if isinstance(route, Mount):
            yield route.path, "GET", route.path + "/js/app.js"
        elif isinstance(route, WebSocketRoute):
            yield route.path, "WEBSOCKET", PARAM.sub("x", route.path)
        elif isinstance(route, Route):
            for method in sorted(route.methods or {"GET"}):
                yield route.path, method, PARAM.sub("x", route.path)
        else:
            raise AssertionError(f"unknown route type {route!r}: teach this test about it")


def assert_websocket_refused(client: TestClient, path: str) -> None:
    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect(path):
            pass


def test_only_the_listed_routes_are_public(app: Starlette) -> None:
    public = {path for path, _, concrete in endpoints(app) if is_public(concrete)}
    assert public == PUBLIC_ROUTES


def test_every_other_route_refuses_anonymous_callers(app: Starlette, client: TestClient) -> None:
    checked = 0
    for path, method, concrete in endpoints(app):
        if path in PUBLIC_ROUTES:
            continue
        checked += 1
        if method == "WEBSOCKET":
            assert_websocket_refused(client, concrete)
            continue
        answer = client.request(method, concrete)
        assert answer.status_code in (401, 303), f"{method} {path}: {answer.status_code}"
        if answer.status_code == 303:
            assert answer.headers["location"].startswith("/login?next=")
        else:
            assert concrete.startswith("/api/") or concrete == "/metrics"
    assert checked >= 6


def test_displays_reach_only_what_a_wall_shows(app: Starlette, client: TestClient) -> None:
    auth: Auth = app.state.auth
    auth.displays.add("wall")
    client.cookies.set(COOKIE_NAME, auth.sessions.start("display", "wall"))
    refused = 0
    for path, method, concrete in endpoints(app):
        if path in PUBLIC_ROUTES or role_allows("display", method, concrete):
            continue
        refused += 1
        assert concrete not in DISPLAY_ALLOWED or method not in ("GET", "HEAD", "WEBSOCKET")
        if method == "WEBSOCKET":
            assert_websocket_refused(client, concrete)
            continue
        answer = client.request(method, concrete)
        assert answer.status_code == 403, f"display: {method} {path}: {answer.status_code}"
    assert refused >= 10  # a walk that refused nothing would prove nothing (21 today)


def test_setup_passes_the_gate_only_at_first_start(tmp_path: Path) -> None:
    """`/setup` is not in PUBLIC_ROUTES: it passes without credentials only while the store
    has no user and `rtm serve` issued a setup token (setup.py), and even then it
    opens nothing without that token. Otherwise it is as closed as any other route."""
    app = create_app(Config(db=str(tmp_path / "rtm.db"), login_delay=0.01))
    client = TestClient(app, follow_redirects=False)
    assert client.get("/setup").status_code == 303  # no token issued (not `rtm serve`)
    token = app.state.first_run.issue()
    assert token
    for attempt in ("/setup", "/setup?token=wrong", "/setup?token=" + "x" * len(token)):
        answer = client.get(attempt)
        assert answer.status_code == 403 and 'name="password"' not in answer.text
    assert client.get("/setup?token=" + token).status_code == 200
    assert client.get("/api/accounts?token=" + token).status_code == 401
    app.state.auth.users.add("alice", "operator", "a long enough password")
    for method in ("GET", "POST"):
        answer = client.request(method, "/setup?token=" + token)
        assert answer.status_code == 303, method
        assert answer.headers["location"] == "/login?next=%2Fsetup"


def test_unknown_paths_do_not_reveal_themselves(client: TestClient) -> None:
    assert client.get("/no/such/page").status_code == 303
    assert client.get("/api/no-such-thing").status_code == 401


@pytest.mark.parametrize(
    "path",
    ["/static/../api/accounts", "/static/%2e%2e/api/accounts", "/static/..%2fapi/accounts",
     "/healthz/../api/accounts", "/static//api/accounts", "/login/../api/accounts",
     "/static/../../server/app.py", "/static/../index.html"],
)  # fmt: skip
@pytest.mark.asyncio
async def test_public_prefixes_lead_to_nothing_private(app: Starlette, path: str) -> None:
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
        "query_string": b"", "headers": [(b"host", b"testserver")], "scheme": "http",
        "client": ("198.51.100.1", 1), "server": ("testserver", 80), "root_path": "",
        "http_version": "1.1", "asgi": {"version": "3.0"}, "state": {},
    }  # fmt: skip
    await app(scope, receive, send)
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])  # type: ignore[misc]
    assert status in (303, 401, 404), (path, status)
    assert b'"rows"' not in body and b"argon2" not in body and b"<html" not in body.lower()

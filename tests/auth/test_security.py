"""SecurityMiddleware and the auth routes on a tiny inline app shaped like rtm's."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from server import store
from server.auth import Auth
from server.auth.gate import SecurityMiddleware
from server.auth.revocation import SessionWatcher
from server.auth.roles import role_allows
from server.auth.routes import routes as auth_routes
from server.auth.routes import safe_next
from server.auth.sessions import COOKIE_NAME
from server.config import Config, ConfigError, from_env

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its TestClient; httpx works the same for these tests.
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient

PASSWORD = "correct horse battery"


async def echo(request: Request) -> Response:
    return JSONResponse({"user": request.scope.get("user"), "query": request.url.query})


async def metrics(request: Request) -> Response:
    return PlainTextResponse("rtm_up 1\n")


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"user": websocket.scope.get("user")})
    await websocket.close()


def make_app(auth: Auth) -> Starlette:
    routes = [
        Route("/", echo),
        Route("/healthz", echo),
        Route("/static/app.js", echo),
        Route("/metrics", metrics),
        Route("/api/accounts", echo),
        Route("/api/accounts/{username}", echo),
        Route("/api/queue/{id}", echo, methods=["GET", "DELETE"]),
        WebSocketRoute("/ws", socket),
        *auth_routes(auth),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityMiddleware, auth=auth)])


@pytest.fixture
def auth(tmp_path: Path) -> Auth:
    config = Config(db=str(tmp_path / "rtm.db"), login_max_failures=3, login_delay=0.05)
    store.migrate(config.db)
    auth = Auth(config)
    auth.users.add("alice", "admin", PASSWORD)
    auth.users.add("olga", "operator", PASSWORD)
    return auth


@pytest.fixture
def client(auth: Auth) -> Iterator[TestClient]:
    with TestClient(make_app(auth), follow_redirects=False) as client:
        yield client


def session(auth: Auth, client: TestClient, kind: str, name: str) -> TestClient:
    client.cookies.set(COOKIE_NAME, auth.sessions.start(kind, name))
    return client


def test_without_credentials_pages_redirect_api_401_and_public_paths_pass(
    client: TestClient,
) -> None:
    page = client.get("/?kiosk=1")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2F%3Fkiosk%3D1"
    for path in ("/api/accounts", "/api/accounts/x", "/api/displays", "/api/me"):
        answer = client.get(path)
        assert answer.status_code == 401 and answer.json() == {"error": "authentication required"}
    for path in ("/healthz", "/static/app.js", "/login"):
        assert client.get(path).status_code == 200
    assert client.get("/api/accounts", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/", "/login", "/api/accounts", "/healthz", "/static/app.js"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self';" in csp and "'unsafe-inline'" not in csp
        assert "frame-ancestors 'none'" in csp
        assert "connect-src 'self' ws://testserver wss://testserver;" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in headers
    assert client.get("/api/accounts").headers["cache-control"] == "no-store"


def test_https_adds_hsts_secure_cookies_and_wss_only(auth: Auth) -> None:
    with TestClient(make_app(auth), base_url="https://rtm.test", follow_redirects=False) as client:
        answer = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert answer.headers["strict-transport-security"].startswith("max-age=")
    assert "connect-src 'self' wss://rtm.test;" in answer.headers["content-security-policy"]
    assert "Secure" in answer.headers["set-cookie"].split("; ")


def test_frame_ancestors_can_be_configured(auth: Auth) -> None:
    auth.config = auth.config.replace(frame_ancestors="https://noc.example")
    with TestClient(make_app(auth)) as client:
        headers = client.get("/login").headers
    assert "frame-ancestors https://noc.example" in headers["content-security-policy"]
    assert "x-frame-options" not in headers
    # A CSP injection is refused where every setting is checked: rtm serve fails, naming it.
    with pytest.raises(ConfigError, match="RTM_FRAME_ANCESTORS"):
        from_env({"RTM_FRAME_ANCESTORS": "'self'; script-src *"}).validate()


def test_login_sets_a_strict_httponly_cookie_and_goes_to_next(client: TestClient) -> None:
    answer = client.post(
        "/login", data={"username": "olga", "password": PASSWORD, "next": "/?view=trunks"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/?view=trunks"
    flags = answer.headers["set-cookie"].split("; ")
    assert "HttpOnly" in flags and "SameSite=Strict" in flags and "Path=/" in flags
    assert "Secure" not in flags
    assert client.get("/api/accounts").json()["user"] == {"name": "olga", "role": "operator"}
    assert client.get("/api/me").json() == {"name": "olga", "role": "operator"}


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)",
     "/\r\nSet-Cookie: x=1", "/login?next=//evil.example", ""],
)  # fmt: skip
def test_next_never_leaves_the_site(target: str) -> None:
    assert safe_next(target) == "/"


def test_unknown_user_and_wrong_password_get_the_same_answer(client: TestClient) -> None:
    wrong = client.post("/login", data={"username": "alice", "password": "nope-nope"})
    unknown = client.post("/login", data={"username": "alicia", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    strip = re.compile(r'value="[^"]*"')  # the form echoes the name typed
    assert strip.sub("", wrong.text) == strip.sub("", unknown.text)
    assert "set-cookie" not in wrong.headers


def test_a_browser_form_that_fails_is_sent_back_to_the_page(client: TestClient) -> None:
    # Post/Redirect/Get for browser navigations (Chromium logs a 4xx page as a console
    # error, and a reload would post the password again); scripts keep 401/429 above.
    navigate = {"sec-fetch-mode": "navigate"}
    form = {"username": "alice", "password": "nope-nope", "next": "/?view=queue"}
    answer = client.post("/login", data=form, headers=navigate, follow_redirects=False)
    assert answer.status_code == 303 and "set-cookie" not in answer.headers
    target = answer.headers["location"]
    assert target == "/login?failed=wrong&username=alice&next=%2F%3Fview%3Dqueue"
    page = client.get(target)
    assert page.status_code == 200 and "Wrong user name or password." in page.text
    assert 'value="alice"' in page.text and 'value="/?view=queue"' in page.text
    # The query shows only the messages rtm has; anything else is a plain sign-in page.
    assert "<script" not in client.get("/login?failed=<script>&username=<script>").text


def test_failed_logins_are_slowed_then_locked(client: TestClient, auth: Auth) -> None:
    delay = auth.config.login_delay
    started = time.monotonic()
    first = client.post("/login", data={"username": "olga", "password": "nope-nope"})
    second = client.post("/login", data={"username": "olga", "password": "nope-nope"})
    assert first.status_code == second.status_code == 401
    assert time.monotonic() - started >= 3 * delay  # 1 x delay, then 2 x delay
    third = client.post("/login", data={"username": "olga", "password": "nope-nope"})
    assert third.status_code == 429 and "Try again later" in third.text
    right = client.post("/login", data={"username": "olga", "password": PASSWORD})
    assert right.status_code == 429 and "set-cookie" not in right.headers


def test_login_form_escapes_what_it_echoes(client: TestClient) -> None:
    hostile = '"><script>alert(1)</script>'
    answer = client.post("/login", data={"username": hostile, "password": "x", "next": hostile})
    assert "<script>alert(1)" not in answer.text
    assert "&#34;&gt;&lt;script&gt;" in answer.text
    assert "<script" not in client.get("/login").text  # CSP: no inline script to allow


def test_oversized_login_form_is_refused(client: TestClient) -> None:
    answer = client.post("/login", data={"username": "olga", "password": "x" * 20_000})
    assert answer.status_code == 413


def test_cross_site_writes_are_refused(client: TestClient, auth: Auth) -> None:
    session(auth, client, "user", "alice")
    evil = client.post("/api/displays", json={"name": "x"}, headers={"Origin": "https://evil"})
    assert evil.status_code == 403
    assert client.post("/login", data={}, headers={"Origin": "https://evil"}).status_code == 403
    # Our own pages post with "Origin: null" under Referrer-Policy: no-referrer.
    own = client.post("/api/displays", json={"name": "x"}, headers={"Origin": "null"})
    assert own.status_code == 201


def test_logout_ends_the_session(client: TestClient) -> None:
    client.post("/login", data={"username": "olga", "password": PASSWORD})
    cookie = client.cookies[COOKIE_NAME]
    answer = client.post("/logout")
    assert answer.status_code == 303 and "Max-Age=0" in answer.headers["set-cookie"]
    client.cookies.set(COOKIE_NAME, cookie)  # even a copy kept by someone else
    assert client.get("/api/accounts").status_code == 401


def test_display_token_becomes_a_cookie_and_leaves_the_url(client: TestClient, auth: Auth) -> None:
    token = auth.displays.add("wall")
    answer = client.get(f"/?display={token}")
    assert answer.status_code == 303 and answer.headers["location"] == "/?kiosk=1"
    assert token not in answer.text and token not in answer.headers["location"]
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=" in cookie
    page = client.get("/?kiosk=1")
    assert page.json()["user"] == {"name": "wall", "role": "display"}
    assert client.get("/?display=wrong").headers["location"] == "/login"
    settings = client.get(f"/?view=trunks&display={token}&rotate=30&kiosk=0")
    assert settings.headers["location"] == "/?kiosk=1&view=trunks&rotate=30"


def test_display_token_works_as_bearer_for_scripts(client: TestClient, auth: Auth) -> None:
    token = auth.displays.add("wall")
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/accounts", headers=bearer).json()["user"]["role"] == "display"
    auth.displays.revoke("wall")
    assert client.get("/api/accounts", headers=bearer).status_code == 401


@pytest.mark.parametrize(
    ("role", "method", "path", "allowed"),
    [
        ("display", "GET", "/", True),
        ("display", "WEBSOCKET", "/ws", True),
        ("display", "GET", "/api/accounts", True),
        ("display", "GET", "/api/trunks", True),
        ("display", "GET", "/api/queue", True),
        ("display", "GET", "/api/accounts/alice", False),  # details carry IPs
        ("display", "GET", "/api/queue/m1", False),
        ("display", "DELETE", "/api/queue/m1", False),
        ("display", "POST", "/api/accounts", False),
        ("display", "GET", "/api/displays", False),
        ("display", "GET", "/api/new-route-nobody-reviewed", False),
        ("operator", "GET", "/api/accounts/alice", True),
        ("operator", "DELETE", "/api/queue/m1", True),
        ("operator", "GET", "/api/displays", False),
        ("operator", "DELETE", "/api/displays/wall", False),
        ("operator", "GET", "/api/users", False),
        ("admin", "GET", "/api/displays", True),
        ("admin", "GET", "/api/users", True),
        ("nobody", "GET", "/", False),
    ],
)
def test_roles(role: str, method: str, path: str, allowed: bool) -> None:
    assert role_allows(role, method, path) is allowed


def test_roles_through_the_middleware(client: TestClient, auth: Auth) -> None:
    auth.displays.add("wall")
    session(auth, client, "display", "wall")
    assert client.get("/api/accounts").status_code == 200
    assert client.get("/api/accounts/alice").status_code == 403
    assert client.get("/api/displays").status_code == 403
    session(auth, client, "user", "olga")
    assert client.get("/api/accounts/alice").status_code == 200
    assert client.get("/api/displays").status_code == 403


def test_admins_manage_displays_over_the_api(client: TestClient, auth: Auth) -> None:
    session(auth, client, "user", "alice")
    created = client.post("/api/displays", json={"name": "lobby"})
    assert created.status_code == 201
    url = created.json()["url"]
    assert url.startswith("http://testserver/?display=")
    assert created.headers["cache-control"] == "no-store"
    assert client.post("/api/displays", json={"name": "lobby"}).status_code == 409
    for bad in (b"{", b"[]", b'{"name": 5}', b'{"name": "a b"}', b"[" * 4000, b"\xff", b"x" * 9000):
        assert client.post("/api/displays", content=bad).status_code == 400
    names = [d["name"] for d in client.get("/api/displays").json()["displays"]]
    assert names == ["lobby"]
    users = client.get("/api/users").json()["users"]
    assert {u["name"] for u in users} == {"alice", "olga"}
    assert all("password" not in str(u) for u in users)
    assert client.delete("/api/displays/lobby").status_code == 204
    assert client.delete("/api/displays/lobby").status_code == 404
    assert auth.displays.for_token(url.rpartition("=")[2]) is None


def test_metrics_needs_loopback_a_token_or_a_person(auth: Auth) -> None:
    auth.config = auth.config.replace(metrics_token="m-secret-token")
    app = make_app(auth)
    with TestClient(app, client=("127.0.0.1", 40000)) as local:
        assert local.get("/metrics").status_code == 200
    with TestClient(app, client=("198.51.100.9", 40000)) as remote:
        assert remote.get("/metrics").status_code == 401
        bearer = {"Authorization": "Bearer m-secret-token"}
        assert remote.get("/metrics", headers=bearer).status_code == 200
        session(auth, remote, "user", "olga")
        assert remote.get("/metrics").status_code == 200


def test_websocket_needs_credentials_and_our_origin(client: TestClient, auth: Auth) -> None:
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect("/ws"):
            pass
    assert refused.value.code == 1008
    session(auth, client, "user", "olga")
    with client.websocket_connect("/ws", headers={"Origin": "http://testserver"}) as ws:
        assert ws.receive_json() == {"user": {"name": "olga", "role": "operator"}}
    for origin in ("https://evil.example", "http://testserver.evil.example", "null"):
        with pytest.raises(WebSocketDisconnect):
            with client.websocket_connect("/ws", headers={"Origin": origin}):
                pass


def test_allowed_origins_extend_our_own(auth: Auth) -> None:
    auth.config = auth.config.replace(allowed_origins=("https://noc.example",))
    with TestClient(make_app(auth)) as client:
        session(auth, client, "user", "olga")
        with client.websocket_connect("/ws", headers={"Origin": "https://noc.example"}) as ws:
            assert ws.receive_json()["user"]["name"] == "olga"


def test_revocation_closes_sockets_and_stops_apps_that_linger(auth: Auth) -> None:
    finished: list[str] = []

    async def stubborn(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"user": websocket.scope["user"]})
        try:
            await asyncio.Event().wait()  # never reads: only cancellation ends it
        finally:
            finished.append("cancelled")

    app = Starlette(routes=[WebSocketRoute("/ws", stubborn)])
    watcher = SessionWatcher(auth, interval=0.05, grace=0.1)
    gated = SecurityMiddleware(app, auth, watcher)
    auth.displays.add("wall")
    with TestClient(gated) as client:
        client.cookies.set(COOKIE_NAME, auth.sessions.start("display", "wall"))
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json()["user"]["role"] == "display"
            assert auth.displays.revoke("wall")
            assert ws.receive() == {
                "type": "websocket.close",
                "code": 1008,
                "reason": "credentials revoked or expired",
            }
    assert finished == ["cancelled"] and watcher.closed_count == 1


def test_admin_page_adds_and_revokes_displays(client: TestClient, auth: Auth) -> None:
    assert client.get("/admin").status_code == 303
    session(auth, client, "user", "olga")
    assert client.get("/admin").status_code == 403
    session(auth, client, "user", "alice")
    page = client.get("/admin")
    assert page.status_code == 200 and "No displays." in page.text and "olga" in page.text
    added = client.post("/admin/displays", data={"name": "lobby"})
    assert added.status_code == 201
    url = re.search(r'value="(http://testserver/\?display=[^"]+)"', added.text)
    assert url is not None and auth.displays.for_token(url[1].rpartition("=")[2]) is not None
    assert url[1] not in client.get("/admin").text  # shown once
    again = client.post("/admin/displays", data={"name": "lobby"})
    assert again.status_code == 400 and "exists" in again.text
    hostile = client.post("/admin/displays", data={"name": "<b>x</b>"})
    assert hostile.status_code == 400 and "<b>x</b>" not in hostile.text
    asked = client.post("/admin/displays/lobby/revoke")  # first the page asks
    assert asked.status_code == 200 and "Revoke display <strong>lobby</strong>?" in asked.text
    assert [d["name"] for d in auth.displays.rows()] == ["lobby"]
    revoked = client.post("/admin/displays/lobby/revoke", data={"confirm": "1"})
    assert revoked.status_code == 303 and revoked.headers["location"] == "/admin?revoked=lobby"
    assert auth.displays.rows() == []
    assert "Display lobby revoked" in client.get("/admin?revoked=lobby").text
    # The one script (the Copy button) is a file the CSP allows; nothing inline.
    assert re.findall(r"<script[^>]*>", page.text) == [
        '<script type="module" src="/static/js/admin.js"></script>'[:-9]
    ]


@pytest.mark.asyncio
async def test_login_floods_queue_for_two_password_checks_at_a_time(
    auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    running, peak = 0, 0
    lock = threading.Lock()
    real = auth.check_login

    def counting(*args: Any) -> Any:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            return real(*args)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(auth, "check_login", counting)
    transport = httpx.ASGITransport(app=make_app(auth))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        form = {"username": "olga", "password": PASSWORD}
        answers = await asyncio.gather(*(client.post("/login", data=form) for _ in range(6)))
    assert [a.status_code for a in answers] == [303] * 6
    assert peak <= 2


def test_a_store_without_users_says_how_to_add_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store.migrate(str(tmp_path / "empty.db"))
    empty = Auth(Config(db=str(tmp_path / "empty.db")))
    with caplog.at_level("WARNING", logger="rtm.security"):
        SecurityMiddleware(make_app(empty), empty)
    assert "rtm user add NAME --role admin" in caplog.text

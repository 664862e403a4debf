"""Access control with rtm's state in a real PostgreSQL (RTM_DB=postgresql://…): the CLI,
sign-in on a real `rtm serve`, wall displays, and one session honoured by two rtm processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Origin

from server import database, store
from server.auth import Auth
from server.auth.identity import AuthError
from server.auth.sessions import COOKIE_NAME
from server.config import Config

from ..conftest import StartRtm
from ..credentials import ADMIN, ADMIN_PASSWORD
from ..live_server import UNIT, RtmServer
from ..services import PostgresServer

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "a-long-enough-password"


@pytest.fixture(autouse=True)
def _no_pooled_connections() -> Iterator[None]:
    yield
    database.close_pools()  # before the test's PostgreSQL goes


def rtm(url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`rtm ARGS` with RTM_DB=url, as an operator at a shell."""
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "RTM_DB": url},
        cwd=REPO,
        timeout=60 * UNIT,
    )


def sign_in(server: RtmServer, name: str, password: str) -> httpx.Response:
    form = {"username": name, "password": password}
    return httpx.post(server.url + "/login", data=form, timeout=10 * UNIT)


def get(server: RtmServer, path: str, cookie: str) -> httpx.Response:
    headers = {"Cookie": f"{COOKIE_NAME}={cookie}", "Accept": "application/json"}
    return httpx.get(server.url + path, headers=headers, timeout=10 * UNIT)


def test_the_auth_layer_keeps_its_promises_on_postgresql(postgres: PostgresServer) -> None:
    url = postgres.database("rtm")
    store.migrate(url)
    auth = Auth(Config(db=url, login_max_failures=3))
    # Two first-run setups racing: exactly one admin.
    results: list[bool] = []
    racers = [
        threading.Thread(target=lambda n=n: results.append(auth.users.add_first_admin(n, PASSWORD)))
        for n in ("first", "second")
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert sorted(results) == [False, True]
    auth.users.add("ops", "operator", PASSWORD)
    with pytest.raises(AuthError, match="exists"):
        auth.users.add("ops", "operator", PASSWORD)
    assert auth.users.verify("ops", PASSWORD) is not None
    assert auth.users.verify("ops", "not-the-password") is None
    cookie = auth.sessions.start("user", "ops")
    assert auth.sessions.principal_for_cookie(cookie) is not None
    auth.users.set_password("ops", "another-long-password")  # ends their sessions
    assert auth.sessions.principal_for_cookie(cookie) is None
    for _ in range(3):
        outcome = auth.lockout.attempt("ops", "192.0.2.7", lambda: None)
    assert outcome.locked
    assert auth.lockout.attempt("ops", "192.0.2.7", lambda: None).failures == 0  # still locked
    token = auth.displays.add("wall")
    assert auth.displays.for_token(token) is not None
    assert auth.displays.revoke("wall") and auth.displays.for_token(token) is None


def test_a_user_the_cli_adds_signs_in_on_rtm_serve(
    postgres: PostgresServer, start_rtm: StartRtm
) -> None:
    url = postgres.database("rtm")
    added = rtm(url, "user", "add", "ops", "--role", "operator", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert "ops" in rtm(url, "user", "list").stdout
    server = start_rtm(env={"RTM_DB": url}, users=False)
    assert sign_in(server, "ops", "mistyped-password").status_code == 401
    login = sign_in(server, "ops", PASSWORD)
    assert login.status_code == 303
    me = get(server, "/api/me", login.cookies[COOKIE_NAME])
    assert me.status_code == 200 and me.json()["name"] == "ops"


@pytest.mark.asyncio
async def test_a_display_the_cli_adds_watches_the_live_tables(
    postgres: PostgresServer, start_rtm: StartRtm
) -> None:
    url = postgres.database("rtm")
    server = start_rtm(env={"RTM_DB": url})
    added = rtm(url, "display", "add", "wall")
    assert added.returncode == 0, added.stderr
    kiosk = added.stdout.strip()
    assert kiosk.startswith(server.url + "/?display=")  # where that rtm serve listens
    async with httpx.AsyncClient(timeout=10 * UNIT) as client:
        answer = await client.get(kiosk)
    assert answer.status_code == 303
    cookie = answer.cookies[COOKIE_NAME]
    headers = {"Cookie": f"{COOKIE_NAME}={cookie}"}
    origin = Origin(server.url)
    async with connect(
        server.ws_url, additional_headers=headers, origin=origin, open_timeout=10 * UNIT
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "hello"


def test_two_rtms_on_one_postgresql_honour_one_session(
    postgres: PostgresServer, start_rtm: StartRtm
) -> None:
    url = postgres.database("rtm")
    one = start_rtm(env={"RTM_DB": url})
    other = start_rtm(env={"RTM_DB": url}, users=False)
    login = sign_in(one, ADMIN, ADMIN_PASSWORD)
    assert login.status_code == 303
    cookie = login.cookies[COOKIE_NAME]
    assert get(other, "/api/me", cookie).json()["name"] == ADMIN
    # Signing out on one ends the session on the other.
    headers = {"Cookie": f"{COOKIE_NAME}={cookie}", "Origin": one.url}
    assert httpx.post(one.url + "/logout", headers=headers).status_code == 303
    assert get(other, "/api/me", cookie).status_code in (401, 303)


def test_unknown_database_schemes_fail_naming_rtm_db(tmp_path: Path) -> None:
    for args in (["user", "list"], ["display", "list"], ["demo"]):
        done = subprocess.run(
            [sys.executable, "-m", "server.cli", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "RTM_DB": "mysql://rtm@db/rtm", "PYTHONPATH": str(REPO)},
            cwd=tmp_path,
            timeout=60 * UNIT,
        )
        assert done.returncode != 0 and "RTM_DB: unknown scheme mysql://" in done.stderr
        assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # no folder named "mysql:"


def test_postgresql_down_answers_503_and_rtm_recovers_by_itself(
    postgres: PostgresServer, start_rtm: StartRtm
) -> None:
    url = postgres.database("rtm")
    server = start_rtm(env={"RTM_DB": url})
    cookie = server.cookies[COOKIE_NAME]
    for _ in range(3):  # a few pooled connections to outlive the restart
        assert get(server, "/api/me", cookie).status_code == 200
    postgres.stop()
    down = get(server, "/api/me", cookie)
    assert down.status_code == 503 and "store is unavailable" in down.json()["error"]
    postgres.start()
    # The very first request after the restart is answered: dropped connections are not reused.
    assert get(server, "/api/me", cookie).status_code == 200
    assert server.log().count("credential lookups fail") == 1

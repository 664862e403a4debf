"""First start on a real rtm: the setup link printed once, the first admin, and nothing after."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from pathlib import Path

import httpx
import pytest

from server import store
from server.auth import Auth
from server.auth.sessions import COOKIE_NAME
from server.auth.setup import base_url
from server.config import Config

from ..conftest import StartRtm
from ..live_server import UNIT, RtmServer

LINE = re.compile(r"^rtm: no users yet - create the first admin at (\S+) \(valid until", re.M)
PASSWORD = "first-admin-password"


def setup_link(server: RtmServer) -> str:
    """The setup URL from the server's console line (flushed before it began to serve)."""
    found = LINE.search(server.log())
    assert found, f"no setup line in: {server.log()[-2000:]}"
    return found.group(1)


def new_admin(token: str, name: str = "root", password2: str = PASSWORD) -> dict[str, str]:
    return {"token": token, "username": name, "password": PASSWORD, "password2": password2}


def post(server: RtmServer, form: dict[str, str], cookie: str = "") -> httpx.Response:
    cookies = {COOKIE_NAME: cookie} if cookie else {}
    return httpx.post(server.url + "/setup", data=form, cookies=cookies, timeout=10 * UNIT)


def users(server: RtmServer) -> list[str]:
    return [str(user["name"]) for user in Auth(Config(db=server.db)).users.rows()]


def test_first_start_link_creates_the_admin_once(start_rtm: StartRtm) -> None:
    server = start_rtm(users=False)
    link = setup_link(server)
    assert link.startswith(server.url + "/setup?token=")
    token = link.partition("?token=")[2]
    assert len(token) >= 43  # 256 bits of base64url; at least 128 were asked for
    answers = [form := httpx.get(link, timeout=10 * UNIT)]
    assert form.status_code == 200
    for field in ('name="username"', 'name="password"', 'name="password2"', f'value="{token}"'):
        assert field in form.text

    answers.append(mistyped := post(server, new_admin(token, password2=PASSWORD + "x")))
    assert mistyped.status_code == 400 and "differ" in mistyped.text
    short_password = {**new_admin(token), "password": "short", "password2": "short"}
    answers.append(short := post(server, short_password))
    assert short.status_code == 400 and users(server) == []

    answers.append(created := post(server, new_admin(token)))
    assert created.status_code == 303 and created.headers["location"] == "/"
    cookie = created.cookies[COOKIE_NAME]
    accounts = httpx.get(server.url + "/api/accounts", cookies={COOKIE_NAME: cookie})
    assert accounts.status_code == 200
    me = httpx.get(server.url + "/api/me", cookies={COOKIE_NAME: cookie}).json()
    assert me == {"name": "root", "role": "admin"}

    # The token is dead: anonymous callers are sent to sign in, signed-in ones get 404.
    answers.append(again := post(server, new_admin(token, name="mallory")))
    assert again.status_code == 303 and again.headers["location"].startswith("/login")
    answers.append(looked := httpx.get(link, timeout=10 * UNIT))
    assert looked.status_code == 303 and looked.headers["location"].startswith("/login")
    answers.append(signed_in := httpx.get(link, cookies={COOKIE_NAME: cookie}))
    assert signed_in.status_code == 404 and token not in signed_in.text
    answers.append(post(server, new_admin(token, name="mallory"), cookie))
    assert answers[-1].status_code == 404
    assert users(server) == ["root"]

    for answer in answers:
        assert token not in str(answer.headers), answer.headers
    log = server.log()
    assert log.count(token) == 1, "the token appears only on the setup line"
    assert PASSWORD not in log and cookie not in log and "GET /setup" not in log


def test_wrong_or_missing_token_is_refused_and_locks_like_a_login(start_rtm: StartRtm) -> None:
    env = {"RTM_LOGIN_MAX_FAILURES": "3", "RTM_LOGIN_DELAY": "0.05"}
    server = start_rtm(env=env, users=False)
    link = setup_link(server)
    token = link.partition("?token=")[2]
    missing = httpx.get(server.url + "/setup", timeout=10 * UNIT)
    assert missing.status_code == 403 and "not valid" in missing.text
    assert 'name="password"' not in missing.text
    wrong = post(server, new_admin("A" * len(token)))
    assert wrong.status_code == 403 and users(server) == []
    locked = httpx.get(server.url + "/setup?token=guess", timeout=10 * UNIT)
    assert locked.status_code == 429
    # While locked even the right token is refused, as the right password is at /login.
    assert httpx.get(link, timeout=10 * UNIT).status_code == 429
    assert post(server, new_admin(token)).status_code == 429 and users(server) == []
    with sqlite3.connect(server.db) as db:
        keys = [row[0] for row in db.execute("SELECT key FROM login_attempts")]
    assert keys == ["user:/setup"]  # loopback is never locked as an address


@pytest.mark.asyncio
async def test_two_setups_at_once_create_one_admin(start_rtm: StartRtm) -> None:
    server = start_rtm(users=False)
    token = setup_link(server).partition("?token=")[2]
    names = ["ann", "bob", "cid", "dee"]
    async with httpx.AsyncClient(base_url=server.url, timeout=20 * UNIT) as client:
        answers = await asyncio.gather(
            *(client.post("/setup", data=new_admin(token, name)) for name in names)
        )
    winners = [n for n, a in zip(names, answers, strict=True) if a.headers.get("location") == "/"]
    assert len(winners) == 1, [a.status_code for a in answers]
    assert users(server) == winners
    assert sum(COOKIE_NAME in a.headers.get("set-cookie", "") for a in answers) == 1


def test_no_setup_link_once_a_user_exists(rtm_server: RtmServer) -> None:
    assert "/setup?token=" not in rtm_server.log()
    anonymous = httpx.get(rtm_server.url + "/setup?token=spent", timeout=10 * UNIT)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=%2Fsetup"  # the token left behind
    assert rtm_server.get("/setup").status_code == 404
    answer = post(rtm_server, new_admin("x", name="mallory"), rtm_server.cookies[COOKIE_NAME])
    assert answer.status_code == 404 and users(rtm_server) == ["admin"]


def test_racing_stores_create_one_first_admin(tmp_path: Path) -> None:
    # Two processes (rtm serve and `rtm user add`, say) share only the store: the check and
    # the insert are one transaction there.
    db = str(tmp_path / "rtm.db")
    store.migrate(db)
    auths = [Auth(Config(db=db)) for _ in range(3)]
    results: list[bool] = []
    threads = [
        threading.Thread(
            target=lambda a=a, n=n: results.append(a.users.add_first_admin(n, PASSWORD))
        )
        for n, a in zip(("ann", "bob", "cid"), auths, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30 * UNIT)
    assert sorted(results) == [False, False, True]
    assert len(auths[0].users.rows()) == 1 and auths[0].users.rows()[0]["role"] == "admin"


@pytest.mark.parametrize(
    ("host", "tls", "expected"),
    [("127.0.0.1", False, "http://127.0.0.1:8080"), ("::1", True, "https://[::1]:8080"),
     ("rtm.example", True, "https://rtm.example:8080")],
)  # fmt: skip
def test_the_link_names_the_real_address(host: str, tls: bool, expected: str) -> None:
    config = Config(host=host, tls_cert="c.pem" if tls else "", tls_key="k.pem" if tls else "")
    assert base_url(config) == expected
    assert "0.0.0.0" not in base_url(Config(host="0.0.0.0"))


def test_login_page_points_to_the_first_start_until_a_user_exists(start_rtm: StartRtm) -> None:
    fresh = start_rtm(users=False)
    assert "one-time setup link" in httpx.get(fresh.url + "/login").text
    configured = start_rtm()
    assert "one-time setup link" not in httpx.get(configured.url + "/login").text

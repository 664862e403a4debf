"""Access control on a real rtm (subprocess uvicorn): upgrades, revocation, restarts, logs."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from server import store
from server.auth import Auth
from server.auth.sessions import COOKIE_NAME
from server.config import Config

from ..conftest import StartRtm
from ..credentials import ADMIN, ADMIN_PASSWORD
from ..live_server import UNIT, RtmServer
from ..mirror import close_code

pytestmark = pytest.mark.asyncio
REPO = Path(__file__).resolve().parents[2]
WRONG = "MISTYPED-CANARY-PASSWORD"


def rtm_command(server: RtmServer, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run `rtm ARGS` against the server's store, as an operator at a shell would."""
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "RTM_DB": server.db},
        cwd=REPO,
        timeout=60 * UNIT,
        check=True,
    )


async def fetch(method: str, url: str, cookie: str = "", **kwargs: Any) -> httpx.Response:
    """One request from a fresh client, carrying `cookie` as rtm's session cookie if given."""
    headers = kwargs.pop("headers", {})
    if cookie:
        headers["Cookie"] = f"{COOKIE_NAME}={cookie}"
    async with httpx.AsyncClient(timeout=10 * UNIT, verify=kwargs.pop("verify", True)) as client:
        return await client.request(method, url, headers=headers, **kwargs)


async def display_cookie(server: RtmServer, url_with_token: str) -> str:
    """Open the kiosk URL like a wall's browser; return the session cookie it is given."""
    answer = await fetch("GET", url_with_token)
    assert answer.status_code == 303 and answer.headers["location"] == "/?kiosk=1"
    return answer.cookies[COOKIE_NAME]


async def test_upgrade_refused_with_403_without_credentials_or_from_another_site(
    rtm_server: RtmServer,
) -> None:
    for headers, origin in (
        ({}, rtm_server.url),
        ({"Cookie": f"{COOKIE_NAME}=forged.value"}, rtm_server.url),
        ({"Cookie": f"{COOKIE_NAME}={rtm_server.cookies[COOKIE_NAME]}"}, "https://evil.example"),
    ):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(rtm_server.ws_url, additional_headers=headers, origin=origin):
                pass
        assert refused.value.response.status_code == 403
    async with rtm_server.ws() as ws:
        hello = json.loads(await ws.recv())
    assert hello["type"] == "hello" and hello["user"] == {"name": ADMIN, "role": "admin"}
    assert rtm_server.get("/healthz").status_code == 200


async def test_revoked_display_is_closed_within_seconds(rtm_server: RtmServer) -> None:
    url = rtm_command(rtm_server, "display", "add", "lobby", "--base-url", rtm_server.url)
    cookie = await display_cookie(rtm_server, url.stdout.strip())
    headers = {"Cookie": f"{COOKIE_NAME}={cookie}"}
    async with connect(rtm_server.ws_url, additional_headers=headers, origin=rtm_server.url) as ws:
        hello = json.loads(await ws.recv())
        assert hello["user"] == {"name": "lobby", "role": "display"}
        await ws.send(json.dumps({"type": "resume", "epoch": None, "seq": {}}))
        rtm_command(rtm_server, "display", "revoke", "lobby")
        revoked_at = time.monotonic()
        code = await close_code(ws)
        took = time.monotonic() - revoked_at
    assert code == 1008
    assert took < 5 * UNIT, f"closed {took:.1f} s after revocation"
    answer = await fetch("GET", rtm_server.url + "/api/accounts", cookie)
    assert answer.status_code == 401
    assert rtm_server.get("/healthz").status_code == 200


async def test_deleted_user_socket_is_closed(rtm_server: RtmServer) -> None:
    auth = Auth(Config(db=rtm_server.db))
    auth.users.add("olga", "operator", ADMIN_PASSWORD)
    headers = {"Cookie": f"{COOKIE_NAME}={auth.sessions.start('user', 'olga')}"}
    async with connect(rtm_server.ws_url, additional_headers=headers, origin=rtm_server.url) as ws:
        await ws.recv()
        rtm_command(rtm_server, "user", "del", "olga")
        assert await close_code(ws) == 1008


async def test_restart_logs_nobody_out(start_rtm: StartRtm) -> None:
    server = start_rtm()
    url = rtm_command(server, "display", "add", "wall", "--base-url", server.url).stdout.strip()
    wall = await display_cookie(server, url)
    server.stop()
    server.start()
    assert server.get("/api/accounts").status_code == 200
    walls = await fetch("GET", server.url + "/api/accounts", wall)
    assert walls.status_code == 200
    async with server.ws() as ws:
        assert json.loads(await ws.recv())["type"] == "hello"


async def test_secrets_appear_in_no_log_line(rtm_server: RtmServer) -> None:
    url = rtm_command(rtm_server, "display", "add", "wall", "--base-url", rtm_server.url)
    token = url.stdout.strip().rpartition("=")[2]
    wall = await display_cookie(rtm_server, url.stdout.strip())
    form = {"username": ADMIN, "password": ADMIN_PASSWORD}
    login = await fetch("POST", rtm_server.url + "/login", data=form)
    assert login.status_code == 303
    fresh = login.cookies[COOKIE_NAME]
    wrong = await fetch("POST", rtm_server.url + "/login", data={**form, "password": WRONG})
    assert wrong.status_code == 401
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await fetch("GET", rtm_server.url + "/api/queue", headers=bearer)).status_code == 200
    async with rtm_server.ws() as ws:
        await ws.recv()
    with pytest.raises(InvalidStatus):
        async with connect(f"{rtm_server.ws_url}?display={token}", origin=rtm_server.url):
            pass
    log = rtm_server.log()
    secrets_used = {
        "display token": token,
        "display session": wall,
        "admin session": rtm_server.cookies[COOKIE_NAME],
        "fresh session": fresh,
        "password": ADMIN_PASSWORD,
        "mistyped password": WRONG,
    }
    for what, secret in secrets_used.items():
        assert secret not in log, f"{what} in the log"
        assert secret.split(".")[0] not in log, f"{what} (unsigned part) in the log"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A throw-away self-signed certificate for 127.0.0.1."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60 * UNIT,
    )  # fmt: skip
    return cert, key


async def test_tls_serves_https_and_wss_with_hsts_and_secure_cookies(tmp_path: Path) -> None:
    import ssl

    cert, key = make_certificate(tmp_path)
    server = RtmServer(tmp_path, {"RTM_TLS_CERT": str(cert), "RTM_TLS_KEY": str(key)})
    server.url = server.url.replace("http://", "https://")
    server.ws_url = server.ws_url.replace("ws://", "wss://")
    context = ssl.create_default_context(cafile=str(cert))
    store.migrate(server.db)
    Auth(Config(db=server.db)).users.add("olga", "operator", ADMIN_PASSWORD)
    try:
        # RtmServer.start polls /healthz with httpx.get; make that poll trust our certificate.
        with mock.patch.object(httpx, "get", functools.partial(httpx.get, verify=context)):
            server.start()
        health = await fetch("GET", server.url + "/healthz", verify=context)
        assert health.headers["strict-transport-security"].startswith("max-age=")
        form = {"username": "olga", "password": ADMIN_PASSWORD}
        login = await fetch("POST", server.url + "/login", data=form, verify=context)
        assert login.status_code == 303
        assert "Secure" in login.headers["set-cookie"].split("; ")
        cookie = login.cookies[COOKIE_NAME]
        accounts = await fetch("GET", server.url + "/api/accounts", cookie, verify=context)
        assert accounts.status_code == 200
        headers = {"Cookie": f"{COOKIE_NAME}={cookie}"}
        async with connect(
            server.ws_url, ssl=context, additional_headers=headers, origin=server.url
        ) as ws:
            hello = json.loads(await ws.recv())
        assert hello["user"] == {"name": "olga", "role": "operator"}
        with pytest.raises(InvalidStatus):  # an http:// page may not open the wss:// feed
            async with connect(
                server.ws_url, ssl=context, additional_headers=headers,
                origin=server.url.replace("https://", "http://"),
            ):  # fmt: skip
                pass
    finally:
        server.stop()


async def test_forwarded_headers_from_loopback_are_not_believed(rtm_server: RtmServer) -> None:
    # uvicorn trusts X-Forwarded-* from 127.0.0.1 by default; rtm turns that off, so a
    # local client cannot pose as HTTPS or as another address unless configured.
    spoof = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    answer = await fetch("GET", rtm_server.url + "/healthz", headers=spoof)
    assert "strict-transport-security" not in answer.headers
    assert "wss://" in answer.headers["content-security-policy"]
    assert "ws://127.0.0.1" in answer.headers["content-security-policy"]


async def test_websocket_limits_follow_their_settings(start_rtm: StartRtm) -> None:
    server = start_rtm(env={"RTM_WS_MAX_FRAME": "2048", "RTM_WS_MAX_MESSAGES": "5"})
    async with server.ws(max_size=None) as ws:
        await ws.recv()
        await ws.send("x" * 1500)  # under the limit: an error message, not a close
        assert json.loads(await ws.recv())["type"] == "error"
        assert await close_code(ws, "x" * 3000) == 1009
    async with server.ws() as ws:
        await ws.recv()
        assert await close_code(ws, *["{}"] * 7) == 1008
    async with server.ws() as ws:  # and the server serves the next client as before
        assert json.loads(await ws.recv())["type"] == "hello"

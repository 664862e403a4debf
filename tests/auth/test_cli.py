"""`rtm user ...` and `rtm display ...` through the real command-line entry point."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server import cli
from server.auth import Auth
from server.config import Config

from ..live_server import UNIT, RtmServer

PASSWORD = "correct horse battery"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = str(tmp_path / "rtm.db")
    monkeypatch.setenv("RTM_DB", path)
    return path


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def rtm(monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return cli.main(list(argv))


def prompts(monkeypatch: pytest.MonkeyPatch, *answers: str) -> Iterator[str]:
    """Make stdin a terminal whose getpass prompts get `answers` in turn."""
    given = iter(answers)
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(given))
    return given


def test_user_lifecycle_with_password_from_stdin(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rtm(monkeypatch, "user", "add", "alice", "--role", "admin", stdin=PASSWORD + "\n") == 0
    auth = Auth(Config(db=db))
    assert auth.check_login("alice", PASSWORD, "192.0.2.1").principal is not None
    session = auth.sessions.start("user", "alice")
    assert rtm(monkeypatch, "user", "passwd", "alice", stdin="a new good password\n") == 0
    assert auth.sessions.principal_for_cookie(session) is None
    assert auth.check_login("alice", "a new good password", "192.0.2.1").principal is not None
    capsys.readouterr()
    assert rtm(monkeypatch, "user", "list") == 0
    listing = capsys.readouterr().out
    assert listing.startswith("alice\tadmin\t") and "argon2" not in listing
    assert rtm(monkeypatch, "user", "del", "alice") == 0
    assert auth.users.rows() == []
    assert PASSWORD not in capsys.readouterr().out


def test_user_errors_exit_1_with_a_message(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rtm(monkeypatch, "user", "add", "bob", "--role", "operator", stdin="short\n") == 1
    assert "8 to 1024" in capsys.readouterr().err
    assert rtm(monkeypatch, "user", "passwd", "nobody", stdin=PASSWORD + "\n") == 1
    assert rtm(monkeypatch, "user", "del", "nobody") == 1
    assert "no user 'nobody'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # no way to put a password where `ps` shows it
        rtm(monkeypatch, "user", "add", "bob", "--role", "operator", "--password", PASSWORD)
    with pytest.raises(SystemExit):
        rtm(monkeypatch, "user", "add", "bob", "--role", "root", stdin=PASSWORD + "\n")


def test_terminal_asks_twice_and_refuses_a_mismatch(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts(monkeypatch, PASSWORD, PASSWORD + "typo")
    assert cli.main(["user", "add", "carol", "--role", "operator"]) == 1
    assert "differ" in capsys.readouterr().err
    prompts(monkeypatch, PASSWORD, PASSWORD)
    assert cli.main(["user", "add", "carol", "--role", "operator"]) == 0
    assert Auth(Config(db=db)).check_login("carol", PASSWORD, "192.0.2.1").principal


def test_display_lifecycle(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rtm(monkeypatch, "display", "add", "lobby", "--base-url", "https://rtm.example/") == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("https://rtm.example/?display=")
    auth = Auth(Config(db=db))
    assert auth.displays.for_token(url.rpartition("=")[2]) is not None
    assert rtm(monkeypatch, "display", "add", "lobby") == 1
    capsys.readouterr()
    assert rtm(monkeypatch, "display", "list") == 0
    assert capsys.readouterr().out.startswith("lobby\tcreated ")
    assert rtm(monkeypatch, "display", "revoke", "lobby") == 0
    assert auth.displays.for_token(url.rpartition("=")[2]) is None
    assert rtm(monkeypatch, "display", "revoke", "lobby") == 1


def display_add(db: str, name: str, *flags: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`rtm display add` as an operator runs it: its own process, without rtm serve's env."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RTM_")}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "display", "add", name, "--db", db, *flags],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30 * UNIT,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_display_add_prints_the_url_of_the_running_server(rtm_server: RtmServer) -> None:
    # rtm serve runs on a free port set only in its own environment; the CLI used to print
    # a kiosk URL on 8080 there. The URL it prints now works: open it, and the wall is in.
    added = display_add(rtm_server.db, "lobby")
    assert added.returncode == 0, added.stderr
    url = added.stdout.strip()
    assert url.startswith(f"{rtm_server.url}/?display=")
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        page = browser.get(url)
        assert page.status_code == 200 and page.url.params.get("kiosk") == "1"
        assert browser.get(f"{rtm_server.url}/api/me").json()["role"] == "display"


def test_public_url_wins_and_a_store_never_served_says_so(
    rtm_server: RtmServer, tmp_path: Path
) -> None:
    proxied = display_add(rtm_server.db, "hall", RTM_PUBLIC_URL="https://noc.example/rtm/")
    assert proxied.returncode == 0, proxied.stderr
    assert proxied.stdout.startswith("https://noc.example/rtm/?display=")
    fresh = str(tmp_path / "fresh.db")
    unserved = display_add(fresh, "wall", RTM_PORT="9123")
    assert unserved.returncode == 0, unserved.stderr
    assert unserved.stdout.startswith("http://127.0.0.1:9123/?display=")
    assert "no rtm serve has run on this store yet" in unserved.stderr


def test_base_url_wins_over_the_served_address_and_public_url(rtm_server: RtmServer) -> None:
    # The store knows where rtm serve listens, and RTM_PUBLIC_URL is set: an operator who
    # names the address walls use (another name for the host, a tunnel) still gets it.
    given = display_add(
        rtm_server.db, "atrium", "--base-url", "https://wall.example:8443/",
        RTM_PUBLIC_URL="https://noc.example/rtm",
    )  # fmt: skip
    assert given.returncode == 0, given.stderr
    assert given.stdout.startswith("https://wall.example:8443/?display=")
    assert given.stderr == ""


def test_a_serve_that_cannot_listen_records_nothing(rtm_server: RtmServer) -> None:
    # A second rtm serve on the same store, on the port the first already holds: it fails
    # with a message and the store still names the server that does run.
    port = rtm_server.url.rsplit(":", 1)[1]
    second = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--db", rtm_server.db, "--port", port],
        env={k: v for k, v in os.environ.items() if not k.startswith("RTM_")},
        capture_output=True, text=True, timeout=30 * UNIT, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert second.returncode == 2
    assert f"rtm: cannot listen on 127.0.0.1:{port}" in second.stderr
    added = display_add(rtm_server.db, "foyer")
    assert added.stdout.startswith(f"{rtm_server.url}/?display="), added.stdout

"""`rtm user ...` and `rtm display ...` through the real command-line entry point."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from server import cli
from server.auth import Auth
from server.config import Config

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

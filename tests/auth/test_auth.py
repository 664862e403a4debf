"""server/auth/ against a real store file: users, displays, sessions, lockout."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from server import store
from server.auth import Auth
from server.auth.identity import AuthError
from server.config import Config

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(tmp_path: Path, clock: Clock) -> Auth:
    config = Config(db=str(tmp_path / "rtm.db"), login_max_failures=3, login_lock=900)
    store.migrate(config.db)
    auth = Auth(config, clock=clock)
    auth.users.add("alice", "admin", PASSWORD)
    return auth


def test_passwords_are_stored_only_as_argon2_hashes(auth: Auth) -> None:
    raw = Path(auth.config.db).read_bytes() + _wal(auth)
    assert PASSWORD.encode() not in raw
    assert b"$argon2id$" in raw


def _wal(auth: Auth) -> bytes:
    wal = Path(auth.config.db + "-wal")
    return wal.read_bytes() if wal.exists() else b""


def test_user_management_rejects_bad_input(auth: Auth) -> None:
    with pytest.raises(AuthError, match="exists"):
        auth.users.add("alice", "operator", PASSWORD)
    with pytest.raises(AuthError, match="role"):
        auth.users.add("bob", "root", PASSWORD)
    with pytest.raises(AuthError, match="characters"):
        auth.users.add("bob", "operator", "short")
    for bad in ("", "-x", "a b", "<script>", "x" * 65, "é"):
        with pytest.raises(AuthError, match="names"):
            auth.users.add(bad, "operator", PASSWORD)
    with pytest.raises(AuthError, match="no user"):
        auth.users.set_password("nobody", PASSWORD)
    with pytest.raises(AuthError, match="no user"):
        auth.users.delete("nobody")
    assert [u["name"] for u in auth.users.rows()] == ["alice"]


def test_login_succeeds_and_the_session_cookie_names_the_user(auth: Auth) -> None:
    outcome = auth.check_login("alice", PASSWORD, "10.0.0.1")
    assert outcome.principal is not None and outcome.principal.role == "admin"
    cookie = auth.sessions.start("user", "alice")
    principal = auth.sessions.principal_for_cookie(cookie)
    assert principal is not None and principal.as_dict() == {"name": "alice", "role": "admin"}


def test_unknown_user_and_wrong_password_look_the_same(auth: Auth) -> None:
    wrong = auth.check_login("alice", "wrong password", "10.0.0.1")
    unknown = auth.check_login("mallory", "wrong password", "10.0.0.2")
    assert (wrong.principal, wrong.locked, wrong.failures) == (None, False, 1)
    assert (unknown.principal, unknown.locked, unknown.failures) == (None, False, 1)


def test_failures_lock_the_user_even_for_the_right_password(auth: Auth, clock: Clock) -> None:
    outcomes = [auth.check_login("alice", "guess", f"10.0.0.{i}") for i in range(3)]
    assert [o.locked for o in outcomes] == [False, False, True]
    assert auth.check_login("alice", PASSWORD, "10.9.9.9").locked
    assert auth.check_login("ALICE", PASSWORD, "10.9.9.9").locked  # no case bypass
    clock.now += 901
    assert auth.check_login("alice", PASSWORD, "10.9.9.9").principal is not None


def test_failures_lock_the_address_across_user_names(auth: Auth) -> None:
    for name in ("u1", "u2", "u3"):
        auth.check_login(name, "guess", "192.0.2.7")
    assert auth.check_login("alice", PASSWORD, "192.0.2.7").locked
    assert auth.check_login("alice", PASSWORD, "192.0.2.8").principal is not None


def test_success_resets_the_user_counter(auth: Auth) -> None:
    auth.check_login("alice", "guess", "10.0.0.1")
    auth.check_login("alice", "guess", "10.0.0.2")
    assert auth.check_login("alice", PASSWORD, "10.0.0.3").principal is not None
    assert not auth.check_login("alice", "guess", "10.0.0.4").locked
    assert not auth.check_login("alice", "guess", "10.0.0.5").locked


def test_tampered_or_foreign_cookies_are_refused(auth: Auth, tmp_path: Path) -> None:
    cookie = auth.sessions.start("user", "alice")
    payload, _, signature = cookie.rpartition(".")
    flipped = payload[:5] + ("A" if payload[5] != "A" else "B") + payload[6:]
    assert auth.sessions.principal_for_cookie(f"{flipped}.{signature}") is None
    assert auth.sessions.principal_for_cookie(cookie + "x") is None
    assert auth.sessions.principal_for_cookie("") is None
    assert auth.sessions.principal_for_cookie("x" * 10_000) is None
    store.migrate(str(tmp_path / "other.db"))
    other = Auth(Config(db=str(tmp_path / "other.db")))
    assert other.sessions.principal_for_cookie(cookie) is None  # another store's key


def test_sessions_die_when_idle_or_too_old(auth: Auth, clock: Clock) -> None:
    config = auth.config.replace(session_idle=100, session_max=250)
    auth = Auth(config, clock=clock)
    idle = auth.sessions.start("user", "alice")
    busy = auth.sessions.start("user", "alice")
    for _ in range(4):
        clock.now += 60
        assert auth.sessions.principal_for_cookie(busy) is not None
    assert auth.sessions.principal_for_cookie(idle) is None
    clock.now += 60  # 300 s since login, never idle for 100 s
    assert auth.sessions.principal_for_cookie(busy) is None


def test_signing_key_and_sessions_survive_a_restart(auth: Auth) -> None:
    cookie = auth.sessions.start("user", "alice")
    again = Auth(auth.config, clock=auth.clock)
    assert again.sessions.principal_for_cookie(cookie) is not None


def test_logout_password_change_and_deletion_end_sessions(auth: Auth) -> None:
    one, two, three = (auth.sessions.start("user", "alice") for _ in range(3))
    auth.sessions.end(one)
    assert auth.sessions.principal_for_cookie(one) is None
    assert auth.sessions.principal_for_cookie(two) is not None
    auth.users.set_password("alice", "another good password")
    assert auth.sessions.principal_for_cookie(two) is None
    three = auth.sessions.start("user", "alice")
    auth.users.delete("alice")
    assert auth.sessions.principal_for_cookie(three) is None


def test_display_tokens_are_hashed_and_revocable(auth: Auth, clock: Clock) -> None:
    token = auth.displays.add("wall-1")
    assert len(token) >= 40
    assert token.encode() not in Path(auth.config.db).read_bytes() + _wal(auth)
    display = auth.displays.for_token(token)
    assert display is not None and display.as_dict() == {"name": "wall-1", "role": "display"}
    assert auth.displays.for_token(token + "x") is None
    assert auth.displays.for_token("") is None
    cookie = auth.sessions.start("display", "wall-1")
    clock.now += 365 * 24 * 3600  # displays do not expire with time
    principal = auth.sessions.principal_for_cookie(cookie)
    assert principal is not None and principal.role == "display"
    assert auth.sessions.valid_credentials([principal.credential, display.credential]) == {
        principal.credential,
        display.credential,
    }
    assert [d["name"] for d in auth.displays.rows()] == ["wall-1"]
    assert auth.displays.revoke("wall-1")
    assert not auth.displays.revoke("wall-1")
    assert auth.sessions.principal_for_cookie(cookie) is None
    assert auth.displays.for_token(token) is None
    assert auth.sessions.valid_credentials([principal.credential, display.credential]) == set()
    with pytest.raises(AuthError, match="names"):
        auth.displays.add("bad name")


def test_loopback_is_not_locked_as_an_address(auth: Auth) -> None:
    # Behind a local proxy every client is 127.0.0.1; one guesser must not lock out all.
    for name in ("u1", "u2", "u3", "u4"):
        auth.check_login(name, "guess", "127.0.0.1")
    assert auth.check_login("alice", PASSWORD, "127.0.0.1").principal is not None
    assert auth.check_login("alice", PASSWORD, "::1").principal is not None


def test_dead_sessions_are_purged_when_new_ones_start(auth: Auth, clock: Clock) -> None:
    auth.sessions.start("user", "alice")
    auth.displays.add("wall")
    auth.sessions.start("display", "wall")
    clock.now += auth.config.session_max + 1
    auth.sessions.start("user", "alice")
    assert _session_kinds(auth) == ["display", "user"]
    clock.now += 401 * 24 * 3600  # longer than any display cookie lives
    auth.sessions.start("user", "alice")
    assert _session_kinds(auth) == ["user"]


def _session_kinds(auth: Auth) -> list[str]:
    with closing(sqlite3.connect(auth.config.db)) as db:
        return [kind for (kind,) in db.execute("SELECT kind FROM sessions ORDER BY kind")]


def test_display_last_seen_follows_its_session(auth: Auth, clock: Clock) -> None:
    auth.displays.add("wall")
    cookie = auth.sessions.start("display", "wall")
    assert auth.displays.rows()[0]["last_seen"] is None
    clock.now += 120
    principal = auth.sessions.principal_for_cookie(cookie)
    assert principal is not None
    assert auth.displays.rows()[0]["last_seen"] == clock.now
    clock.now += 120  # an open WebSocket keeps it seen too
    auth.sessions.valid_credentials([principal.credential])
    assert auth.displays.rows()[0]["last_seen"] == clock.now


def test_unknown_users_cost_a_password_check_too(
    auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    real = auth.users.hasher

    class Spy:
        def verify(self, digest: str, password: str) -> bool:
            checked.append(digest)
            return real.verify(digest, password)

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

    monkeypatch.setattr(auth.users, "hasher", Spy())
    auth.check_login("nobody-here", "guess", "192.0.2.1")
    auth.check_login("alice", "guess", "192.0.2.1")
    assert len(checked) == 2 and all(d.startswith("$argon2id$") for d in checked)

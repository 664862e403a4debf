"""Who may use rtm: people with argon2-hashed passwords, wall displays with long tokens, and
the sessions both get, all kept in the store (migration 2) so a restart logs nobody out.

Secrets never sit in the store in clear: session ids and display tokens are stored as SHA-256
hashes, passwords as argon2 hashes. Every method is synchronous and short; async callers run
them in a worker thread (argon2 takes tens of milliseconds on purpose).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeSerializer

from . import store
from .addresses import is_loopback
from .config import Config

ROLES = ("admin", "operator")
DISPLAY_ROLE = "display"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
COOKIE_NAME = "rtm_session"
# Browsers cap cookie lifetime at 400 days; a display session itself never expires.
DISPLAY_COOKIE_MAX_AGE = 400 * 24 * 3600
# kind, name, created, seen, and the owner's role (user) or name (display); None if gone.
SessionRow = tuple[str, str, float, float, str | None]
# Writing `seen` on every request would turn each read into a write; a minute is precise enough.
SEEN_RESOLUTION = 60.0


class AuthError(ValueError):
    """A request the store refuses (bad name, unknown user, short password...)."""


@dataclass(frozen=True)
class Principal:
    """Who a request comes from; `credential` names what proves it (see `valid_credentials`)."""

    name: str
    role: str
    credential: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "role": self.role}


@dataclass(frozen=True)
class LoginOutcome:
    principal: Principal | None
    locked: bool
    failures: int


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise AuthError(f"{name!r}: names are 1-64 of A-Z a-z 0-9 . _ @ - (letter or digit first)")
    return name


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AuthError(f"passwords are {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    return password


class Auth:
    """Users, displays, sessions and login throttling over the store at `config.db`."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.hasher = PasswordHasher()
        store.migrate(config.db)
        self.signer = URLSafeSerializer(self._signing_key(), salt="rtm-session")

    @cached_property
    def _dummy_hash(self) -> str:
        # Verified against for unknown users so they cost as much time as known ones.
        return self.hasher.hash(secrets.token_urlsafe(16))

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        conn = store.connect(self.config.db)
        try:
            yield conn
        finally:
            conn.close()

    def _signing_key(self) -> str:
        with self._db() as db:
            # INSERT OR IGNORE then SELECT: two processes starting at once agree on one key.
            db.execute(
                "INSERT OR IGNORE INTO settings (name, value) VALUES ('session_key', ?)",
                (secrets.token_urlsafe(48),),
            )
            row = db.execute("SELECT value FROM settings WHERE name = 'session_key'").fetchone()
            return str(row[0])

    # -- users ---------------------------------------------------------------------------

    def add_user(self, name: str, role: str, password: str) -> None:
        if role not in ROLES:
            raise AuthError(f"role {role!r} is not one of {', '.join(ROLES)}")
        digest = self.hasher.hash(check_password(password))
        with self._db() as db:
            try:
                db.execute(
                    "INSERT INTO users (name, role, password_hash, created) VALUES (?, ?, ?, ?)",
                    (check_name(name), role, digest, self.clock()),
                )
            except sqlite3.IntegrityError as exc:
                raise AuthError(f"user {name!r} exists") from exc

    def add_first_admin(self, name: str, password: str) -> bool:
        """Create `name` as an admin only if the store has no user at all; False if it has.

        The check and the insert share one write transaction, so two first-run setups racing
        (two requests, or `rtm user add` at the same moment) cannot both create an admin.
        """
        check_name(name)
        digest = self.hasher.hash(check_password(password))
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            if db.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                db.execute("ROLLBACK")
                return False
            db.execute(
                "INSERT INTO users (name, role, password_hash, created) VALUES (?, 'admin', ?, ?)",
                (name, digest, self.clock()),
            )
            db.execute("COMMIT")
        return True

    def set_password(self, name: str, password: str) -> None:
        """Change a password and end every session of that user."""
        digest = self.hasher.hash(check_password(password))
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            changed = db.execute(
                "UPDATE users SET password_hash = ? WHERE name = ?", (digest, name)
            ).rowcount
            db.execute("DELETE FROM sessions WHERE kind = 'user' AND name = ?", (name,))
            db.execute("COMMIT")
        if not changed:
            raise AuthError(f"no user {name!r}")

    def delete_user(self, name: str) -> None:
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            deleted = db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount
            db.execute("DELETE FROM sessions WHERE kind = 'user' AND name = ?", (name,))
            db.execute("COMMIT")
        if not deleted:
            raise AuthError(f"no user {name!r}")

    def list_users(self) -> list[dict[str, object]]:
        with self._db() as db:
            rows = db.execute("SELECT name, role, created FROM users ORDER BY name").fetchall()
        return [{"name": n, "role": r, "created": c} for n, r, c in rows]

    # -- displays ------------------------------------------------------------------------

    def add_display(self, name: str) -> str:
        """Create a display; return its token (shown once, stored only hashed)."""
        token = secrets.token_urlsafe(32)
        with self._db() as db:
            try:
                db.execute(
                    "INSERT INTO displays (name, token_hash, created) VALUES (?, ?, ?)",
                    (check_name(name), token_hash(token), self.clock()),
                )
            except sqlite3.IntegrityError as exc:
                raise AuthError(f"display {name!r} exists") from exc
        return token

    def list_displays(self) -> list[dict[str, object]]:
        with self._db() as db:
            rows = db.execute(
                "SELECT name, created, last_seen FROM displays ORDER BY name"
            ).fetchall()
        return [{"name": n, "created": c, "last_seen": s} for n, c, s in rows]

    def revoke_display(self, name: str) -> bool:
        """Delete a display and its sessions; open WebSockets notice via valid_credentials."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            deleted = db.execute("DELETE FROM displays WHERE name = ?", (name,)).rowcount
            db.execute("DELETE FROM sessions WHERE kind = 'display' AND name = ?", (name,))
            db.execute("COMMIT")
        return bool(deleted)

    def display_for_token(self, token: str) -> Principal | None:
        if not token or len(token) > 256:
            return None
        digest = token_hash(token)
        with self._db() as db:
            row = db.execute(
                "SELECT name, last_seen FROM displays WHERE token_hash = ?", (digest,)
            ).fetchone()
            if row is None:
                return None
            now = self.clock()
            if now - (row[1] or 0) >= SEEN_RESOLUTION:
                db.execute("UPDATE displays SET last_seen = ? WHERE name = ?", (now, row[0]))
        return Principal(row[0], DISPLAY_ROLE, "d:" + digest)

    # -- logins and sessions ---------------------------------------------------------------

    def check_login(self, name: str, password: str, address: str) -> LoginOutcome:
        """Verify a login under the lockout rules; the same work for unknown and known users."""
        keys = self._attempt_keys(name, address)
        if self._locked(keys):
            return LoginOutcome(None, True, 0)
        with self._db() as db:
            row = db.execute(
                "SELECT role, password_hash FROM users WHERE name = ?", (name,)
            ).fetchone()
        role, digest = row if row else (None, self._dummy_hash)
        ok = self._verify(digest, password[:MAX_PASSWORD]) and role is not None
        if ok:
            self._clear_failures(keys)
            if self.hasher.check_needs_rehash(digest):
                self.set_password_hash(name, self.hasher.hash(password))
            return LoginOutcome(Principal(name, str(role), ""), False, 0)
        failures = self._record_failure(keys)
        return LoginOutcome(None, failures >= self.config.login_max_failures, failures)

    def check_secret(self, subject: str, address: str, matches: Callable[[], bool]) -> LoginOutcome:
        """Run `matches` (a check of some other secret, like the first-run token) under the
        lockout rules of logins, counting failures against `subject` and `address`."""
        keys = self._attempt_keys(subject, address)
        if self._locked(keys):
            return LoginOutcome(None, True, 0)
        if matches():
            self._clear_failures(keys)
            return LoginOutcome(Principal(subject, "", ""), False, 0)
        failures = self._record_failure(keys)
        return LoginOutcome(None, failures >= self.config.login_max_failures, failures)

    def set_password_hash(self, name: str, digest: str) -> None:
        with self._db() as db:
            db.execute("UPDATE users SET password_hash = ? WHERE name = ?", (digest, name))

    def _verify(self, digest: str, password: str) -> bool:
        try:
            return self.hasher.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return False

    def start_session(self, kind: str, name: str) -> str:
        """Open a session; return the signed cookie value that carries its id."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        with self._db() as db:
            # Sessions nobody can use any more go when new ones come, so the table stays small.
            db.execute(
                """DELETE FROM sessions WHERE
                   (kind = 'user' AND (created < ? OR seen < ?))
                   OR (kind = 'display' AND seen < ?)""",
                (
                    now - self.config.session_max,
                    now - self.config.session_idle,
                    now - DISPLAY_COOKIE_MAX_AGE,
                ),
            )
            db.execute(
                "INSERT INTO sessions (id_hash, kind, name, created, seen) VALUES (?, ?, ?, ?, ?)",
                (token_hash(session_id), kind, name, now, now),
            )
        return self.signer.dumps(session_id)

    def end_session(self, cookie: str) -> None:
        session_id = self._unsign(cookie)
        if session_id:
            with self._db() as db:
                db.execute("DELETE FROM sessions WHERE id_hash = ?", (token_hash(session_id),))

    def principal_for_cookie(self, cookie: str) -> Principal | None:
        """The live principal behind a session cookie; refreshes its idle clock."""
        session_id = self._unsign(cookie)
        if not session_id:
            return None
        digest = token_hash(session_id)
        now = self.clock()
        with self._db() as db:
            row = self._session_row(db, digest)
            if row is None or not self._alive(row, now):
                return None
            kind, name, _created, seen, role = row
            if now - seen >= min(SEEN_RESOLUTION, self.config.session_idle / 10):
                self._touch(db, kind, name, digest, now)
        return Principal(name, str(role) if kind == "user" else DISPLAY_ROLE, "s:" + digest)

    def valid_credentials(self, credentials: Iterable[str]) -> set[str]:
        """Which of these credentials still hold; an open WebSocket counts as activity."""
        alive: set[str] = set()
        now = self.clock()
        with self._db() as db:
            for credential in credentials:
                kind, _, digest = credential.partition(":")
                if kind == "s":
                    row = self._session_row(db, digest)
                    if row is not None and self._alive(row, now):
                        if now - row[3] >= SEEN_RESOLUTION:
                            self._touch(db, row[0], row[1], digest, now)
                        alive.add(credential)
                elif kind == "d":
                    sql = "SELECT 1 FROM displays WHERE token_hash = ?"
                    if db.execute(sql, (digest,)).fetchone():
                        alive.add(credential)
        return alive

    @staticmethod
    def _touch(db: sqlite3.Connection, kind: str, name: str, digest: str, now: float) -> None:
        db.execute("UPDATE sessions SET seen = ? WHERE id_hash = ?", (now, digest))
        if kind == "display":
            db.execute("UPDATE displays SET last_seen = ? WHERE name = ?", (now, name))

    def _unsign(self, cookie: str) -> str | None:
        if not cookie or len(cookie) > 512:
            return None
        try:
            value = self.signer.loads(cookie)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None

    @staticmethod
    def _session_row(db: sqlite3.Connection, digest: str) -> SessionRow | None:
        # The joins make a deleted user or revoked display end the session even if a
        # stray row survived.
        row: SessionRow | None = db.execute(
            """SELECT s.kind, s.name, s.created, s.seen, coalesce(u.role, d.name)
               FROM sessions s
               LEFT JOIN users u ON s.kind = 'user' AND u.name = s.name
               LEFT JOIN displays d ON s.kind = 'display' AND d.name = s.name
               WHERE s.id_hash = ?""",
            (digest,),
        ).fetchone()
        return row

    def _alive(self, row: SessionRow, now: float) -> bool:
        kind, _name, created, seen, owner = row
        if owner is None:
            return False
        if kind == "display":
            return True
        return now - created < self.config.session_max and now - seen < self.config.session_idle

    # -- throttling --------------------------------------------------------------------------

    @staticmethod
    def _attempt_keys(name: str, address: str) -> tuple[str, ...]:
        # Case-folded so "Admin" and "admin" share one counter.
        user = "user:" + name[:128].casefold()
        if is_loopback(address):
            # A local reverse proxy makes every client 127.0.0.1: locking that address would
            # let one guesser lock everybody out. Per-user locks still apply.
            return (user,)
        return (user, "addr:" + address)

    def _locked(self, keys: tuple[str, ...]) -> bool:
        with self._db() as db:
            marks = ",".join("?" * len(keys))
            row = db.execute(
                f"SELECT max(locked_until) FROM login_attempts WHERE key IN ({marks})", keys
            ).fetchone()
        return bool(row[0] and row[0] > self.clock())

    def _record_failure(self, keys: tuple[str, ...]) -> int:
        """Count a failure against each key; return the highest count."""
        now, window = self.clock(), self.config.login_lock
        worst = 0
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            # Forget old failures so the table stays as small as the attack is recent.
            db.execute(
                "DELETE FROM login_attempts WHERE first_failure < ? AND locked_until < ?",
                (now - window, now),
            )
            for key in keys:
                db.execute(
                    """INSERT INTO login_attempts (key, failures, first_failure) VALUES (?, 1, ?)
                       ON CONFLICT (key) DO UPDATE SET failures = failures + 1""",
                    (key, now),
                )
                failures = db.execute(
                    "SELECT failures FROM login_attempts WHERE key = ?", (key,)
                ).fetchone()[0]
                if failures >= self.config.login_max_failures:
                    db.execute(
                        "UPDATE login_attempts SET locked_until = ?, failures = 0, "
                        "first_failure = ? WHERE key = ?",
                        (now + window, now, key),
                    )
                worst = max(worst, failures)
            db.execute("COMMIT")
        return worst

    def _clear_failures(self, keys: tuple[str, ...]) -> None:
        # Only the user's counter: one success must not unlock an address that is guessing.
        with self._db() as db:
            db.execute(
                "DELETE FROM login_attempts WHERE key = ? AND locked_until < ?",
                (keys[0], self.clock()),
            )

"""Sessions: rows in the store (migration 2) carried by signed cookies, so a restart logs
nobody out. A person's session ends when idle (`session_idle`) or old (`session_max`); a
display's lasts until the display is revoked. Only SHA-256 hashes of session ids are stored.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.types import Scope

from ..config import Config
from ..database import Database, open_db
from .identity import DISPLAY_ROLE, Principal, token_hash

COOKIE_NAME = "rtm_session"
# Browsers cap cookie lifetime at 400 days; a display session itself never expires.
DISPLAY_COOKIE_MAX_AGE = 400 * 24 * 3600
# kind, name, created, seen, and the owner's role (user) or name (display); None if gone.
SessionRow = tuple[str, str, float, float, str | None]
# Writing `seen` on every request would turn each read into a write; a minute is precise enough.
SEEN_RESOLUTION = 60.0


def session_cookie(scope: Scope, value: str, max_age: int | None) -> str:
    """The Set-Cookie value carrying a session (`Secure` when the request came over TLS)."""
    parts = [f"{COOKIE_NAME}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if scope.get("scheme") in ("https", "wss"):
        parts.append("Secure")
    return "; ".join(parts)


class Sessions:
    """Open, end, look up and keep alive the sessions in the store at `config.db`."""

    def __init__(self, config: Config, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.signer = URLSafeSerializer(self._signing_key(), salt="rtm-session")

    def _db(self) -> Database:
        return open_db(self.config.db)

    def _signing_key(self) -> str:
        with self._db() as db:
            # Insert unless present, then read: processes starting at once agree on one key.
            db.execute(
                "INSERT INTO settings (name, value) VALUES ('session_key', ?)"
                " ON CONFLICT (name) DO NOTHING",
                (secrets.token_urlsafe(48),),
            )
            row = db.execute("SELECT value FROM settings WHERE name = 'session_key'").fetchone()
            return str(row[0])

    def start(self, kind: str, name: str) -> str:
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

    def end(self, cookie: str) -> None:
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
        """Which of these credentials (sessions or display tokens) still hold; an open
        WebSocket counts as activity."""
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
    def _touch(db: Database, kind: str, name: str, digest: str, now: float) -> None:
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
    def _session_row(db: Database, digest: str) -> SessionRow | None:
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

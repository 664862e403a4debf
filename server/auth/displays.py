"""Wall displays: named screens that sign in with a long token (stored only as its SHA-256)
instead of a password, and may only watch (roles.py)."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from ..database import Database, IntegrityError, open_db
from .identity import DISPLAY_ROLE, AuthError, Principal, check_name, token_hash
from .sessions import SEEN_RESOLUTION


class Displays:
    """The displays in the store at `db`."""

    def __init__(self, db: str, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    def _db(self) -> Database:
        return open_db(self.db)

    def add(self, name: str) -> str:
        """Create a display; return its token (shown once, stored only hashed)."""
        token = secrets.token_urlsafe(32)
        with self._db() as db:
            try:
                db.execute(
                    "INSERT INTO displays (name, token_hash, created) VALUES (?, ?, ?)",
                    (check_name(name), token_hash(token), self.clock()),
                )
            except IntegrityError as exc:
                raise AuthError(f"display {name!r} exists") from exc
        return token

    def rows(self) -> list[dict[str, object]]:
        with self._db() as db:
            rows = db.execute(
                "SELECT name, created, last_seen FROM displays ORDER BY name"
            ).fetchall()
        return [{"name": n, "created": c, "last_seen": s} for n, c, s in rows]

    def revoke(self, name: str) -> bool:
        """Delete a display and its sessions; open WebSockets notice via valid_credentials."""
        with self._db() as db, db.write():
            deleted = db.execute("DELETE FROM displays WHERE name = ?", (name,)).rowcount
            db.execute("DELETE FROM sessions WHERE kind = 'display' AND name = ?", (name,))
        return bool(deleted)

    def for_token(self, token: str) -> Principal | None:
        """The display whose token this is (noting it was seen), or None."""
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

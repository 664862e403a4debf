"""People who sign in: names, roles and argon2-hashed passwords in the store's `users` table.

argon2 takes tens of milliseconds on purpose; async callers run these methods in a thread.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..database import Database, IntegrityError, open_db
from .identity import MAX_PASSWORD, ROLES, AuthError, Principal, check_name, check_password


class Users:
    """The people in the store at `db`, and the check of their passwords."""

    def __init__(self, db: str, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock
        self.hasher = PasswordHasher()

    def _db(self) -> Database:
        return open_db(self.db)

    @cached_property
    def _dummy_hash(self) -> str:
        # Verified against for unknown users so they cost as much time as known ones.
        return self.hasher.hash(secrets.token_urlsafe(16))

    def add(self, name: str, role: str, password: str) -> None:
        if role not in ROLES:
            raise AuthError(f"role {role!r} is not one of {', '.join(ROLES)}")
        digest = self.hasher.hash(check_password(password))
        with self._db() as db:
            try:
                db.execute(
                    "INSERT INTO users (name, role, password_hash, created) VALUES (?, ?, ?, ?)",
                    (check_name(name), role, digest, self.clock()),
                )
            except IntegrityError as exc:
                raise AuthError(f"user {name!r} exists") from exc

    def add_first_admin(self, name: str, password: str) -> bool:
        """Create `name` as an admin only if the store has no user at all; False if it has.

        The check and the insert share one write transaction, so two first-run setups racing
        (two requests, or `rtm user add` at the same moment) cannot both create an admin.
        """
        check_name(name)
        digest = self.hasher.hash(check_password(password))
        with self._db() as db, db.write():
            if db.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                return False
            db.execute(
                "INSERT INTO users (name, role, password_hash, created) VALUES (?, 'admin', ?, ?)",
                (name, digest, self.clock()),
            )
        return True

    def set_password(self, name: str, password: str) -> None:
        """Change a password and end every session of that user."""
        digest = self.hasher.hash(check_password(password))
        self._change(name, "UPDATE users SET password_hash = ? WHERE name = ?", (digest, name))

    def delete(self, name: str) -> None:
        """Delete a user and end every session of theirs."""
        self._change(name, "DELETE FROM users WHERE name = ?", (name,))

    def _change(self, name: str, sql: str, args: tuple[str, ...]) -> None:
        # One transaction with the sessions' end, so no request slips in between.
        with self._db() as db, db.write():
            changed = db.execute(sql, args).rowcount
            db.execute("DELETE FROM sessions WHERE kind = 'user' AND name = ?", (name,))
        if not changed:
            raise AuthError(f"no user {name!r}")

    def rows(self) -> list[dict[str, object]]:
        with self._db() as db:
            rows = db.execute("SELECT name, role, created FROM users ORDER BY name").fetchall()
        return [{"name": n, "role": r, "created": c} for n, r, c in rows]

    def set_password_hash(self, name: str, digest: str) -> None:
        with self._db() as db:
            db.execute("UPDATE users SET password_hash = ? WHERE name = ?", (digest, name))

    def verify(self, name: str, password: str) -> Principal | None:
        """The user if `password` is theirs; the same work for unknown and known names."""
        with self._db() as db:
            row = db.execute(
                "SELECT role, password_hash FROM users WHERE name = ?", (name,)
            ).fetchone()
        role, digest = row if row else (None, self._dummy_hash)
        ok = self._verify(digest, password[:MAX_PASSWORD]) and role is not None
        if not ok:
            return None
        if self.hasher.check_needs_rehash(digest):
            self.set_password_hash(name, self.hasher.hash(password))
        return Principal(name, str(role), "")

    def _verify(self, digest: str, password: str) -> bool:
        try:
            return self.hasher.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return False

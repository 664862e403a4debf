"""Who may use rtm: one `Auth` per store, the face the routes, the gate and the CLI talk to.

It holds no logic of its own: people are in server/users.py, wall displays in displays.py,
sessions and their cookies in sessions.py, the slowing and locking of guessers in
lockout.py, and what all share (Principal, roles, name rules, hashing) in identity.py.
Everything lives in the store (migration 2), so a restart logs nobody out; secrets never sit
there in clear. Every method is synchronous and short; async callers run them in a worker
thread (argon2 takes tens of milliseconds on purpose).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from argon2 import PasswordHasher

from .. import store
from ..config import Config
from .displays import Displays
from .identity import (
    DISPLAY_ROLE,
    MAX_PASSWORD,
    MIN_PASSWORD,
    NAME_PATTERN,
    ROLES,
    AuthError,
    Principal,
    check_name,
    check_password,
    token_hash,
)
from .lockout import Lockout, LoginOutcome
from .request import is_loopback
from .sessions import COOKIE_NAME, DISPLAY_COOKIE_MAX_AGE, SEEN_RESOLUTION, Sessions
from .users import Users

# Names this module held before they got modules of their own; kept importable from here.
__all__ = [
    "COOKIE_NAME",
    "DISPLAY_COOKIE_MAX_AGE",
    "DISPLAY_ROLE",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "NAME_PATTERN",
    "ROLES",
    "SEEN_RESOLUTION",
    "Auth",
    "AuthError",
    "LoginOutcome",
    "Principal",
    "check_name",
    "check_password",
    "is_loopback",
    "token_hash",
]


class Auth:
    """Users, displays, sessions and login throttling over the store at `config.db`."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        store.migrate(config.db)
        self.users = Users(config.db, clock)
        self.displays = Displays(config.db, clock)
        self.sessions = Sessions(config, clock)
        self.lockout = Lockout(config, clock)

    @property
    def hasher(self) -> PasswordHasher:
        """The argon2 hasher of people's passwords (a test may swap in a spy)."""
        return self.users.hasher

    @hasher.setter
    def hasher(self, hasher: PasswordHasher) -> None:
        self.users.hasher = hasher

    # -- people (server/users.py) --------------------------------------------------------

    def add_user(self, name: str, role: str, password: str) -> None:
        self.users.add(name, role, password)

    def add_first_admin(self, name: str, password: str) -> bool:
        """Create `name` as an admin only if the store has no user at all; False if it has."""
        return self.users.add_first_admin(name, password)

    def set_password(self, name: str, password: str) -> None:
        """Change a password and end every session of that user."""
        self.users.set_password(name, password)

    def set_password_hash(self, name: str, digest: str) -> None:
        self.users.set_password_hash(name, digest)

    def delete_user(self, name: str) -> None:
        self.users.delete(name)

    def list_users(self) -> list[dict[str, object]]:
        return self.users.rows()

    # -- wall displays (server/displays.py) ----------------------------------------------

    def add_display(self, name: str) -> str:
        """Create a display; return its token (shown once, stored only hashed)."""
        return self.displays.add(name)

    def list_displays(self) -> list[dict[str, object]]:
        return self.displays.rows()

    def revoke_display(self, name: str) -> bool:
        """Delete a display and its sessions; open WebSockets notice via valid_credentials."""
        return self.displays.revoke(name)

    def display_for_token(self, token: str) -> Principal | None:
        return self.displays.for_token(token)

    # -- signing in (server/lockout.py) --------------------------------------------------

    def check_login(self, name: str, password: str, address: str) -> LoginOutcome:
        """Verify a login under the lockout rules; the same work for unknown and known users."""
        return self.lockout.attempt(name, address, lambda: self.users.verify(name, password))

    def check_secret(self, subject: str, address: str, matches: Callable[[], bool]) -> LoginOutcome:
        """Run `matches` (a check of some other secret, like the first-run token) under the
        lockout rules of logins, counting failures against `subject` and `address`."""
        return self.lockout.attempt(
            subject, address, lambda: Principal(subject, "", "") if matches() else None
        )

    # -- sessions (server/sessions.py) ---------------------------------------------------

    def start_session(self, kind: str, name: str) -> str:
        """Open a session; return the signed cookie value that carries its id."""
        return self.sessions.start(kind, name)

    def end_session(self, cookie: str) -> None:
        self.sessions.end(cookie)

    def principal_for_cookie(self, cookie: str) -> Principal | None:
        """The live principal behind a session cookie; refreshes its idle clock."""
        return self.sessions.principal_for_cookie(cookie)

    def valid_credentials(self, credentials: Iterable[str]) -> set[str]:
        """Which of these credentials still hold; an open WebSocket counts as activity."""
        return self.sessions.valid_credentials(credentials)

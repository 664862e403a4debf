"""Slowing and locking guessers: failed sign-ins are counted per user name and per client
address (never loopback) in the store; `login_max_failures` of them within `login_lock`
seconds lock that name or address for `login_lock` seconds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import Config
from ..database import Database, open_db
from .identity import Principal
from .request import is_loopback


@dataclass(frozen=True)
class LoginOutcome:
    principal: Principal | None
    locked: bool
    failures: int


def attempt_keys(name: str, address: str) -> tuple[str, ...]:
    """The counters a failed attempt by `name` from `address` adds to, the user's first."""
    # Case-folded so "Admin" and "admin" share one counter.
    user = "user:" + name[:128].casefold()
    if is_loopback(address):
        # A local reverse proxy makes every client 127.0.0.1: locking that address would
        # let one guesser lock everybody out. Per-user locks still apply.
        return (user,)
    return (user, "addr:" + address)


class Lockout:
    """The failure counters and locks in the store at `config.db`."""

    def __init__(self, config: Config, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock

    def _db(self) -> Database:
        return open_db(self.config.db)

    def attempt(
        self, subject: str, address: str, check: Callable[[], Principal | None]
    ) -> LoginOutcome:
        """Run `check` unless `subject` or `address` is locked; count a failure (None) or
        clear the subject's counter on success."""
        keys = attempt_keys(subject, address)
        if self._locked(keys):
            return LoginOutcome(None, True, 0)
        principal = check()
        if principal is not None:
            self._clear_failures(keys)
            return LoginOutcome(principal, False, 0)
        failures = self._record_failure(keys)
        return LoginOutcome(None, failures >= self.config.login_max_failures, failures)

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
        with self._db() as db, db.write():
            # Forget old failures so the table stays as small as the attack is recent.
            db.execute(
                "DELETE FROM login_attempts WHERE first_failure < ? AND locked_until < ?",
                (now - window, now),
            )
            for key in keys:
                db.execute(
                    """INSERT INTO login_attempts (key, failures, first_failure) VALUES (?, 1, ?)
                       ON CONFLICT (key) DO UPDATE SET failures = login_attempts.failures + 1""",
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
        return worst

    def _clear_failures(self, keys: tuple[str, ...]) -> None:
        # Only the user's counter: one success must not unlock an address that is guessing.
        with self._db() as db:
            db.execute(
                "DELETE FROM login_attempts WHERE key = ? AND locked_until < ?",
                (keys[0], self.clock()),
            )

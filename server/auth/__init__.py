"""Access control: who may use rtm, and the gate every request passes.

One `Auth` per store is what the routes, the gate and the CLI are handed. It holds the
parts and does no work of its own, except where a sign-in joins two of them: people
(`users.py`), wall displays (`displays.py`), sessions and their cookies (`sessions.py`), the
slowing and locking of guessers (`lockout.py`); what all share (Principal, roles, name rules,
hashing) is in `identity.py`. Around them: what each role may open (`roles.py`), what a
request says about itself (`request.py`), the headers every answer wears (`headers.py`), the
gate (`gate.py`), closing sockets whose credential died (`revocation.py`), and the routes:
sign-in (`routes.py`), first run (`setup.py`), admin (`admin.py`), `rtm user|display`
(`cli.py`). Everything lives in the store (migration 2), so a restart logs nobody out;
secrets never sit there in clear. Every store call is synchronous and short; async callers
run them in a worker thread (argon2 takes tens of milliseconds on purpose).

May import: server.config, server.store, Starlette. Nothing of the live pipeline
(hub, ws, collectors) and nothing of the app.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..config import Config
from .displays import Displays
from .identity import Principal
from .lockout import Lockout, LoginOutcome
from .sessions import Sessions
from .users import Users


class Auth:
    """Users, displays, sessions and login throttling over the store at `config.db`.

    The store must be migrated already (`rtm serve` and the CLI do it once, at start).
    """

    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.users = Users(config.db, clock)
        self.displays = Displays(config.db, clock)
        self.sessions = Sessions(config, clock)
        self.lockout = Lockout(config, clock)

    def check_login(self, name: str, password: str, address: str) -> LoginOutcome:
        """Verify a login under the lockout rules; the same work for unknown and known users."""
        return self.lockout.attempt(name, address, lambda: self.users.verify(name, password))

    def check_secret(self, subject: str, address: str, matches: Callable[[], bool]) -> LoginOutcome:
        """Run `matches` (a check of some other secret, like the first-run token) under the
        lockout rules of logins, counting failures against `subject` and `address`."""
        return self.lockout.attempt(
            subject, address, lambda: Principal(subject, "", "") if matches() else None
        )

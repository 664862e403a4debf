"""Credentials for tests that drive a real rtm: an admin session and a wall display.

`grant(server)` runs before the server starts (conftest's start_rtm does it for every
server), writing straight into its store, so every test's `server.get()` / `server.ws()`
carries a valid admin session cookie without a login round trip.
"""

from __future__ import annotations

from server.auth import Auth
from server.auth.sessions import COOKIE_NAME
from server.config import Config

from .live_server import RtmServer

ADMIN = "admin"
ADMIN_PASSWORD = "test-admin-password"


def grant(server: RtmServer) -> Auth:
    """Create the admin user and put a session cookie for it into `server.cookies`."""
    auth = Auth(Config(db=server.db))
    if ADMIN not in {user["name"] for user in auth.users.rows()}:
        auth.users.add(ADMIN, "admin", ADMIN_PASSWORD)
    server.cookies[COOKIE_NAME] = auth.sessions.start("user", ADMIN)
    return auth

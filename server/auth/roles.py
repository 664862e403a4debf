"""Who may open what: the paths open to everybody, and what each role may use.

Default-deny: only `PUBLIC` paths pass without credentials, a display may open only
`DISPLAY_ALLOWED`, and `ADMIN_ONLY` prefixes need an admin. docs/security.md says why.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

PUBLIC_EXACT = frozenset({"/login", "/logout", "/healthz", "/readyz"})
PUBLIC_PREFIXES = ("/static/",)
# Public only while the store has no user and `rtm serve` printed a setup link (setup.py).
SETUP_PATH = "/setup"
ADMIN_ONLY = ("/admin", "/api/displays", "/api/users")
# What a wall display may open: the page, its live feed and the list endpoints behind the
# three tables; not details (which carry IPs and message metadata), not admin, no writes.
DISPLAY_ALLOWED = frozenset({"/", "/ws", "/api/accounts", "/api/trunks", "/api/queue", "/api/me"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_PREFIXES = ("/api/", "/metrics")


def is_public(path: str) -> bool:
    return path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES)


def role_allows(role: str, method: str, path: str) -> bool:
    """Whether `role` may use `method` ("WEBSOCKET" for upgrades) on `path`."""
    if role == "admin":
        return True
    if any(path == p or path.startswith(p + "/") for p in ADMIN_ONLY):
        return False
    if role == "operator":
        return True
    if role == "display":
        return path in DISPLAY_ALLOWED and (method in ("GET", "HEAD", "WEBSOCKET"))
    return False


def require_role(conn: HTTPConnection, *roles: str) -> dict[str, str]:
    """Return the request's principal, or raise 403 unless its role is one of `roles`."""
    user = conn.scope.get("user")
    if not isinstance(user, dict) or user.get("role") not in roles:
        raise HTTPException(403, "forbidden")
    return user

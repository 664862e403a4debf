"""What a request carries as proof of who sends it: the session cookie, a bearer token
(a display's), or a display token in the URL of a kiosk's first visit."""

from __future__ import annotations

from contextlib import suppress
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.types import Scope

from .headers import header
from .sessions import COOKIE_NAME


def session_cookie_value(scope: Scope) -> str:
    """The value of rtm's session cookie, or "" (a malformed Cookie header counts as none)."""
    raw = header(scope, "cookie")
    if not raw:
        return ""
    jar: SimpleCookie = SimpleCookie()
    with suppress(Exception):
        jar.load(raw)
    morsel = jar.get(COOKIE_NAME)
    return morsel.value if morsel else ""


def bearer_token(scope: Scope) -> str:
    """The token of an `Authorization: Bearer` header, or ""."""
    raw = header(scope, "authorization") or ""
    scheme, _, token = raw.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def take_display_token(scope: Scope) -> str | None:
    """Remove `display=` from the query string, in place; return its value if present.

    In place because uvicorn logs this very scope's query string (its access log and its
    WebSocket "403"/"accepted" lines) after the app answers: the token must be gone by then.
    """
    raw: bytes = scope.get("query_string", b"")
    if not raw:
        return None
    query = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    token = next((v for k, v in query if k == "display"), None)
    if token is None:
        return None
    scope["query_string"] = urlencode([(k, v) for k, v in query if k != "display"]).encode()
    return token

"""What a request says about itself: its headers, the client's address, its origin, the
credentials it carries (session cookie, bearer token, a kiosk's display token) and its body,
read with a size cap so a huge POST costs rtm nothing but its first bytes.

Every function takes the ASGI scope (or a Starlette request) and never raises for hostile
input: a malformed header counts as absent.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, Request
from starlette.types import Scope

from ..config import Config
from .sessions import COOKIE_NAME

MAX_FORM_BYTES = 16 * 1024
# A Host header we are willing to repeat in a CSP or an origin: a name or IP, maybe a port.
SANE_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def header(scope: Scope, name: str) -> str | None:
    """The first value of request header `name`, or None."""
    return Headers(scope=scope).get(name)


# -- where it comes from ------------------------------------------------------------------


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def client_address(scope: Scope, config: Config) -> str:
    """The client's IP: the socket peer, or the trusted proxy header's last hop when set."""
    if config.trust_proxy_header:
        raw = header(scope, config.trust_proxy_header)
        if raw:
            return raw.split(",")[-1].strip()[:64]
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def own_origin(scope: Scope) -> str | None:
    """This request's own origin (scheme://host[:port]) from the Host header, if sane."""
    host = header(scope, "host")
    if not host or not SANE_HOST.fullmatch(host):
        return None
    secure = scope.get("scheme") in ("https", "wss")
    return ("https://" if secure else "http://") + host.lower()


def origin_allowed(scope: Scope, config: Config) -> bool:
    """True when the request has no Origin (not a browser) or names an origin we trust."""
    origin = header(scope, "origin")
    if origin is None:
        return True
    origin = origin.lower().rstrip("/")
    return origin == own_origin(scope) or origin in {o.lower() for o in config.allowed_origins}


def write_origin_allowed(scope: Scope, config: Config) -> bool:
    """Whether a write (POST, DELETE...) may come from where its `Origin` says."""
    # With Referrer-Policy no-referrer browsers send "Origin: null" on our own form posts;
    # SameSite=Strict keeps the cookie off cross-site requests, this refuses the rest.
    return header(scope, "origin") == "null" or origin_allowed(scope, config)


# -- what proves who sends it ------------------------------------------------------------


def session_cookie_value(scope: Scope) -> str:
    """The value of rtm's session cookie, or "" (the header is parsed leniently, as browsers
    do: other, malformed cookies beside ours do not hide it)."""
    return HTTPConnection(scope).cookies.get(COOKIE_NAME, "")


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


# -- what it posts -----------------------------------------------------------------------


async def read_capped(request: Request, limit: int = MAX_FORM_BYTES) -> bytes | None:
    """The request body, or None when it is larger than `limit` bytes."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return body


async def read_form(request: Request) -> dict[str, str] | None:
    """A posted urlencoded form as a dict, or None when it is over MAX_FORM_BYTES."""
    body = await read_capped(request, MAX_FORM_BYTES)
    if body is None:
        return None
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))

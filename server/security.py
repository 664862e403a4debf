"""The gate in front of every route: who is asking, may they, and the headers every answer wears.

`SecurityMiddleware` is pure ASGI so it sees WebSocket handshakes as well as HTTP requests.
The policy is default-deny: only `PUBLIC` paths pass without credentials, a display may open
only `DISPLAY_ALLOWED`, and `ADMIN_ONLY` prefixes need an admin. docs/security.md says why.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import Callable
from contextlib import suppress
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, quote, urlencode

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import COOKIE_NAME, DISPLAY_COOKIE_MAX_AGE, Auth, Principal, is_loopback
from .config import Config
from .revocation import SessionWatcher

log = logging.getLogger("rtm.security")
PUBLIC_EXACT = frozenset({"/login", "/logout", "/healthz"})
PUBLIC_PREFIXES = ("/static/",)
# Public only while the store has no user and `rtm serve` printed a setup link (first_run.py).
SETUP_PATH = "/setup"
ADMIN_ONLY = ("/admin", "/api/displays", "/api/users")
# What a wall display may open: the page, its live feed and the list endpoints behind the
# three tables; not details (which carry IPs and message metadata), not admin, no writes.
DISPLAY_ALLOWED = frozenset({"/", "/ws", "/api/accounts", "/api/trunks", "/api/queue", "/api/me"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_PREFIXES = ("/api/", "/metrics")
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


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


async def read_capped(request: Request, limit: int = 16 * 1024) -> bytes | None:
    """The request body, or None when it is larger than `limit` bytes."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return body


def client_address(scope: Scope, config: Config) -> str:
    """The client's IP: the socket peer, or the trusted proxy header's last hop when set."""
    if config.trust_proxy_header:
        raw = _header(scope, config.trust_proxy_header.lower())
        if raw:
            return raw.split(",")[-1].strip()[:64]
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def own_origin(scope: Scope) -> str | None:
    """This request's own origin (scheme://host[:port]) from the Host header, if sane."""
    host = _header(scope, "host")
    if not host or not _HOST.fullmatch(host):
        return None
    secure = scope.get("scheme") in ("https", "wss")
    return ("https://" if secure else "http://") + host.lower()


def origin_allowed(scope: Scope, config: Config) -> bool:
    """True when the request has no Origin (not a browser) or names an origin we trust."""
    origin = _header(scope, "origin")
    if origin is None:
        return True
    origin = origin.lower().rstrip("/")
    return origin == own_origin(scope) or origin in {o.lower() for o in config.allowed_origins}


def security_headers(scope: Scope, config: Config) -> list[tuple[bytes, bytes]]:
    """Headers every HTTP answer carries (see docs/security.md for each)."""
    host = _header(scope, "host")
    secure = scope.get("scheme") == "https"
    connect = "'self'"
    if host and _HOST.fullmatch(host):
        # 'self' covers same-origin ws: only in newer browsers; name our socket explicitly.
        connect += f" wss://{host}" if secure else f" ws://{host} wss://{host}"
    ancestors = config.frame_ancestors.strip() or "'none'"
    csp = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; object-src 'none'; base-uri 'none'; form-action 'self'; "
        f"frame-ancestors {ancestors}"
    )
    headers = [
        (b"content-security-policy", csp.encode("latin-1")),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    ]
    if not config.frame_ancestors.strip():
        headers.append((b"x-frame-options", b"DENY"))
    if secure:
        headers.append((b"strict-transport-security", b"max-age=31536000"))
    if not scope["path"].startswith("/static/"):
        # Live tables and the login form are never worth caching anywhere.
        headers.append((b"cache-control", b"no-store"))
    return headers


def session_cookie(scope: Scope, value: str, max_age: int | None) -> str:
    parts = [f"{COOKIE_NAME}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if scope.get("scheme") in ("https", "wss"):
        parts.append("Secure")
    return "; ".join(parts)


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode("latin-1")
    for key, value in scope.get("headers", ()):
        if key.lower() == wanted:
            return str(value.decode("latin-1"))
    return None


def _cookie(scope: Scope) -> str:
    raw = _header(scope, "cookie")
    if not raw:
        return ""
    jar: SimpleCookie = SimpleCookie()
    with suppress(Exception):
        jar.load(raw)
    morsel = jar.get(COOKIE_NAME)
    return morsel.value if morsel else ""


def _bearer(scope: Scope) -> str:
    raw = _header(scope, "authorization") or ""
    scheme, _, token = raw.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class SecurityMiddleware:
    """Authenticate, authorise and decorate every HTTP request and WebSocket handshake."""

    def __init__(
        self,
        app: ASGIApp,
        auth: Auth,
        watcher: SessionWatcher | None = None,
        setup_open: Callable[[], bool] | None = None,
    ) -> None:
        self.app = app
        self.auth = auth
        self.config = auth.config
        self.watcher = watcher or SessionWatcher(auth)
        # Blocking; True while the first-run setup link may be used (server/first_run.py).
        self.setup_open = setup_open or (lambda: False)
        if re.search(r"[;\r\n,]", self.config.frame_ancestors):
            raise ValueError("RTM_FRAME_ANCESTORS: space-separated CSP sources, no ; or ,")
        if not auth.list_users() and not self.setup_open():
            log.warning("no users yet: nobody can sign in; create one with "
                        "`rtm user add NAME --role admin` (same RTM_DB)")  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["rtm.display_token"] = _take_display_token(scope)
        if scope["type"] == "http":
            await self._http(scope, receive, self._decorated(scope, send))
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _decorated(self, scope: Scope, send: Send) -> Send:
        extra = security_headers(scope, self.config)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", ())}
                headers = list(message.get("headers", ()))
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        return send_with_headers

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if method not in SAFE_METHODS and not self._origin_ok_for_write(scope):
            return await _answer(send, 403, "cross-site request refused", json_body=True)
        if is_public(path):
            return await self.app(scope, receive, send)
        if path == SETUP_PATH:
            if await asyncio.to_thread(self.setup_open):
                return await self.app(scope, receive, send)
            # Setup is over: a spent token goes no further (not into a `next=`, not to a log).
            scope["query_string"] = b""
        if path == "/" and scope["rtm.display_token"] is not None:
            return await self._display_login(scope, send)
        principal = await self._principal(scope)
        if path == "/metrics" and self._metrics_ok(scope, principal):
            return await self.app(scope, receive, send)
        if principal is None:
            if path.startswith(API_PREFIXES):
                return await _answer(send, 401, "authentication required", json_body=True)
            return await _redirect(send, "/login?" + urlencode({"next": _here(scope)}))
        if not role_allows(principal.role, method, path):
            return await _answer(send, 403, "forbidden", json_body=path.startswith(API_PREFIXES))
        _attach(scope, principal)
        await self.app(scope, receive, send)

    def _origin_ok_for_write(self, scope: Scope) -> bool:
        # With Referrer-Policy no-referrer browsers send "Origin: null" on our own form posts;
        # SameSite=Strict keeps the cookie off cross-site requests, this refuses the rest.
        return _header(scope, "origin") == "null" or origin_allowed(scope, self.config)

    def _metrics_ok(self, scope: Scope, principal: Principal | None) -> bool:
        token = self.config.metrics_token
        if token and secrets.compare_digest(_bearer(scope).encode(), token.encode()):
            return True
        if principal is not None and principal.role in ("admin", "operator"):
            return True
        return is_loopback(client_address(scope, self.config))

    async def _principal(self, scope: Scope) -> Principal | None:
        bearer, cookie = _bearer(scope), _cookie(scope)
        if bearer:
            return await asyncio.to_thread(self.auth.display_for_token, bearer)
        if cookie:
            return await asyncio.to_thread(self.auth.principal_for_cookie, cookie)
        return None

    async def _display_login(self, scope: Scope, send: Send) -> None:
        """`/?display=TOKEN`: trade the token for a display session cookie."""
        token = scope["rtm.display_token"]
        display = await asyncio.to_thread(self.auth.display_for_token, token)
        if display is None:
            return await _redirect(send, "/login")
        cookie = await asyncio.to_thread(self.auth.start_session, "display", display.name)
        header = session_cookie(scope, cookie, DISPLAY_COOKIE_MAX_AGE)
        # The kiosk URL may carry the page's own settings too (`&rotate=30&view=trunks`).
        rest = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        query = urlencode([("kiosk", "1"), *((k, v) for k, v in rest if k != "kiosk")])
        await _redirect(send, "/?" + query, [(b"set-cookie", header.encode("latin-1"))])

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = None
        if origin_allowed(scope, self.config):
            principal = await self._principal(scope)
        path = scope["path"]
        if principal is None or not role_allows(principal.role, "WEBSOCKET", path):
            # Closing before accept makes uvicorn answer the upgrade with HTTP 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        _attach(scope, principal)
        await self.watcher.run(principal.credential, self.app, scope, receive, send)


def _take_display_token(scope: Scope) -> str | None:
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


def _attach(scope: Scope, principal: Principal) -> None:
    scope["user"] = principal.as_dict()
    scope.setdefault("state", {})["user"] = principal.as_dict()


def _here(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return str(scope["path"]) + ("?" + query if query else "")


async def _answer(send: Send, status: int, error: str, json_body: bool) -> None:
    if json_body:
        body, kind = json.dumps({"error": error}).encode(), b"application/json"
    else:
        body, kind = error.encode(), b"text/plain; charset=utf-8"
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="rtm"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect(
    send: Send, location: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"location", quote(location, safe="/?=&%:+").encode()), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 303, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": b""})

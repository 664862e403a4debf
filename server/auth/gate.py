"""The gate in front of every route: who is asking, and may they (roles.py says what
each role may open). Every answer leaves wearing the security headers (headers.py).

`SecurityMiddleware` is pure ASGI so it sees WebSocket handshakes as well as HTTP requests.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..database import DatabaseError
from . import Auth
from .headers import with_security_headers
from .identity import Principal
from .request import (
    bearer_token,
    client_address,
    is_loopback,
    origin_allowed,
    session_cookie_value,
    take_display_token,
    write_origin_allowed,
)
from .revocation import SessionWatcher
from .roles import (
    API_PREFIXES,
    SAFE_METHODS,
    SETUP_PATH,
    is_public,
    role_allows,
)
from .routes import templates
from .sessions import DISPLAY_COOKIE_MAX_AGE, session_cookie

log = logging.getLogger("rtm.security")
# Answered while the store does not (a PostgreSQL restarting): nobody's session can be checked.
STORE_DOWN = "the store is unavailable; try again shortly"
STORE_WARNING_INTERVAL = 10.0


class StoreUnavailable(Exception):
    """The store did not answer a credential lookup."""


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
        self._store_warned = -STORE_WARNING_INTERVAL
        # Blocking; True while the first-run setup link may be used (setup.py).
        self.setup_open = setup_open or (lambda: False)
        if not auth.users.rows() and not self.setup_open():
            log.warning("no users yet: nobody can sign in; create one with "
                        "`rtm user add NAME --role admin` (same RTM_DB)")  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["rtm.display_token"] = take_display_token(scope)
        if scope["type"] == "http":
            await self._http(scope, receive, with_security_headers(scope, self.config, send))
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if method not in SAFE_METHODS and not write_origin_allowed(scope, self.config):
            return await _refuse(
                scope, receive, send, 403, "cross-site request refused", json_body=True
            )
        if is_public(path):
            return await self.app(scope, receive, send)
        if path == SETUP_PATH:
            if await asyncio.to_thread(self.setup_open):
                return await self.app(scope, receive, send)
            # Setup is over: a spent token goes no further (not into a `next=`, not to a log).
            scope["query_string"] = b""
        if path == "/" and scope["rtm.display_token"] is not None:
            return await self._display_login(scope, receive, send)
        try:
            principal = await self._principal(scope)
        except StoreUnavailable:
            json_body = path.startswith(API_PREFIXES)
            return await _refuse(scope, receive, send, 503, STORE_DOWN, json_body)
        if path == "/metrics" and self._metrics_ok(scope, principal):
            return await self.app(scope, receive, send)
        if principal is None:
            if path.startswith(API_PREFIXES):
                return await _refuse(
                    scope, receive, send, 401, "authentication required", json_body=True
                )
            login = RedirectResponse("/login?" + urlencode({"next": _here(scope)}), 303)
            return await login(scope, receive, send)
        if not role_allows(principal.role, method, path):
            if path.startswith(API_PREFIXES) or method not in SAFE_METHODS:
                return await _refuse(
                    scope, receive, send, 403, "forbidden", path.startswith(API_PREFIXES)
                )
            # A person who followed a link gets a page that says why, with a way back.
            page = templates.TemplateResponse(
                Request(scope, receive), "forbidden.html", principal.as_dict(), status_code=403
            )
            return await page(scope, receive, send)
        _attach(scope, principal)
        await self.app(scope, receive, send)

    def _metrics_ok(self, scope: Scope, principal: Principal | None) -> bool:
        token = self.config.metrics_token
        if token and secrets.compare_digest(bearer_token(scope).encode(), token.encode()):
            return True
        if principal is not None and principal.role in ("admin", "operator"):
            return True
        return is_loopback(client_address(scope, self.config))

    async def _principal(self, scope: Scope) -> Principal | None:
        bearer, cookie = bearer_token(scope), session_cookie_value(scope)
        try:
            if bearer:
                return await asyncio.to_thread(self.auth.displays.for_token, bearer)
            if cookie:
                return await asyncio.to_thread(self.auth.sessions.principal_for_cookie, cookie)
        except DatabaseError as exc:
            # One line per interval, not one per request of every client retrying.
            now = time.monotonic()
            if now - self._store_warned >= STORE_WARNING_INTERVAL:
                self._store_warned = now
                log.warning("credential lookups fail, answering 503: %s", exc)
            raise StoreUnavailable from exc
        return None

    async def _display_login(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`/?display=TOKEN`: trade the token for a display session cookie."""
        token = scope["rtm.display_token"]
        display = await asyncio.to_thread(self.auth.displays.for_token, token)
        if display is None:
            return await RedirectResponse("/login", 303)(scope, receive, send)
        cookie = await asyncio.to_thread(self.auth.sessions.start, "display", display.name)
        # The kiosk URL may carry the page's own settings too (`&rotate=30&view=trunks`).
        rest = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        query = urlencode([("kiosk", "1"), *((k, v) for k, v in rest if k != "kiosk")])
        response = RedirectResponse("/?" + query, 303)
        response.headers.append("set-cookie", session_cookie(scope, cookie, DISPLAY_COOKIE_MAX_AGE))
        await response(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = None
        if origin_allowed(scope, self.config):
            try:
                principal = await self._principal(scope)
            except StoreUnavailable:
                await send({"type": "websocket.close", "code": 1013})  # try again later
                return
        path = scope["path"]
        if principal is None or not role_allows(principal.role, "WEBSOCKET", path):
            # Closing before accept makes uvicorn answer the upgrade with HTTP 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        _attach(scope, principal)
        await self.watcher.run(principal.credential, self.app, scope, receive, send)


def _attach(scope: Scope, principal: Principal) -> None:
    scope["user"] = principal.as_dict()
    scope.setdefault("state", {})["user"] = principal.as_dict()


def _here(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return str(scope["path"]) + ("?" + query if query else "")


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, error: str, json_body: bool
) -> None:
    """Answer a refused request: `{"error": ...}` for scripts, plain text for pages."""
    response: Response
    if json_body:
        response = JSONResponse({"error": error}, status)
    else:
        response = PlainTextResponse(error, status)
    if status == 401:
        response.headers["www-authenticate"] = 'Bearer realm="rtm"'
    await response(scope, receive, send)

"""Routes for signing in and out, and (from admin.py) for admins.

`routes(auth, setup_open)` returns them all for server/app.py; SecurityMiddleware lets anybody reach
`/login` and `/logout`, and only signed-in principals `/api/me`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from ..config import Config
from . import Auth, admin
from .request import client_address, read_form
from .sessions import COOKIE_NAME, session_cookie

MAX_CONCURRENT_LOGINS = 2
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
WRONG = "Wrong user name or password."
LOCKED = "Too many failed sign-ins. Try again later."
# What a failed sign-in's redirect (``/login?failed=…``) shows; any other value shows nothing.
FAILURES = {"wrong": WRONG, "locked": LOCKED}


def safe_next(target: str) -> str:
    """A local path to go to after login; anything that could leave the site becomes "/"."""
    if (
        not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or any(ord(c) < 0x20 or c == "\\" for c in target)
        or target.startswith("/login")
    ):
        return "/"
    return target[:2048]


async def slow_failure(config: Config, failures: int) -> None:
    """Answer the n-th consecutive failed guess n x login_delay late; the lockout bounds n."""
    await asyncio.sleep(min(failures, config.login_max_failures) * config.login_delay)


async def signed_in(auth: Auth, request: Request, name: str, target: str) -> Response:
    """Open a session for user `name` and send the browser to `target` wearing its cookie."""
    cookie = await asyncio.to_thread(auth.sessions.start, "user", name)
    response = RedirectResponse(target, status_code=303)
    max_age = int(auth.config.session_max)
    response.headers.append("set-cookie", session_cookie(request.scope, cookie, max_age))
    return response


class SignIn:
    """`/login`, `/logout` and `/api/me`, bound to one `Auth`.

    `setup_open` (blocking) says whether the first-run setup link is still open: before the
    first admin exists nobody can sign in, and the login page says where to start instead.
    """

    def __init__(self, auth: Auth, setup_open: Callable[[], bool]) -> None:
        self.auth = auth
        self.setup_open = setup_open
        # Each argon2 check takes ~64 MiB and a core for ~0.1 s: a login flood queues here
        # instead of exhausting memory and the thread pool the rest of rtm needs.
        self.hashing = asyncio.Semaphore(MAX_CONCURRENT_LOGINS)

    async def page(
        self, request: Request, status: int, error: str, username: str, nxt: str
    ) -> Response:
        first_start = await asyncio.to_thread(self.setup_open)
        context = {
            "error": error,
            "username": username,
            "next": safe_next(nxt),
            "first_start": first_start,
        }
        return templates.TemplateResponse(request, "login.html", context, status_code=status)

    async def failed(
        self, request: Request, status: int, failure: str, username: str, nxt: str
    ) -> Response:
        """A failed sign-in: 401/429 for scripts; a browser's form is sent back to the
        page (Post/Redirect/Get), because Chromium logs every 4xx page as a console error
        and a reload would post the password again."""
        if request.headers.get("sec-fetch-mode") != "navigate":
            return await self.page(request, status, FAILURES[failure], username, nxt)
        query = urlencode({"failed": failure, "username": username, "next": safe_next(nxt)})
        return RedirectResponse(f"/login?{query}", status_code=303)

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            query = request.query_params
            error = FAILURES.get(query.get("failed", ""), "")
            username = query.get("username", "")[:256] if error else ""
            return await self.page(request, 200, error, username, query.get("next", "/"))
        form = await read_form(request)
        if form is None:
            return Response("form too large", status_code=413)
        username = form.get("username", "")[:256]
        nxt = form.get("next", "/")
        address = client_address(request.scope, self.auth.config)
        async with self.hashing:
            outcome = await asyncio.to_thread(
                self.auth.check_login, username, form.get("password", ""), address
            )
        if outcome.locked:
            return await self.failed(request, 429, "locked", username, nxt)
        if outcome.principal is None:
            await slow_failure(self.auth.config, outcome.failures)
            return await self.failed(request, 401, "wrong", username, nxt)
        return await signed_in(self.auth, request, outcome.principal.name, safe_next(nxt))

    async def logout(self, request: Request) -> Response:
        cookie = request.cookies.get(COOKIE_NAME, "")
        if cookie:
            await asyncio.to_thread(self.auth.sessions.end, cookie)
        response = RedirectResponse("/login", status_code=303)
        response.headers.append("set-cookie", session_cookie(request.scope, "", 0))
        return response

    async def me(self, request: Request) -> Response:
        return JSONResponse(request.scope.get("user"))


def routes(auth: Auth, setup_open: Callable[[], bool] = lambda: False) -> list[Route]:
    """The login, logout and admin routes, bound to `auth` (and the first run's state)."""
    sign_in = SignIn(auth, setup_open)
    return [
        Route("/login", sign_in.login, methods=["GET", "POST"]),
        Route("/logout", sign_in.logout, methods=["POST"]),
        Route("/api/me", sign_in.me, methods=["GET"]),
        *admin.routes(auth, templates),
    ]

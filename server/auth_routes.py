"""Routes for signing in and out and for admins managing displays and seeing users.

`routes(auth)` returns them for server/app.py; SecurityMiddleware already refused anyone
without the right role, and each admin route checks again (`require_role`) in case the
middleware list is ever edited.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from . import admin_page
from .auth import COOKIE_NAME, Auth, AuthError
from .config import Config
from .security import client_address, own_origin, read_capped, require_role, session_cookie

MAX_FORM_BYTES = 16 * 1024
MAX_CONCURRENT_LOGINS = 2
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
WRONG = "Wrong user name or password."
LOCKED = "Too many failed sign-ins. Try again later."


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


def json_name(body: bytes | None) -> str | None:
    """The "name" string of a JSON object body, or None for anything else."""
    try:
        value = json.loads(body or b"")
    except (ValueError, RecursionError):
        return None
    name = value.get("name") if isinstance(value, dict) else None
    return name if isinstance(name, str) else None


def routes(auth: Auth) -> list[Route]:
    """The login, logout and admin routes, bound to `auth`."""
    config = auth.config
    # Each argon2 check takes ~64 MiB and a core for ~0.1 s: a login flood queues here
    # instead of exhausting memory and the thread pool the rest of rtm needs.
    hashing = asyncio.Semaphore(MAX_CONCURRENT_LOGINS)

    def login_page(request: Request, status: int, error: str, username: str, nxt: str) -> Response:
        context = {"error": error, "username": username, "next": safe_next(nxt)}
        return templates.TemplateResponse(request, "login.html", context, status_code=status)

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return login_page(request, 200, "", "", request.query_params.get("next", "/"))
        body = await read_capped(request, MAX_FORM_BYTES)
        if body is None:
            return Response("form too large", status_code=413)
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        username = form.get("username", "")[:256]
        password = form.get("password", "")
        nxt = form.get("next", "/")
        address = client_address(request.scope, config)
        async with hashing:
            outcome = await asyncio.to_thread(auth.check_login, username, password, address)
        if outcome.locked:
            return login_page(request, 429, LOCKED, username, nxt)
        if outcome.principal is None:
            await slow_failure(config, outcome.failures)
            return login_page(request, 401, WRONG, username, nxt)
        cookie = await asyncio.to_thread(auth.start_session, "user", outcome.principal.name)
        response = RedirectResponse(safe_next(nxt), status_code=303)
        max_age = int(config.session_max)
        response.headers.append("set-cookie", session_cookie(request.scope, cookie, max_age))
        return response

    async def logout(request: Request) -> Response:
        cookie = request.cookies.get(COOKIE_NAME, "")
        if cookie:
            await asyncio.to_thread(auth.end_session, cookie)
        response = RedirectResponse("/login", status_code=303)
        response.headers.append("set-cookie", session_cookie(request.scope, "", 0))
        return response

    async def me(request: Request) -> Response:
        return JSONResponse(request.scope.get("user"))

    async def list_displays(request: Request) -> Response:
        require_role(request, "admin")
        return JSONResponse({"displays": await asyncio.to_thread(auth.list_displays)})

    async def add_display(request: Request) -> Response:
        require_role(request, "admin")
        name = json_name(await read_capped(request, 4096))
        if name is None:
            return JSONResponse({"error": 'expected JSON {"name": "..."}'}, status_code=400)
        try:
            token = await asyncio.to_thread(auth.add_display, name)
        except AuthError as exc:
            status = 409 if "exists" in str(exc) else 400
            return JSONResponse({"error": str(exc)}, status_code=status)
        base = own_origin(request.scope) or ""
        return JSONResponse({"name": name, "url": f"{base}/?display={token}"}, status_code=201)

    async def revoke_display(request: Request) -> Response:
        require_role(request, "admin")
        revoked = await asyncio.to_thread(auth.revoke_display, request.path_params["name"])
        return Response(status_code=204 if revoked else 404)

    async def list_users(request: Request) -> Response:
        require_role(request, "admin")
        return JSONResponse({"users": await asyncio.to_thread(auth.list_users)})

    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/me", me, methods=["GET"]),
        Route("/api/displays", list_displays, methods=["GET"]),
        Route("/api/displays", add_display, methods=["POST"]),
        Route("/api/displays/{name}", revoke_display, methods=["DELETE"]),
        Route("/api/users", list_users, methods=["GET"]),
        *admin_page.routes(auth, templates),
    ]

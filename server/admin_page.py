"""`/admin`: the page where admins see users and add or revoke wall displays.

Server-rendered forms, no script: it works under the strict CSP, and a new display's URL is
shown once, in the answer to the form that created it. SecurityMiddleware lets only admins
in (`/admin` is in ADMIN_ONLY); each handler checks again.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from .auth import Auth
from .forms import read_capped
from .identity import AuthError
from .origins import own_origin
from .roles import require_role

MAX_FORM_BYTES = 4096


def _when(epoch: object) -> str:
    if not epoch:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(str(epoch))))


def routes(auth: Auth, templates: Jinja2Templates) -> list[Route]:
    """The admin page's routes, bound to `auth`."""

    async def page(request: Request, status: int = 200, **extra: object) -> Response:
        user = require_role(request, "admin")
        users = await asyncio.to_thread(auth.list_users)
        displays = await asyncio.to_thread(auth.list_displays)
        for display in displays:
            display["created"] = _when(display["created"])
            display["last_seen"] = _when(display["last_seen"])
        context = {"me": user, "users": users, "displays": displays, **extra}
        return templates.TemplateResponse(request, "admin.html", context, status_code=status)

    async def show(request: Request) -> Response:
        return await page(request)

    async def add_display(request: Request) -> Response:
        require_role(request, "admin")
        body = await read_capped(request, MAX_FORM_BYTES) or b""
        name = dict(parse_qsl(body.decode("utf-8", "replace"))).get("name", "").strip()
        try:
            token = await asyncio.to_thread(auth.add_display, name)
        except AuthError as exc:
            return await page(request, 400, error=str(exc), name=name)
        url = f"{own_origin(request.scope) or ''}/?display={token}"
        return await page(request, 201, new_name=name, new_url=url)

    async def revoke_display(request: Request) -> Response:
        require_role(request, "admin")
        await asyncio.to_thread(auth.revoke_display, request.path_params["name"])
        return RedirectResponse("/admin", status_code=303)

    return [
        Route("/admin", show, methods=["GET"]),
        Route("/admin/displays", add_display, methods=["POST"]),
        Route("/admin/displays/{name}/revoke", revoke_display, methods=["POST"]),
    ]

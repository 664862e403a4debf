"""What admins use: `/admin`, the page where they see users and add or revoke wall displays,
and the same as JSON under `/api/displays` and `/api/users`.

The page is server-rendered forms, no script: it works under the strict CSP, and a new
display's URL is shown once, in the answer to the form that created it. The gate lets only
admins in (the paths are in ADMIN_ONLY); each handler checks again (`require_role`) in case
that list is ever edited.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from . import Auth
from .identity import AuthError
from .request import own_origin, read_capped
from .roles import require_role

MAX_FORM_BYTES = 4096


def json_name(body: bytes | None) -> str | None:
    """The "name" string of a JSON object body, or None for anything else."""
    try:
        value = json.loads(body or b"")
    except (ValueError, RecursionError):
        return None
    name = value.get("name") if isinstance(value, dict) else None
    return name if isinstance(name, str) else None


def _when(epoch: object) -> str:
    if not epoch:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(str(epoch))))


def kiosk_url(auth: Auth, request: Request, token: str) -> str:
    """The URL a new display opens: on RTM_PUBLIC_URL, else the origin the admin reached
    rtm by."""
    base = auth.config.public_url or own_origin(request.scope) or ""
    return f"{base}/?display={token}"


class AdminApi:
    """The JSON handlers, bound to one `Auth`."""

    def __init__(self, auth: Auth) -> None:
        self.auth = auth

    async def list_displays(self, request: Request) -> Response:
        require_role(request, "admin")
        return JSONResponse({"displays": await asyncio.to_thread(self.auth.displays.rows)})

    async def add_display(self, request: Request) -> Response:
        require_role(request, "admin")
        name = json_name(await read_capped(request, MAX_FORM_BYTES))
        if name is None:
            return JSONResponse({"error": 'expected JSON {"name": "..."}'}, status_code=400)
        try:
            token = await asyncio.to_thread(self.auth.displays.add, name)
        except AuthError as exc:
            status = 409 if "exists" in str(exc) else 400
            return JSONResponse({"error": str(exc)}, status_code=status)
        return JSONResponse(
            {"name": name, "url": kiosk_url(self.auth, request, token)}, status_code=201
        )

    async def revoke_display(self, request: Request) -> Response:
        require_role(request, "admin")
        name = request.path_params["name"]
        revoked = await asyncio.to_thread(self.auth.displays.revoke, name)
        return Response(status_code=204 if revoked else 404)

    async def list_users(self, request: Request) -> Response:
        require_role(request, "admin")
        return JSONResponse({"users": await asyncio.to_thread(self.auth.users.rows)})


class AdminPage:
    """The `/admin` page's handlers, bound to one `Auth`."""

    def __init__(self, auth: Auth, templates: Jinja2Templates) -> None:
        self.auth = auth
        self.templates = templates

    async def page(self, request: Request, status: int = 200, **extra: object) -> Response:
        user = require_role(request, "admin")
        users = await asyncio.to_thread(self.auth.users.rows)
        displays = await asyncio.to_thread(self.auth.displays.rows)
        for display in displays:
            display["created"] = _when(display["created"])
            display["last_seen"] = _when(display["last_seen"])
        context = {"me": user, "users": users, "displays": displays, **extra}
        return self.templates.TemplateResponse(request, "admin.html", context, status_code=status)

    async def show(self, request: Request) -> Response:
        return await self.page(request)

    async def add_display(self, request: Request) -> Response:
        require_role(request, "admin")
        body = await read_capped(request, MAX_FORM_BYTES) or b""
        name = dict(parse_qsl(body.decode("utf-8", "replace"))).get("name", "").strip()
        try:
            token = await asyncio.to_thread(self.auth.displays.add, name)
        except AuthError as exc:
            return await self.page(request, 400, error=str(exc), name=name)
        return await self.page(
            request, 201, new_name=name, new_url=kiosk_url(self.auth, request, token)
        )

    async def revoke_display(self, request: Request) -> Response:
        require_role(request, "admin")
        await asyncio.to_thread(self.auth.displays.revoke, request.path_params["name"])
        return RedirectResponse("/admin", status_code=303)


def routes(auth: Auth, templates: Jinja2Templates) -> list[Route]:
    """The admin page's and the admin API's routes, bound to `auth`."""
    api, page = AdminApi(auth), AdminPage(auth, templates)
    return [
        Route("/admin", page.show, methods=["GET"]),
        Route("/admin/displays", page.add_display, methods=["POST"]),
        Route("/admin/displays/{name}/revoke", page.revoke_display, methods=["POST"]),
        Route("/api/displays", api.list_displays, methods=["GET"]),
        Route("/api/displays", api.add_display, methods=["POST"]),
        Route("/api/displays/{name}", api.revoke_display, methods=["DELETE"]),
        Route("/api/users", api.list_users, methods=["GET"]),
    ]

"""What admins use: `/admin`, the page where they add or revoke wall displays and add, reset
or delete users, and the displays and users as JSON under `/api/displays` and `/api/users`.

The page is server-rendered forms (its one script, the Copy button, is a file the strict CSP
allows), and a new display's URL is shown once, in the answer to the form that created it.
The gate lets only admins in (the paths are in ADMIN_ONLY); each handler checks again
(`require_role`) in case that list is ever edited.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from ..config import TABLES
from . import Auth
from .identity import AuthError
from .request import own_origin, read_capped
from .roles import require_role

MAX_ADMIN_BODY = 4096


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
        name = json_name(await read_capped(request, MAX_ADMIN_BODY))
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


# What a finished action says on the page it redirects to (`/admin?<key>=<name>`).
NOTICES = {
    "added_user": "User {} added.",
    "password_set": "Password of {} changed; their sessions have ended.",
    "deleted_user": "User {} deleted; their sessions have ended.",
    "revoked": "Display {} revoked: its screen goes dark within a second.",
}


def kiosk_options(form: dict[str, str]) -> str:
    """`&view=...&rotate=...` from the add-display form; anything else is dropped."""
    options = ""
    if form.get("view") in TABLES:  # the page names its views as the tables
        options += f"&view={form['view']}"
    rotate = form.get("rotate", "").strip()
    if rotate.isdigit() and 5 <= int(rotate) <= 3600:
        options += f"&rotate={int(rotate)}"
    return options


class AdminPage:
    """The `/admin` page's handlers, bound to one `Auth`.

    Every change is a POST answered by a redirect to `/admin?<what>=<name>`, which shows what
    happened; a delete or a revoke first asks (the same POST without `confirm=1` shows the
    question), since the page runs no script that could pop a dialog.
    """

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
        notice = next(
            (text.format(request.query_params[key]) for key, text in NOTICES.items()
             if key in request.query_params),
            "",
        )  # fmt: skip
        context = {"me": user, "users": users, "displays": displays, "views": TABLES,
                   "notice": notice, **extra}  # fmt: skip
        return self.templates.TemplateResponse(request, "admin.html", context, status_code=status)

    async def show(self, request: Request) -> Response:
        return await self.page(request)

    async def form(self, request: Request) -> dict[str, str]:
        body = await read_capped(request, MAX_ADMIN_BODY) or b""
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))

    async def add_display(self, request: Request) -> Response:
        require_role(request, "admin")
        form = await self.form(request)
        name = form.get("name", "").strip()
        try:
            token = await asyncio.to_thread(self.auth.displays.add, name)
        except AuthError as exc:
            return await self.page(request, 400, error=str(exc), name=name)
        url = kiosk_url(self.auth, request, token) + kiosk_options(form)
        return await self.page(request, 201, new_name=name, new_url=url)

    async def revoke_display(self, request: Request) -> Response:
        require_role(request, "admin")
        name = request.path_params["name"]
        if (await self.form(request)).get("confirm") != "1":
            return await self.page(request, confirm_revoke=name)
        await asyncio.to_thread(self.auth.displays.revoke, name)
        return done("revoked", name)

    async def add_user(self, request: Request) -> Response:
        require_role(request, "admin")
        form = await self.form(request)
        name, role = form.get("name", "").strip(), form.get("role", "")
        try:
            await asyncio.to_thread(self.auth.users.add, name, role, form.get("password", ""))
        except AuthError as exc:
            return await self.page(request, 400, user_error=str(exc), user_name=name)
        return done("added_user", name)

    async def set_password(self, request: Request) -> Response:
        require_role(request, "admin")
        name = request.path_params["name"]
        password = (await self.form(request)).get("password", "")
        try:
            await asyncio.to_thread(self.auth.users.set_password, name, password)
        except AuthError as exc:
            return await self.page(request, 400, user_error=f"{name}: {exc}")
        return done("password_set", name)

    async def delete_user(self, request: Request) -> Response:
        me = require_role(request, "admin")
        name = request.path_params["name"]
        if name == me["name"]:
            error = "You cannot delete the user you are signed in as; another admin can."
            return await self.page(request, 400, user_error=error)
        if (await self.form(request)).get("confirm") != "1":
            return await self.page(request, confirm_delete=name)
        try:
            await asyncio.to_thread(self.auth.users.delete, name)
        except AuthError as exc:
            return await self.page(request, 404, user_error=str(exc))
        return done("deleted_user", name)


def done(what: str, name: str) -> Response:
    """Back to the page, which says what happened (a reload repeats nothing)."""
    return RedirectResponse("/admin?" + urlencode({what: name}), status_code=303)


def routes(auth: Auth, templates: Jinja2Templates) -> list[Route]:
    """The admin page's and the admin API's routes, bound to `auth`."""
    api, page = AdminApi(auth), AdminPage(auth, templates)
    return [
        Route("/admin", page.show, methods=["GET"]),
        Route("/admin/displays", page.add_display, methods=["POST"]),
        Route("/admin/displays/{name}/revoke", page.revoke_display, methods=["POST"]),
        Route("/admin/users", page.add_user, methods=["POST"]),
        Route("/admin/users/{name}/password", page.set_password, methods=["POST"]),
        Route("/admin/users/{name}/delete", page.delete_user, methods=["POST"]),
        Route("/api/displays", api.list_displays, methods=["GET"]),
        Route("/api/displays", api.add_display, methods=["POST"]),
        Route("/api/displays/{name}", api.revoke_display, methods=["DELETE"]),
        Route("/api/users", api.list_users, methods=["GET"]),
    ]

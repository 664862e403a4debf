"""The JSON API for admins: list, add and revoke wall displays, list users.

SecurityMiddleware already refused anyone but admins (the paths are in ADMIN_ONLY); each
handler checks again (`require_role`) in case the middleware list is ever edited.
"""

from __future__ import annotations

import asyncio
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .auth import Auth
from .forms import read_capped
from .identity import AuthError
from .origins import own_origin
from .roles import require_role


def json_name(body: bytes | None) -> str | None:
    """The "name" string of a JSON object body, or None for anything else."""
    try:
        value = json.loads(body or b"")
    except (ValueError, RecursionError):
        return None
    name = value.get("name") if isinstance(value, dict) else None
    return name if isinstance(name, str) else None


class AdminApi:
    """The handlers, bound to one `Auth`."""

    def __init__(self, auth: Auth) -> None:
        self.auth = auth

    async def list_displays(self, request: Request) -> Response:
        require_role(request, "admin")
        return JSONResponse({"displays": await asyncio.to_thread(self.auth.list_displays)})

    async def add_display(self, request: Request) -> Response:
        require_role(request, "admin")
        name = json_name(await read_capped(request, 4096))
        if name is None:
            return JSONResponse({"error": 'expected JSON {"name": "..."}'}, status_code=400)
        try:
            token = await asyncio.to_thread(self.auth.add_display, name)
        except AuthError as exc:
            status = 409 if "exists" in str(exc) else 400
            return JSONResponse({"error": str(exc)}, status_code=status)
        base = own_origin(request.scope) or ""
        return JSONResponse({"name": name, "url": f"{base}/?display={token}"}, status_code=201)

    async def revoke_display(self, request: Request) -> Response:
        require_role(request, "admin")
        revoked = await asyncio.to_thread(self.auth.revoke_display, request.path_params["name"])
        return Response(status_code=204 if revoked else 404)

    async def list_users(self, request: Request) -> Response:
        require_role(request, "admin")
        return JSONResponse({"users": await asyncio.to_thread(self.auth.list_users)})


def routes(auth: Auth) -> list[Route]:
    api = AdminApi(auth)
    return [
        Route("/api/displays", api.list_displays, methods=["GET"]),
        Route("/api/displays", api.add_display, methods=["POST"]),
        Route("/api/displays/{name}", api.revoke_display, methods=["DELETE"]),
        Route("/api/users", api.list_users, methods=["GET"]),
    ]

"""Request bodies read with a size cap, so a huge POST costs rtm nothing but its first bytes."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

MAX_FORM_BYTES = 16 * 1024


async def read_capped(request: Request, limit: int = 16 * 1024) -> bytes | None:
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

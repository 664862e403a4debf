"""The security headers every answer wears (docs/security.md says why each)."""

from __future__ import annotations

from starlette.types import Message, Scope, Send

from ..config import Config
from .request import SANE_HOST, header


def security_headers(scope: Scope, config: Config) -> list[tuple[bytes, bytes]]:
    """Headers every HTTP answer carries (see docs/security.md for each)."""
    host = header(scope, "host")
    secure = scope.get("scheme") == "https"
    connect = "'self'"
    if host and SANE_HOST.fullmatch(host):
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


def with_security_headers(scope: Scope, config: Config, send: Send) -> Send:
    """`send`, adding the security headers the app's own answer does not set already."""
    extra = security_headers(scope, config)

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {k.lower() for k, _ in message.get("headers", ())}
            headers = list(message.get("headers", ()))
            headers += [(k, v) for k, v in extra if k not in present]
            message = {**message, "headers": headers}
        await send(message)

    return send_with_headers

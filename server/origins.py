"""Which web sites may talk to rtm: a request's own origin, and the check of its `Origin`
header against it and `RTM_ALLOWED_ORIGINS` (WebSocket upgrades and writes)."""

from __future__ import annotations

from starlette.types import Scope

from .config import Config
from .headers import SANE_HOST, header


def own_origin(scope: Scope) -> str | None:
    """This request's own origin (scheme://host[:port]) from the Host header, if sane."""
    host = header(scope, "host")
    if not host or not SANE_HOST.fullmatch(host):
        return None
    secure = scope.get("scheme") in ("https", "wss")
    return ("https://" if secure else "http://") + host.lower()


def origin_allowed(scope: Scope, config: Config) -> bool:
    """True when the request has no Origin (not a browser) or names an origin we trust."""
    origin = header(scope, "origin")
    if origin is None:
        return True
    origin = origin.lower().rstrip("/")
    return origin == own_origin(scope) or origin in {o.lower() for o in config.allowed_origins}


def write_origin_allowed(scope: Scope, config: Config) -> bool:
    """Whether a write (POST, DELETE...) may come from where its `Origin` says."""
    # With Referrer-Policy no-referrer browsers send "Origin: null" on our own form posts;
    # SameSite=Strict keeps the cookie off cross-site requests, this refuses the rest.
    return header(scope, "origin") == "null" or origin_allowed(scope, config)

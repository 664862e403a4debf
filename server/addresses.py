"""Client addresses: which IP a request comes from, and whether that is this host."""

from __future__ import annotations

import ipaddress

from starlette.types import Scope

from .config import Config
from .headers import header


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def client_address(scope: Scope, config: Config) -> str:
    """The client's IP: the socket peer, or the trusted proxy header's last hop when set."""
    if config.trust_proxy_header:
        raw = header(scope, config.trust_proxy_header.lower())
        if raw:
            return raw.split(",")[-1].strip()[:64]
    client = scope.get("client")
    return str(client[0]) if client else "unknown"

"""Where a contact really is: IP, port and transport from SIP URIs and Kamailio socket strings.

Pure functions; every input is hostile (SIP clients write their own Contact header), so a
value that does not parse gives None rather than an exception.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061, "WS": 80, "WSS": 443, "SCTP": 5060}
# host part: [v6] or anything up to a port, parameter or header separator
_HOSTPORT = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:;?>\s]+))(?::(?P<port>\d{1,5}))?"
)


class Address(NamedTuple):
    ip: str | None
    port: int | None
    transport: str | None


def _strip_uri(uri: str) -> tuple[str, str] | None:
    """Return (scheme, rest after user@) of a SIP URI, or None."""
    text = uri.strip()
    if "<" in text:  # name-addr: "Bob" <sip:bob@host>
        text = text[text.index("<") + 1 :]
        text = text.split(">", 1)[0]
    scheme, sep, rest = text.partition(":")
    if not sep or scheme.lower() not in ("sip", "sips"):
        return None
    # The user part may hold ':' (user:password); the host follows the last '@' before params.
    head = rest.split(";", 1)[0].split("?", 1)[0]
    rest = rest[head.rfind("@") + 1 :]
    return scheme.lower(), rest


def _transport_param(rest: str) -> str | None:
    for param in rest.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "transport" and value:
            return value.split("?", 1)[0].strip().upper()
    return None


def parse_uri(uri: str | None) -> Address:
    """IP (or host), port and transport of a SIP URI; missing parts are None."""
    if not uri:
        return Address(None, None, None)
    stripped = _strip_uri(uri)
    if stripped is None:
        return Address(None, None, None)
    scheme, rest = stripped
    match = _HOSTPORT.match(rest)
    if not match:
        return Address(None, None, None)
    host = match.group("v6") or match.group("host")
    port = int(match.group("port")) if match.group("port") else None
    if port is not None and not 0 < port < 65536:
        port = None
    transport = _transport_param(rest) or ("TLS" if scheme == "sips" else None)
    return Address(host, port, transport)


def parse_socket(socket: str | None) -> Address:
    """Kamailio's ``proto:ip:port`` socket string (``udp:127.0.0.1:5060``, ``tcp:[::1]:5060``)."""
    if not socket:
        return Address(None, None, None)
    proto, sep, rest = socket.strip().partition(":")
    if not sep:
        return Address(None, None, None)
    match = _HOSTPORT.match(rest)
    if not match:
        return Address(None, None, proto.upper() or None)
    host = match.group("v6") or match.group("host")
    port = int(match.group("port")) if match.group("port") else None
    return Address(host, port, proto.upper() or None)


def contact_address(contact: str | None, received: str | None, socket: str | None) -> Address:
    """Where the contact is reachable: ``received`` (NAT) when set, else the contact URI.

    Transport comes from the socket the REGISTER arrived on, else ``;transport=``, else UDP.
    """
    source = parse_uri(received) if received else Address(None, None, None)
    if source.ip is None:
        source = parse_uri(contact)
    transport = parse_socket(socket).transport or source.transport or parse_uri(contact).transport
    transport = transport or "UDP"
    port = source.port
    if port is None and source.ip is not None:
        port = _DEFAULT_PORTS.get(transport, 5060)
    return Address(source.ip, port, transport)

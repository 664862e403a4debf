"""Where SIP names point: the one parser of SIP URIs, and what rtm reads from them.

``parse`` reads ``sip:``/``sips:`` URIs (user and password, host or ``[v6]``, port,
parameters, headers) and ``tel:`` numbers, also inside a name-addr (``"Bob" <sip:bob@host>``)
and, when asked, a bare ``host``, ``host:port`` or ``user@host``. Every input is hostile (SIP
clients write their own Contact header): what does not parse gives None or an empty part,
never an exception. Kamailio's ``proto:ip:port`` socket strings are not URIs; ``parse_socket`` reads
them with the same host grammar.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

SIP_SCHEMES = ("sip", "sips")
DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061, "WS": 80, "WSS": 443, "SCTP": 5060}
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
# A name-addr's display name, which may itself hold '<', '>' or an escaped '"'.
_QUOTED = re.compile(r'\s*"(?:[^"\\]|\\.)*"')
# host part: [v6] or anything up to a port, parameter or header separator
_HOSTPORT = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:;?>\s\[\]]+))(?::(?P<port>\d{1,5})(?!\d))?"
)
# RFC 3966 global (+...) or local number, visual separators included
_TEL = re.compile(r"\+?[0-9A-Fa-f*#().-]+")


class SipUri(NamedTuple):
    """The parts of a SIP URI rtm uses; ``transport`` is upper case (TLS for ``sips:``).

    A ``tel:`` URI's number is its ``user``; its ``host`` is ''.
    """

    scheme: str
    user: str
    host: str
    port: int | None
    transport: str | None


class Address(NamedTuple):
    ip: str | None
    port: int | None
    transport: str | None


NOWHERE = Address(None, None, None)


def parse(text: str | None, *, bare: bool = False) -> SipUri | None:
    """The parts of a SIP or tel URI, or None when ``text`` is not one.

    With ``bare``, text without a scheme (``host``, ``host:5060``, ``[2001:db8::1]``,
    ``alice@host``) is read as a ``sip:`` URI; ``other:...`` is still not one.
    """
    if not text:
        return None
    text = _addr_spec(text)
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if colon and scheme == "tel":
        number = rest.split(";", 1)[0].strip()
        return SipUri("tel", number, "", None, None) if _TEL.fullmatch(number) else None
    if not colon or scheme not in SIP_SCHEMES:
        # "host:5060", "[v6]", "alice@host:5060": no scheme; "mailto:x": another scheme.
        scheme_less = not colon or rest[:1].isdigit() or not _SCHEME.fullmatch(scheme)
        if not (bare and scheme_less):
            return None
        scheme, rest = "sip", text
    # The user part ends at its '@' and may hold ';' and ':' (``alice;day=tuesday``,
    # ``user:password``); only the headers after '?' are past it.
    at = rest.split("?", 1)[0].rfind("@")
    user = rest[:at].split(":", 1)[0] if at >= 0 else ""
    hostport = rest[at + 1 :]
    match = _HOSTPORT.match(hostport)
    if not match:
        return None
    port = int(match.group("port")) if match.group("port") else None
    if port is not None and not 0 < port < 65536:
        port = None
    transport = _transport_param(hostport) or ("TLS" if scheme == "sips" else None)
    return SipUri(scheme, user, match.group("v6") or match.group("host"), port, transport)


def _addr_spec(text: str) -> str:
    """The URI of a name-addr (``"Bob" <sip:bob@host>;tag=1``); any other text, stripped."""
    quoted = _QUOTED.match(text)
    rest = text[quoted.end() :] if quoted else text
    if "<" in rest:
        return rest[rest.index("<") + 1 :].split(">", 1)[0].strip()
    return text.strip()


def _transport_param(rest: str) -> str | None:
    for param in rest.split("?", 1)[0].split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "transport" and value.strip():
            return value.strip().upper()
    return None


def user_of(text: str | None) -> str:
    """``sip:alice@example.com`` (or ``"A" <sip:alice:secret@x>``) -> ``alice``; '' for none."""
    uri = parse(text)
    return uri.user if uri else ""


def split_aor(aor: str) -> tuple[str, str]:
    """usrloc's AoR as (user, domain): ``alice@example.com`` -> (alice, example.com),
    ``alice`` (use_domain 0) -> (alice, '')."""
    uri = parse(aor, bare=True)
    if uri is None or not uri.host:
        return aor, ""
    if not uri.user:  # no '@': the whole AoR, bar a scheme, is the user
        scheme, colon, rest = aor.partition(":")
        return (rest if colon and scheme.lower() in SIP_SCHEMES else aor), ""
    domain = f"[{uri.host}]" if ":" in uri.host else uri.host
    return uri.user, domain if uri.port is None else f"{domain}:{uri.port}"


# A SIP server listens on a few sockets, and every contact names one: a first read of 100k
# contacts parses the same few strings 100k times.
@functools.lru_cache(maxsize=256)
def parse_socket(socket: str | None) -> Address:
    """Kamailio's ``proto:ip:port`` socket string (``udp:127.0.0.1:5060``, ``tcp:[::1]:5060``)."""
    if not socket:
        return NOWHERE
    proto, sep, rest = socket.strip().partition(":")
    if not sep:
        return NOWHERE
    match = _HOSTPORT.match(rest)
    if not match:
        return Address(None, None, proto.upper() or None)
    port = int(match.group("port")) if match.group("port") else None
    return Address(match.group("v6") or match.group("host"), port, proto.upper() or None)


def _address(text: str | None) -> Address:
    uri = parse(text)
    return Address(uri.host, uri.port, uri.transport) if uri and uri.host else NOWHERE


def contact_address(contact: str | None, received: str | None, socket: str | None) -> Address:
    """Where the contact is reachable: ``received`` (NAT) when set, else the contact URI.

    Transport comes from the socket the REGISTER arrived on, else ``;transport=``, else UDP.
    """
    declared = _address(contact)
    source = _address(received) if received else NOWHERE
    if source.ip is None:
        source = declared
    transport = parse_socket(socket).transport or source.transport or declared.transport
    transport = transport or "UDP"
    port = source.port
    if port is None and source.ip is not None:
        port = DEFAULT_PORTS.get(transport, 5060)
    return Address(source.ip, port, transport)

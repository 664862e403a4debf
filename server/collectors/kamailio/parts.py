"""What Kamailio knows about trunks, parsed from ``uac.reg_dump`` and ``dispatcher.list``.

``uac.reg_dump`` carries ``auth_password`` and ``auth_ha1`` in clear text. ``uac_parts``
copies out only the fields named below and drops those two from the reply it was given, so no
row, log line, error or repr built afterwards can hold them. Every field is hostile input:
anything malformed is skipped, never raised.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ...sip.probes import PROBED_PORTS, Target
from ...sip.uri import parse

SECRETS = ("auth_password", "auth_ha1")
MAX_TEXT = 256


@dataclass(frozen=True)
class TrunkPart:
    """One uac registration or one dispatcher gateway, without any credential."""

    kind: str  # "uac" or "dispatcher"
    name: str  # uac l_uuid; dispatcher duid (else its URI)
    flags: int | str  # uac flag bits; dispatcher FLAGS letters
    target: Target | None
    username: str = ""

    @property
    def key(self) -> str:
        """Identifies this part across fetches (for the hold-previous-state rule)."""
        return f"{self.kind}:{self.name}"


def _text(value: object) -> str:
    return value[:MAX_TEXT] if isinstance(value, str) else ""


def target_of(uri: str) -> Target | None:
    """Where a SIP URI or bare host (``sip:host:port;transport=tcp``, ``host:5060``) answers."""
    parsed = parse(uri, bare=True)
    if parsed is None or not parsed.host:  # tel: has no host
        return None
    transport = parsed.transport if parsed.transport in PROBED_PORTS else "UDP"
    return Target(parsed.host, parsed.port or PROBED_PORTS[transport], transport)


def uac_parts(result: Any) -> list[TrunkPart]:
    """The registration trunks of a ``uac.reg_dump`` result; credentials are dropped."""
    entries = result if isinstance(result, list) else []
    parts = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        for secret in SECRETS:
            entry.pop(secret, None)
        name, flags = _text(entry.get("l_uuid")), entry.get("flags")
        if not name or not isinstance(flags, int) or isinstance(flags, bool):
            continue
        proxy = _text(entry.get("auth_proxy")) or _text(entry.get("r_domain"))
        username = _text(entry.get("r_username")) or _text(entry.get("auth_username"))
        parts.append(TrunkPart("uac", name, flags, target_of(proxy), username))
    return parts


def _destinations(result: Any) -> Iterator[dict[str, Any]]:
    records = result.get("RECORDS") if isinstance(result, dict) else None
    for record in records if isinstance(records, list) else []:
        group = record.get("SET") if isinstance(record, dict) else None
        targets = group.get("TARGETS") if isinstance(group, dict) else None
        for item in targets if isinstance(targets, list) else []:
            dest = item.get("DEST") if isinstance(item, dict) else None
            if isinstance(dest, dict):
                yield dest


def dispatcher_parts(result: Any) -> list[TrunkPart]:
    """The gateways of a ``dispatcher.list`` result, named by their ``duid`` when they have one."""
    parts = []
    for dest in _destinations(result):
        uri, flags = _text(dest.get("URI")), dest.get("FLAGS")
        if not uri or not isinstance(flags, str):
            continue
        attrs = dest.get("ATTRS")
        duid = _text(attrs.get("DUID")) if isinstance(attrs, dict) else ""
        parts.append(TrunkPart("dispatcher", duid or uri, flags[:4], target_of(uri)))
    return parts

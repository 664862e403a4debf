"""Kamailio's contacts as rtm rows: from ``ul.dump``, ``ul.lookup`` and evapi events.

All three say the same things in different shapes; each is turned into ul.dump's own field
names (``Ruid``, ``Address``, ``Expires``...) and then into one wire row per contact. Every
field is hostile input: a malformed part is skipped, never raised.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ...rows import Row
from ...sip import uri
from ...times import iso

NOT_SET = "[not set]"
MAX_TEXT = 1024
MAX_EXPIRES = 2**37  # year 6325: what iso() can still write
# What an evapi event's contact may carry, and the ul.dump name each one stands for.
EVENT_TEXT = {
    "ruid": "Ruid",
    "address": "Address",
    "received": "Received",
    "socket": "Socket",
    "user_agent": "User-Agent",
    "call_id": "Call-ID",
}
EVENT_NUMBERS = {"cseq": "CSeq", "server_id": "Server-Id"}

# A phone re-registers with the same AoR and addresses: parse each once (bounded caches;
# every REGISTER event would otherwise parse them again).
split_aor = functools.lru_cache(maxsize=1 << 16)(uri.split_aor)
contact_address = functools.lru_cache(maxsize=1 << 16)(uri.contact_address)

Contact = Mapping[str, Any]
# (AoR, one contact in ul.dump's field names)
Listed = tuple[str, Contact]


@dataclass(frozen=True)
class Held:
    """The expiry given to one registration (Call-ID and CSeq), kept while it is unchanged."""

    expires_at: int
    call_id: str | None
    cseq: object


def text(contact: Contact, name: str) -> str | None:
    value = contact.get(name)
    if value is None or value == NOT_SET or value == "":
        return None
    return str(value)[:MAX_TEXT]


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def contacts_in_dump(dump: Any) -> Iterator[Listed]:
    """(AoR, contact) pairs of a ``ul.dump`` result; malformed parts are skipped."""
    domains = dump.get("Domains") if isinstance(dump, dict) else None
    for domain in domains if isinstance(domains, list) else ():
        inner = domain.get("Domain") if isinstance(domain, dict) else None
        aors = inner.get("AoRs") if isinstance(inner, dict) else None
        for aor in aors if isinstance(aors, list) else ():
            info = aor.get("Info") if isinstance(aor, dict) else None
            if isinstance(info, dict):
                yield from contacts_in_lookup(info)


def contacts_in_lookup(info: Any) -> Iterator[Listed]:
    """(AoR, contact) pairs of one AoR record (``ul.lookup`` result or a dump's ``Info``)."""
    aor = info.get("AoR") if isinstance(info, dict) else None
    contacts = info.get("Contacts") if isinstance(info, dict) else None
    if not isinstance(aor, str) or not isinstance(contacts, list):
        return
    for item in contacts:
        contact = item.get("Contact") if isinstance(item, dict) else None
        if isinstance(contact, dict):
            yield aor, contact


def contact_in_event(item: Any) -> dict[str, Any] | None:
    """One contact of an evapi event (lab/kamailio.cfg, route RTM_HINT) in ul.dump's names,
    its absolute expiry as ``Expires-At``; None when it lacks a ruid or an expiry."""
    if not isinstance(item, dict):
        return None
    contact: dict[str, Any] = {}
    for field, name in EVENT_TEXT.items():
        value = item.get(field)
        if isinstance(value, str):
            contact[name] = value[:MAX_TEXT]
    for field, name in EVENT_NUMBERS.items():
        number = _integer(item.get(field))
        if number is not None:
            contact[name] = number
    expires = _integer(item.get("expires"))
    if not contact.get("Ruid") or expires is None or not 0 <= expires < MAX_EXPIRES:
        return None
    contact["Expires-At"] = expires
    return contact


def is_gone(contact: Contact) -> bool:
    """True for "expired" / "deleted" (kept by Kamailio until its timer sweeps) or nonsense."""
    if "Expires-At" in contact:
        return False
    left = contact.get("Expires")
    return left != "permanent" and _integer(left) is None


def expires_at(contact: Contact, now: float, held: Held | None) -> int | None:
    """Unix expiry of a contact that is not gone (None: permanent).

    An event says it outright; a dump or lookup says seconds left at ``now`` (when the
    request was sent: Kamailio reads its clock once per call), so two reads can differ by a
    second or more for the same registration. A registration whose Call-ID and CSeq did not
    change did not move its expiry, so the value held for it is kept.
    """
    if _integer(contact.get("Expires-At")) is not None:
        return int(contact["Expires-At"]) or None
    left = _integer(contact.get("Expires"))
    if left is None:
        return None
    if held is not None and (held.call_id, held.cseq) == (
        text(contact, "Call-ID"),
        contact.get("CSeq"),
    ):
        return held.expires_at
    return int(now) + left


def contact_id(aor: str, contact: Contact) -> str:
    return text(contact, "Ruid") or f"{aor}|{text(contact, 'Address') or ''}"


def contact_row(aor: str, contact: Contact, account: Mapping[str, str], expiry: int | None) -> Row:
    """One wire row for one contact."""
    username, domain = split_aor(aor)
    address = text(contact, "Address") or ""
    where = contact_address(address, text(contact, "Received"), text(contact, "Socket"))
    return {
        "id": contact_id(aor, contact),
        "username": username,
        "domain": domain,
        "owner": account.get("owner", ""),
        "caller_id": account.get("caller_id", ""),
        "caller_id_2": account.get("caller_id_2", ""),
        "group": account.get("group", ""),
        "ip": where.ip,
        "port": where.port,
        "transport": where.transport,
        "expires": iso(expiry),
        "user_agent": text(contact, "User-Agent") or "",
        "contact": address,
        "node": _integer(contact.get("Server-Id")),
    }

"""Registered contacts straight from Kamailio's memory: ``ul.dump`` over JSON-RPC.

One row per contact, keyed by its Ruid, joined with rtm's ``accounts`` directory (owner,
caller ids, group). ``Expires`` is seconds left at fetch time; contacts Kamailio reports as
"expired" or "deleted" (kept until its usrloc timer sweeps them) are gone for us.

With ``RTM_KAMAILIO_EVAPI`` set the collector also has ``watch``: Kamailio pushes an event
per REGISTER / expiry and rtm refreshes just that AoR with ``ul.lookup``; the full poll
becomes a slow reconcile.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ...config import Config
from ...rows import Row, Rows
from ...sip.uri import contact_address, split_aor
from ...times import iso
from ..base import Apply, RowChanges
from ..directory import AccountDirectory
from .evapi import watch_events
from .rpc import KamailioRpc, RpcError, http_url

NOT_SET = "[not set]"
AOR_NOT_FOUND = 500
# One AoR is tiny: a lookup slower than this means Kamailio is in trouble; the poll goes on.
LOOKUP_TIMEOUT = 5.0
# Even with a long poll interval a dump never holds the source longer than this.
MAX_DUMP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Held:
    """What the last fetch said about a contact, to keep its expiry steady between polls."""

    expires_at: int
    call_id: str | None
    cseq: object


def _text(contact: Mapping[str, Any], name: str) -> str | None:
    value = contact.get(name)
    if value is None or value == NOT_SET:
        return None
    return str(value)


def contacts_in_dump(dump: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(AoR, contact) pairs of a ``ul.dump`` result; malformed parts are skipped."""
    domains = dump.get("Domains") if isinstance(dump, dict) else None
    for domain in domains if isinstance(domains, list) else ():
        inner = domain.get("Domain") if isinstance(domain, dict) else None
        aors = inner.get("AoRs") if isinstance(inner, dict) else None
        for aor in aors if isinstance(aors, list) else ():
            info = aor.get("Info") if isinstance(aor, dict) else None
            if isinstance(info, dict):
                yield from contacts_in_lookup(info)


def contacts_in_lookup(info: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(AoR, contact) pairs of one AoR record (``ul.lookup`` result or a dump's ``Info``)."""
    aor = info.get("AoR") if isinstance(info, dict) else None
    contacts = info.get("Contacts") if isinstance(info, dict) else None
    if not isinstance(aor, str) or not isinstance(contacts, list):
        return
    for item in contacts:
        contact = item.get("Contact") if isinstance(item, dict) else None
        if isinstance(contact, dict):
            yield aor, contact


def is_gone(contact: Mapping[str, Any]) -> bool:
    """True for "expired" / "deleted" (kept by Kamailio until its timer sweeps) or nonsense."""
    left = contact.get("Expires")
    if left == "permanent":
        return False
    return not isinstance(left, int) or isinstance(left, bool)


def expires_at(contact: Mapping[str, Any], now: float, held: Held | None) -> int | None:
    """Unix expiry from the seconds left (None: permanent) of a contact that is not gone.

    Seconds left are whole, so two polls can compute expiries a second apart for the same
    registration; the previous value is kept unless the registration itself changed.
    """
    left = contact.get("Expires")
    if not isinstance(left, int) or isinstance(left, bool):
        return None
    value = int(now) + left
    same = held is not None and (held.call_id, held.cseq) == (
        _text(contact, "Call-ID"),
        contact.get("CSeq"),
    )
    if held is not None and same and abs(held.expires_at - value) <= 1:
        return held.expires_at
    return value


def contact_row(
    aor: str, contact: Mapping[str, Any], account: Mapping[str, str], expiry: int | None
) -> Row:
    """One wire row for one contact."""
    username, domain = split_aor(aor)
    address = _text(contact, "Address") or ""
    where = contact_address(address, _text(contact, "Received"), _text(contact, "Socket"))
    node = contact.get("Server-Id")
    return {
        "id": _text(contact, "Ruid") or f"{aor}|{address}",
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
        "user_agent": _text(contact, "User-Agent") or "",
        "contact": address,
        "node": node if isinstance(node, int) and not isinstance(node, bool) else None,
    }


class KamailioRegistrationCollector:
    """Contacts from ``ul.dump``; see the module docstring."""

    table = "accounts"

    def __init__(self, rpc: KamailioRpc, directory: AccountDirectory) -> None:
        self.rpc = rpc
        self.directory = directory
        self._held: dict[str, Held] = {}
        # AoR -> (monotonic time, rows) of the latest hint, so a full dump that started
        # before the hint cannot bring back what the hint already replaced.
        self._hinted: dict[tuple[str, str], tuple[float, dict[str, Row]]] = {}
        # AoR -> the row ids last reported for it, so a hint deletes only that AoR's rows.
        self._shown: dict[tuple[str, str], set[str]] = {}

    async def fetch(self) -> Rows:
        started = time.monotonic()
        dump = await self.rpc.call("ul.dump")
        await self.directory.refresh()
        rows = self._rows(contacts_in_dump(dump), replace_held=True)
        for aor, (hinted_at, hinted_rows) in list(self._hinted.items()):
            if hinted_at < started:
                del self._hinted[aor]
                continue
            rows = {k: r for k, r in rows.items() if (r["username"], r["domain"]) != aor}
            rows.update(hinted_rows)
        shown: dict[tuple[str, str], set[str]] = {}
        for key, row in rows.items():
            shown.setdefault((row["username"], row["domain"]), set()).add(key)
        self._shown = shown
        return rows

    async def lookup(self, aor: str) -> dict[str, Row]:
        """The AoR's current rows (empty when Kamailio has none)."""
        try:
            info = await self.rpc.call("ul.lookup", "location", aor, within=LOOKUP_TIMEOUT)
        except RpcError as exc:
            if exc.code == AOR_NOT_FOUND:
                return {}
            raise
        return self._rows(contacts_in_lookup(info), replace_held=False)

    def _rows(
        self, contacts: Iterator[tuple[str, Mapping[str, Any]]], *, replace_held: bool
    ) -> dict[str, Row]:
        now = time.time()
        rows: dict[str, Row] = {}
        held: dict[str, Held] = {}
        for aor, contact in contacts:
            key = _text(contact, "Ruid") or f"{aor}|{_text(contact, 'Address') or ''}"
            if is_gone(contact):
                continue
            expiry = expires_at(contact, now, self._held.get(key))
            account = self.directory.account(*split_aor(aor))
            row = contact_row(aor, contact, account, expiry)
            rows[row["id"]] = row
            if expiry is not None:
                held[row["id"]] = Held(expiry, _text(contact, "Call-ID"), contact.get("CSeq"))
        if replace_held:
            self._held = held
        else:
            self._held.update(held)
        return rows

    async def close(self) -> None:
        await self.rpc.close()
        await self.directory.close()


class HintedKamailioRegistrationCollector(KamailioRegistrationCollector):
    """Adds ``watch``: the runner runs it next to polling when evapi is configured."""

    def __init__(self, rpc: KamailioRpc, directory: AccountDirectory, evapi_url: str) -> None:
        super().__init__(rpc, directory)
        self.evapi_url = evapi_url

    async def watch(self, apply: Apply) -> None:
        """Refresh each AoR named by evapi events; returns or raises when the link is lost.

        Events that arrive together are merged, so a burst (every phone re-registering after
        a restart) costs one ``ul.lookup`` per AoR, not one per event.
        """
        async for events in watch_events(self.evapi_url):
            aors = dict.fromkeys(e["aor"] for e in events if isinstance(e.get("aor"), str))
            await self.directory.refresh()
            for aor in filter(None, aors):
                rows = await self.lookup(aor)
                user, domain = split_aor(aor)
                self._hinted[(user, domain)] = (time.monotonic(), rows)
                shown = self._shown.get((user, domain), set())
                self._shown[(user, domain)] = set(rows)
                apply(RowChanges(upsert=rows, delete=shown - rows.keys()))


def open_source(table: str, url: str, config: Config) -> KamailioRegistrationCollector:
    # Answer a little before the runner gives up, so the operator sees our clearer error.
    interval = config.poll.get(table, 1.0)
    timeout = min(max(5.0, 3 * interval) * 0.9, MAX_DUMP_TIMEOUT)
    rpc = KamailioRpc(http_url(url), timeout=timeout)
    directory = AccountDirectory(config.db)
    if config.kamailio_evapi:
        return HintedKamailioRegistrationCollector(rpc, directory, config.kamailio_evapi)
    return KamailioRegistrationCollector(rpc, directory)

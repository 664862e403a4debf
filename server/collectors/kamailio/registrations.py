"""Registered contacts straight from Kamailio's memory: ``ul.dump`` over JSON-RPC, and with
``RTM_KAMAILIO_EVAPI`` the evapi events that say what each REGISTER changed.

One row per contact, keyed by its Ruid, joined with rtm's ``accounts`` directory (owner,
caller ids, group); contacts Kamailio reports as "expired" or "deleted" are gone for us.

The full read is a ``ul.dump`` run by :mod:`.dump` (one in flight, a limit that fits its
size, a duty cap, backoff after a timeout). ``fetch`` waits for it a little and otherwise
answers "unchanged" while it runs; the first read and a failing dump make the source stale
with the reason. Without evapi the dump is the poll; with evapi it is the start-up read,
the reconcile (``RTM_RECONCILE``) and the read after the event link reconnected, and each
event changes only its AoR's rows (:mod:`.hints`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from ...config import Config
from ...rows import Row, Rows
from ..base import SourceError
from ..directory import AccountDirectory
from .contacts import (
    Contact,
    Held,
    Listed,
    contact_id,
    contact_row,
    contacts_in_dump,
    expires_at,
    is_gone,
    split_aor,
    text,
)
from .dump import DumpSchedule, DumpTask
from .rpc import KamailioRpc, http_url

Aor = tuple[str, str]
# Without evapi the dump is the poll; rtm keeps Kamailio dumping at most this share of time.
POLL_DUTY = 0.1
# With evapi the dump only checks the events: at 100k (30 s a dump) every 25 min at most.
RECONCILE_DUTY = 0.02


class KamailioRegistrationCollector:
    """Contacts from ``ul.dump``; see the module docstring."""

    table = "accounts"

    def __init__(
        self, rpc: KamailioRpc, directory: AccountDirectory, schedule: DumpSchedule, patience: float
    ) -> None:
        self.rpc = rpc
        self.directory = directory
        self.dump = DumpTask(lambda limit: rpc.call("ul.dump", within=limit), schedule)
        self.patience = patience
        self._rows: dict[str, Row] = {}  # what this source last said, dumps and hints alike
        self._by_aor: dict[Aor, set[str]] = {}
        self._held: dict[str, Held] = {}
        # AoR -> monotonic time of its latest hint: a dump that started before it is older
        # news for that AoR and leaves its rows as the hint made them.
        self._hinted: dict[Aor, float] = {}
        self._read_once = False

    def may_start_dump(self) -> bool:
        return True

    async def fetch(self) -> Rows | None:
        if self.may_start_dump():
            self.dump.start_if_due()
        try:
            dumped = await self.dump.wait(self.patience)
        except SourceError as exc:
            raise SourceError(self._failing()) from exc
        if dumped is None:
            if self.dump.last_error is not None:
                raise SourceError(self._failing())
            if not self._read_once:
                raise SourceError("waiting for Kamailio's first ul.dump")
            return None
        await self.directory.refresh()
        rows = self._take_dump(contacts_in_dump(dumped.result), dumped.sent_at, dumped.started)
        self._read_once = True
        return rows

    def _failing(self) -> str:
        """Why the source is stale while its dump keeps failing, and what happens next."""
        if self.dump.running:
            return f"{self.dump.last_error}; trying ul.dump again now"
        wait = max(self.dump.schedule.next_at - time.monotonic(), 0.0)
        return f"{self.dump.last_error}; next ul.dump in {wait:.0f} s"

    def _take_dump(self, contacts: Iterable[Listed], sent_at: float, started: float) -> Rows:
        """Make a dump this source's rows, except for the AoRs hinted since it started."""
        hinted = {aor for aor, at in self._hinted.items() if at >= started}
        self._hinted = {aor: self._hinted[aor] for aor in hinted}
        held: dict[str, Held] = {}
        rows: dict[str, Row] = {}
        for aor, contact in contacts:
            row = self._row(aor, contact, sent_at, held)
            if row is not None and (row["username"], row["domain"]) not in hinted:
                rows[row["id"]] = row
        for hinted_aor in hinted:
            for key in self._by_aor.get(hinted_aor, set()):
                rows[key] = self._rows[key]
                if key in self._held:
                    held[key] = self._held[key]
        self._held = held
        self._rows = rows
        self._by_aor = {}
        for key, row in rows.items():
            self._by_aor.setdefault((row["username"], row["domain"]), set()).add(key)
        return rows

    def _row(self, aor: str, contact: Contact, now: float, held: dict[str, Held]) -> Row | None:
        """One contact's row (the very object shown before when nothing changed), or None."""
        if is_gone(contact):
            return None
        expiry = expires_at(contact, now, self._held.get(contact_id(aor, contact)))
        row = contact_row(aor, contact, self.directory.account(*split_aor(aor)), expiry)
        if expiry is not None:
            held[row["id"]] = Held(expiry, text(contact, "Call-ID"), contact.get("CSeq"))
        before = self._rows.get(row["id"])
        return before if before == row else row

    async def close(self) -> None:
        await self.dump.close()
        await self.rpc.close()
        await self.directory.close()


def open_source(table: str, url: str, config: Config) -> KamailioRegistrationCollector:
    """Registrations from the Kamailio at ``url``; with ``RTM_KAMAILIO_EVAPI`` its hints too."""
    from .hints import HintedKamailioRegistrationCollector

    interval = config.poll.get(table, 1.0)
    # Wait for a dump a little less than the runner waits for fetch, then answer "unchanged".
    patience = max(5.0, 3 * interval) * 0.8
    rpc = KamailioRpc(http_url(url), timeout=patience)
    directory = AccountDirectory(config.db)
    if config.kamailio_evapi:
        schedule = DumpSchedule(every=config.reconcile, duty=RECONCILE_DUTY)
        return HintedKamailioRegistrationCollector(
            rpc, directory, schedule, patience, config.kamailio_evapi
        )
    schedule = DumpSchedule(every=interval, duty=POLL_DUTY)
    return KamailioRegistrationCollector(rpc, directory, schedule, patience)

"""Kamailio's evapi events applied as they come: each changes only its AoR's rows.

lab/kamailio.cfg sends, after each REGISTER, the AoR with every contact it now has (route
RTM_HINT), and, when usrloc's timer removes an expired contact, that contact's ruid. Such an
event costs rtm no RPC and the hub O(contacts of the AoR). An event without those fields
(an older config that names only the AoR) is answered with one ``ul.lookup`` per AoR. A
malformed event or contact is ignored; nothing an event says can stop the watcher.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from ...rows import Row, Rows
from ..base import Apply, RowChanges, SourceError
from ..directory import AccountDirectory
from .contacts import MAX_TEXT, Held, Listed, contact_in_event, contacts_in_lookup, split_aor
from .dump import DumpSchedule
from .evapi import CONNECT_TIMEOUT, watch_events
from .registrations import KamailioRegistrationCollector
from .rpc import KamailioRpc, RpcError

log = logging.getLogger("rtm.collectors")

AOR_NOT_FOUND = 500
# One AoR is tiny: a lookup slower than this means Kamailio is in trouble.
LOOKUP_TIMEOUT = 5.0
MAX_CONTACTS = 100  # per event; more is not a phone's AoR
# How stale an owner or caller id on a hinted row may be (the directory is re-read if the
# store changed, at most this often).
DIRECTORY_EVERY = 1.0


class HintedKamailioRegistrationCollector(KamailioRegistrationCollector):
    """Adds ``watch``: the runner runs it next to polling when evapi is configured."""

    def __init__(
        self,
        rpc: KamailioRpc,
        directory: AccountDirectory,
        schedule: DumpSchedule,
        patience: float,
        evapi_url: str,
    ) -> None:
        super().__init__(rpc, directory, schedule, patience)
        self.evapi_url = evapi_url
        self.lookups = 0  # ul.lookup calls made, for tests and the bench
        self._link_tried = asyncio.Event()
        self._created = time.monotonic()
        self._directory_at = 0.0
        # Why the table is stale though Kamailio may answer: the event link is down (every
        # change is missed; the next dump may be minutes away), or back but not yet caught
        # up by a dump that started after it (a restarted Kamailio holds other contacts).
        self._link_lost: str | None = None
        self._back_at: float | None = None  # when the link came back after a loss
        self._dumped_at = -float("inf")  # when the last dump taken started
        self._unshown: Rows | None = None  # a dump's rows taken while the table was stale

    async def fetch(self) -> Rows | None:
        rows = await super().fetch()  # a failing dump's own error wins: it says more
        if self._back_at is not None and self._dumped_at >= self._back_at:
            self._link_lost = self._back_at = None  # caught up
        if self._link_lost is not None:
            if rows is not None:
                self._unshown = rows
            raise SourceError(self._link_lost)
        if rows is None and self._unshown is not None:
            rows, self._unshown = self._unshown, None
        return rows

    def _take_dump(self, contacts: Iterable[Listed], sent_at: float, started: float) -> Rows:
        self._dumped_at = started
        return super()._take_dump(contacts, sent_at, started)

    def may_start_dump(self) -> bool:
        # The first dump waits for the first try of the event link, so that no change made
        # between the two is missed (and no second dump is needed to cover it).
        return self._link_tried.is_set() or time.monotonic() - self._created > CONNECT_TIMEOUT

    def _connected(self) -> None:
        self._link_tried.set()
        if not self.dump.dumps:  # the first dump is still to come: it catches up
            self._link_lost = None
            return
        # Events may have been missed while the link was down, and Kamailio may have
        # restarted: stale until a dump that starts now says what it holds.
        now = time.monotonic()
        self._back_at = now
        self._link_lost = f"evapi {self.evapi_url}: link back; catching up with a ul.dump"
        log.info("%s", self._link_lost)
        self.dump.schedule.want(now, urgent=True)

    async def watch(self, apply: Apply) -> None:
        """Apply each batch of evapi events; returns or raises when the link is lost."""
        try:
            async for events in watch_events(self.evapi_url, self._connected):
                if time.monotonic() >= self._directory_at:
                    # at most every DIRECTORY_EVERY s: 160 REGISTERs/s need no 160 reads
                    self._directory_at = time.monotonic() + DIRECTORY_EVERY
                    await self.directory.refresh()
                changes, unnamed = self.take_events(events)
                for aor in unnamed:
                    await self._look_up(aor, changes)
                if changes:
                    apply(changes)
        except SourceError as exc:  # lost or refused (not a shutdown: that is a cancel)
            self._link_lost = f"{exc}; reconnecting (changes are not seen meanwhile)"
            self._back_at = None
            raise
        finally:
            self._link_tried.set()

    def take_events(self, events: Iterable[Any]) -> tuple[RowChanges, list[str]]:
        """The changes a batch of events says outright, and the AoRs that need a lookup."""
        changes, unnamed, now = RowChanges(), [], time.time()
        for event in events:
            aor = event.get("aor") if isinstance(event, dict) else None
            if not isinstance(aor, str) or not aor or len(aor) > MAX_TEXT:
                continue
            contacts = event.get("contacts")
            if isinstance(contacts, list) and len(contacts) <= MAX_CONTACTS:
                parsed = [contact_in_event(item) for item in contacts]
                if all(contact is not None for contact in parsed):
                    self._set_aor(aor, [(aor, c) for c in parsed if c is not None], now, changes)
                    continue
            ruid = event.get("ruid")
            if event.get("event") == "expired" and isinstance(ruid, str):
                self._drop(aor, ruid, changes)
                continue
            unnamed.append(aor)
        return changes, list(dict.fromkeys(unnamed))

    async def _look_up(self, aor: str, changes: RowChanges) -> None:
        now = time.time()
        self.lookups += 1
        try:
            info = await self.rpc.call("ul.lookup", "location", aor, within=LOOKUP_TIMEOUT)
        except RpcError as exc:
            if exc.code != AOR_NOT_FOUND:
                return self._lookup_failed(aor, exc)
            info = None
        except SourceError as exc:
            return self._lookup_failed(aor, exc)
        self._set_aor(aor, list(contacts_in_lookup(info)), now, changes)

    def _lookup_failed(self, aor: str, exc: Exception) -> None:
        # That AoR may now be wrong: the next dump (as soon as the duty cap allows) mends it.
        log.warning("ul.lookup %s failed: %s", aor[:80], exc)
        self.dump.schedule.want(time.monotonic())

    async def lookup(self, aor: str) -> dict[str, Row]:
        """The AoR's current rows from ``ul.lookup`` (empty when Kamailio has none)."""
        changes = RowChanges()
        await self._look_up(aor, changes)
        return {key: self._rows[key] for key in self._by_aor.get(split_aor(aor), ())}

    def _set_aor(self, aor: str, contacts: list[Listed], now: float, changes: RowChanges) -> None:
        """Make ``contacts`` the AoR's rows; add to ``changes`` what that changed."""
        key = split_aor(aor)
        held: dict[str, Held] = {}
        rows = {}
        for name, contact in contacts:
            row = self._row(name, contact, now, held)
            if row is not None:
                rows[row["id"]] = row
        for gone in self._by_aor.get(key, set()) - rows.keys():
            self._forget(gone, changes)
        for row_id, row in rows.items():
            if self._rows.get(row_id) is not row:
                changes.delete.discard(row_id)
                changes.upsert[row_id] = row
            self._rows[row_id] = row
        self._held.update(held)
        self._by_aor[key] = set(rows)
        self._hinted[key] = time.monotonic()

    def _drop(self, aor: str, ruid: str, changes: RowChanges) -> None:
        key = split_aor(aor)
        shown = self._by_aor.get(key, set())
        if ruid in shown:
            shown.discard(ruid)
            self._forget(ruid, changes)
        self._hinted[key] = time.monotonic()

    def _forget(self, row_id: str, changes: RowChanges) -> None:
        self._rows.pop(row_id, None)
        self._held.pop(row_id, None)
        changes.upsert.pop(row_id, None)
        changes.delete.add(row_id)

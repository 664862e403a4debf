"""Registered contacts from the embedded store's ``location`` table (Kamailio's usrloc schema),
joined with the ``accounts`` directory."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from ..config import Config
from ..rows import Row, Rows
from ..sip.uri import contact_address
from ..times import iso, julian_to_unix
from .base import RowChanges, in_turns
from .directory import DIRECTORY_SQL, Directory
from .sqlite_source import ChangeLog, LoggedCollector, SqliteSource, path_from_url, query_keys

# Every contact, expired ones too: the runner hides a contact at its expiry (O(log n)) and
# a writer deletes it when its timer sweeps; filtering here would make the full read and the
# change feed disagree about a contact that expired between them.
CONTACTS_SQL = """
SELECT id, ruid, username, domain, contact, received, expires, user_agent, socket, server_id
FROM location
"""
CONTACTS_BY_ID_SQL = CONTACTS_SQL + " WHERE id IN ({keys})"
CONTACTS_BY_USER_SQL = CONTACTS_SQL + " WHERE username IN ({keys})"
DIRECTORY_BY_USER_SQL = DIRECTORY_SQL + " WHERE username IN ({keys})"

V = TypeVar("V")


def contact_row(
    record: sqlite3.Row | Mapping[str, Any], account: Mapping[str, str], expires: str | None
) -> Row:
    """One wire row for one ``location`` record, in SQLite or PostgreSQL; ``expires`` is the
    record's expiry as ISO text (the two stores write times differently), None for never."""
    contact = record["contact"] or ""
    address = contact_address(contact, record["received"] or None, record["socket"] or None)
    return {
        "id": record["ruid"] or f"location:{record['id']}",
        "username": record["username"] or "",
        "domain": record["domain"] or "",
        "owner": account.get("owner", ""),
        "caller_id": account.get("caller_id", ""),
        "caller_id_2": account.get("caller_id_2", ""),
        "group": account.get("group", ""),
        "ip": address.ip,
        "port": address.port,
        "transport": address.transport,
        "expires": expires,
        "user_agent": record["user_agent"] or "",
        "contact": contact,
        "node": record["server_id"],
    }


class ShownContacts(Generic[V]):
    """location id -> (the record's version, the row it is shown as), for a store whose log
    names ``location`` ids: a deleted record is gone from the table, so the row it was
    shown as is remembered here; and a full read keeps the row of every record whose
    version did not move. Building rows is most of a read's cost, and a table built anew
    beside the one it replaces would hold the rows twice for a moment (a step of RSS at the
    first reconcile that the allocator never gave back).

    ``version`` says what a record's content is: PostgreSQL's ``xmin``, or in SQLite (no
    row versions) the record itself, compared whole; never the log, which the reconcile
    checks.

    Versions and rows are kept in two dicts, not as a (version, row) pair per record: a
    tuple holding a dict stays tracked by the cyclic GC for ever, and a million of them
    made each full collection walk a million objects, ~1.3 s of the loop (GIL held) per
    read of a million contacts (py-spy on a cluster's new leader). Rows of plain values
    are not tracked at all.
    """

    def __init__(self, version: Callable[[Any], V], build: Callable[[Any], Row]) -> None:
        self._version, self._build = version, build
        self._versions: dict[int, V] = {}
        self._rows: dict[int, Row] = {}
        # Taking over (``take_over``): the rows shown whose record was not read yet.
        self._unseeded: dict[str, Row] | None = None

    async def read_all(self, records: list[Any], rebuild: bool) -> Rows:
        """Every record's row, reused when its version is the one last seen (``rebuild``:
        owners, caller ids or groups changed, so none is)."""
        self._unseeded = None  # a full read knows every record: nothing is taken over now
        versions, known = ({}, {}) if rebuild else (self._versions, self._rows)
        rows: dict[str, Row] = {}
        fresh_versions: dict[int, V] = {}
        fresh_rows: dict[int, Row] = {}
        missing = object()
        async for record in in_turns(records):
            location_id, version = record["id"], self._version(record)
            if versions.get(location_id, missing) == version:
                row = known[location_id]
            else:
                row = self._build(record)
            rows[row["id"]] = row
            fresh_versions[location_id], fresh_rows[location_id] = version, row
        self._versions, self._rows = fresh_versions, fresh_rows
        return rows

    # --- taking over rows another process built (a cluster's last leader) ---------------

    def take_over(self, shown: Mapping[str, Row]) -> None:
        """Start from rows another process built and published, ``shown`` as every client
        holds them. Which record each one is comes a part at a time (``seed``) while
        changes go on, so that a million rows hold no change back."""
        self._versions, self._rows = {}, {}
        self._unseeded = dict(shown)

    @property
    def seeding(self) -> bool:
        return self._unseeded is not None

    def seed(self, records: Iterable[Any]) -> RowChanges:
        """Take a part of the records, whole as a full read reads them: each is built, and
        where the row shown for it reads the same, that very row is kept (clients hold
        it); where it differs, or none is shown (expired, new), the one built is a change.
        Nothing the last leader built is trusted beyond what it reads as now: another
        directory setting, another rtm's rows, a change it missed are mended here. A
        record whose row this process built since (``changed``) is newer: left alone."""
        unseeded, versions, rows = self._unseeded, self._versions, self._rows
        assert unseeded is not None
        changes = RowChanges()
        for record in records:
            location_id = record["id"]
            if location_id in versions:
                continue
            row = self._build(record)
            before = unseeded.pop(row["id"], None)
            if before is not None and before == row:
                row = before
            else:
                changes.upsert[row["id"]] = row
            versions[location_id], rows[location_id] = self._version(record), row
        return changes

    def seeded(self) -> set[str]:
        """Every record was read (``seed``): the ids of rows shown whose record is gone (and
        whose id no row built since has: ``changed`` takes those off)."""
        gone, self._unseeded = set(self._unseeded or ()), None
        return gone

    def changed(self, ids: Iterable[int], records: Iterable[Any]) -> RowChanges:
        """The changes for the logged ``ids`` (and the contacts of renamed owners, which are
        remembered as rebuilt, so that no later read brings back the old owner) from the
        ``records`` read for them; an id with no record was deleted."""
        changes = RowChanges()
        found = {record["id"]: record for record in records}
        for location_id in dict.fromkeys([*ids, *found]):
            self._versions.pop(location_id, None)
            before = self._rows.pop(location_id, None)
            current = found.get(location_id)
            shown = None
            if current is not None:
                row = self._build(current)
                changes.upsert[shown := row["id"]] = row
                self._versions[location_id], self._rows[location_id] = self._version(current), row
            if before is not None and before["id"] != shown:
                changes.delete.add(before["id"])  # gone, or shown under another id now
        if self._unseeded is not None:  # taking over: what is said here is said
            for key in changes.upsert.keys() | changes.delete:
                self._unseeded.pop(key, None)
        return changes


class RegistrationCollector(LoggedCollector):
    """Contacts from ``location`` + ``accounts`` in one SQLite file; a ``ChangeFeed``.

    In rtm's store the change log names the contacts (``location`` ids) and the directory
    users that changed; only those are read again, so a REGISTER costs the same at 100k
    contacts as at 1k, and an owner renamed re-reads that user's contacts only. A file
    without the log (one made by Kamailio's ``kamdbctl``) is read whole after each change.
    Every full read (so every reconcile) reuses the rows of records read unchanged
    (``ShownContacts``).
    """

    table = "accounts"

    def __init__(self, path: str) -> None:
        self.source = SqliteSource(path)
        self.log = ChangeLog(self.source, ("location", "accounts"))
        self.directory = Directory()
        # ``_row`` looked up at each call, not bound now: a subclass's own is the one used.
        self._shown = ShownContacts[sqlite3.Row](
            lambda record: record, lambda record: self._row(record)
        )

    async def _read_all(self) -> Rows:
        rebuild = self.directory.load(await self._directory(DIRECTORY_SQL))
        return await self._shown.read_all(await self.source.query(CONTACTS_SQL), rebuild)

    async def _pending(self) -> RowChanges | None:
        logged = await self.log.since()
        if logged is None:
            return None
        users = [str(u) for u in logged.get("accounts", ())]
        ids = logged.get("location", [])
        records = await query_keys(self.source, CONTACTS_BY_ID_SQL, ids)
        if users:  # first, so that every row built below has the new owners
            self.directory.load_users(
                users, await query_keys(self.source, DIRECTORY_BY_USER_SQL, users)
            )
            records += await query_keys(self.source, CONTACTS_BY_USER_SQL, users)
        return self._shown.changed(ids, records)

    async def _directory(self, sql: str) -> list[sqlite3.Row]:
        try:
            return await self.source.query(sql)
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return []  # a Kamailio file has no directory: contacts show without owners

    def _row(self, record: sqlite3.Row) -> Row:
        account = self.directory.account(record["username"] or "", record["domain"] or "")
        return contact_row(record, account, iso(julian_to_unix(record["expires"])))


def open_source(table: str, url: str, config: Config) -> RegistrationCollector:
    return RegistrationCollector(path_from_url(url))

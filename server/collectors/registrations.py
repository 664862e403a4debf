"""Registered contacts from the embedded store's ``location`` table (Kamailio's usrloc schema),
joined with the ``accounts`` directory."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

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


class RegistrationCollector(LoggedCollector):
    """Contacts from ``location`` + ``accounts`` in one SQLite file; a ``ChangeFeed``.

    In rtm's store the change log names the contacts (``location`` ids) and the directory
    users that changed; only those are read again, so a REGISTER costs the same at 100k
    contacts as at 1k, and an owner renamed re-reads that user's contacts only. A file
    without the log (one made by Kamailio's ``kamdbctl``) is read whole after each change.
    Every full read (and so every reconcile) reuses the rows of records that did not change:
    parsing URIs and times is most of its cost at 100k, and a table built anew beside the
    one it replaces would double the rows' memory for a moment (the allocator keeps the
    high-water mark: a step of RSS at the first reconcile that never came back).
    """

    table = "accounts"

    def __init__(self, path: str) -> None:
        self.source = SqliteSource(path)
        self.log = ChangeLog(self.source, ("location", "accounts"))
        self.directory = Directory()
        # location.id -> (the record as last read, the row it is shown as): a deleted record
        # is gone from the file, and a full read keeps the row of a record read unchanged
        # (compared whole, not by a version: SQLite has none, and the reconcile must not
        # trust the log it checks).
        self._known: dict[int, tuple[sqlite3.Row, Row]] = {}

    async def _read_all(self) -> Rows:
        # Owners, caller ids or groups changed: every row is built again.
        known = {} if self.directory.load(await self._directory(DIRECTORY_SQL)) else self._known
        rows: dict[str, Row] = {}
        fresh: dict[int, tuple[sqlite3.Row, Row]] = {}
        async for record in in_turns(await self.source.query(CONTACTS_SQL)):
            held = known.get(record["id"])
            row = held[1] if held is not None and held[0] == record else self._row(record)
            rows[row["id"]] = row
            fresh[record["id"]] = (record, row)
        self._known = fresh
        return rows

    async def _pending(self) -> RowChanges | None:
        logged = await self.log.since()
        if logged is None:
            return None
        changes = RowChanges()
        users = [str(u) for u in logged.get("accounts", ())]
        ids = logged.get("location", [])
        records = await query_keys(self.source, CONTACTS_BY_ID_SQL, ids)
        if users:  # first, so that every row built below has the new owners
            self.directory.load_users(
                users, await query_keys(self.source, DIRECTORY_BY_USER_SQL, users)
            )
            records += await query_keys(self.source, CONTACTS_BY_USER_SQL, users)
        found = {record["id"]: record for record in records}
        # A renamed owner's contacts are rebuilt and remembered like changed ones, so that
        # the next full read does not bring back a row with the old owner.
        for location_id in dict.fromkeys([*ids, *found]):
            before = self._known.pop(location_id, None)
            current = found.get(location_id)
            shown = None
            if current is not None:
                row = self._row(current)
                changes.upsert[shown := row["id"]] = row
                self._known[location_id] = (current, row)
            if before is not None and before[1]["id"] != shown:
                changes.delete.add(before[1]["id"])  # gone, or shown under another id now
        return changes

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

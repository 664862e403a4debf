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
    without the log (one made by Kamailio's ``kamdbctl``) is read whole after each change,
    reusing the rows of records that did not change (parsing URIs and times is most of the
    cost of a full read at 100k).
    """

    table = "accounts"

    def __init__(self, path: str) -> None:
        self.source = SqliteSource(path)
        self.log = ChangeLog(self.source, ("location", "accounts"))
        self.directory = Directory()
        # location.id -> the row id it was shown as (a deleted record is gone from the file).
        self._shown_as: dict[int, str] = {}
        self._rows_by_record: dict[sqlite3.Row, Row] = {}

    async def _read_all(self) -> Rows:
        if self.directory.load(await self._directory(DIRECTORY_SQL)):
            self._rows_by_record = {}  # owners, caller ids or groups changed
        # Reused rows only pay off where full reads repeat (no log); with one they are rare.
        reuse = self.log.cursor is None
        previous, current = self._rows_by_record, {}
        rows: dict[str, Row] = {}
        shown_as: dict[int, str] = {}
        async for record in in_turns(await self.source.query(CONTACTS_SQL)):
            known = previous.get(record) if reuse else None
            row = known if known is not None else self._row(record)
            if reuse:
                current[record] = row
            rows[row["id"]] = row
            shown_as[record["id"]] = row["id"]
        self._rows_by_record, self._shown_as = current, shown_as
        return rows

    async def _pending(self) -> RowChanges | None:
        logged = await self.log.since()
        if logged is None:
            return None
        changes = RowChanges()
        users = [str(u) for u in logged.get("accounts", ())]
        if users:
            records = await query_keys(self.source, DIRECTORY_BY_USER_SQL, users)
            self.directory.load_users(users, records)
            for record in await query_keys(self.source, CONTACTS_BY_USER_SQL, users):
                row = self._row(record)
                changes.upsert[row["id"]] = row
        ids = logged.get("location", [])
        found = {r["id"]: r for r in await query_keys(self.source, CONTACTS_BY_ID_SQL, ids)}
        for location_id in ids:
            before = self._shown_as.pop(location_id, None)
            if before is not None:
                changes.delete.add(before)  # replaced below when the record is still there
            current = found.get(location_id)
            if current is not None:
                row = self._row(current)
                changes.upsert[row["id"]] = row
                self._shown_as[location_id] = row["id"]
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

"""Registered contacts from Kamailio's ``location`` table in PostgreSQL, one table for every
node of a cluster (usrloc ``db_mode`` 3 or 2, each node its ``server_id``), joined with the
accounts directory of the same database (``RTM_DIRECTORY``, ``directory.py``).

``RTM_REGISTRATIONS=postgresql://user@host/kamailio``. A row's ``node`` is its record's
``server_id`` (an integer, as the Kamailio RPC and SQLite sources give it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from psycopg import sql

from ...config import Config
from ...rows import Row, Rows
from ...sip.uri import contact_address
from ...times import iso
from ..base import RowChanges
from ..directory import Directory
from ..feed import LoggedCollector
from .changes import ChangeLog
from .connection import PostgresSource
from .directory import DirectorySpec, parse_directory

# Every contact, expired ones too (the runner hides a contact at its expiry). Kamailio
# writes ``expires`` as a local TIMESTAMP: it is read in the session's TimeZone, which must
# be the zone of Kamailio's hosts (UTC everywhere is simplest).
CONTACTS_SQL = """
SELECT id, ruid, username, domain, contact, received, user_agent, socket, server_id,
       extract(epoch FROM expires::timestamptz)::float8 AS expires_at
FROM location
"""
CONTACTS_BY_ID_SQL = CONTACTS_SQL + " WHERE id = ANY(%s::int[])"
CONTACTS_BY_USER_SQL = CONTACTS_SQL + " WHERE username = ANY(%s::text[])"


def contact_row(record: Mapping[str, Any], account: Mapping[str, str]) -> Row:
    """One wire row for one ``location`` record (the same columns as the SQLite source)."""
    contact = record["contact"] or ""
    address = contact_address(contact, record["received"] or None, record["socket"] or None)
    expires = record["expires_at"]
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
        # Kamailio's 0 ("never expires") is written as 1970: no expiry.
        "expires": iso(expires) if expires is not None and expires > 0 else None,
        "user_agent": record["user_agent"] or "",
        "contact": contact,
        "node": record["server_id"],
    }


class PostgresRegistrations(LoggedCollector[PostgresSource, ChangeLog]):
    """Contacts of ``location`` + the directory; a ``ChangeFeed``.

    The log names contacts (``location`` ids) and directory users; only those are read
    again, so a REGISTER on any node costs the same at a million contacts as at a thousand.
    """

    table = "accounts"

    def __init__(self, url: str, directory: DirectorySpec | None = None) -> None:
        self.source = PostgresSource(url)
        self.spec = directory or DirectorySpec()
        logged = ["location"] + ([self.spec.table] if self.spec.table else [])
        self.log = ChangeLog(self.source, logged)
        self.directory = Directory()
        # location.id -> the row id it was shown as (a deleted record is gone from the table).
        self._shown_as: dict[int, str] = {}

    async def _read_all(self) -> Rows:
        self.directory.load(cast(Any, await self._directory()))
        rows: dict[str, Row] = {}
        shown_as: dict[int, str] = {}
        for record in await self.source.query(CONTACTS_SQL):
            row = self._row(record)
            rows[row["id"]] = row
            shown_as[record["id"]] = row["id"]
        self._shown_as = shown_as
        return rows

    async def _pending(self) -> RowChanges | None:
        logged = await self.log.since()
        if logged is None:
            return None
        changes = RowChanges()
        users = logged.get(self.spec.table or "", [])
        if users:
            records = await self._directory(users)
            self.directory.load_users(users, cast(Any, records))
            for record in await self.source.query(CONTACTS_BY_USER_SQL, (users,)):
                row = self._row(record)
                changes.upsert[row["id"]] = row
        ids = [int(key) for key in logged.get("location", [])]
        found = (
            {r["id"]: r for r in await self.source.query(CONTACTS_BY_ID_SQL, (ids,))} if ids else {}
        )
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

    async def _directory(self, users: list[str] | None = None) -> list[dict[str, Any]]:
        """The directory's entries (of ``users`` only, when given); none without a table."""
        table = self.spec.table
        if table is None:
            return []
        exists = await self.source.query("SELECT to_regclass(%s) IS NOT NULL AS found", (table,))
        if not exists[0]["found"]:
            return []  # no directory in this database: contacts show without owners
        where = None if users is None else sql.SQL("username = ANY(%s::text[])")
        return await self.source.query(
            self.spec.select(where), (users,) if users is not None else ()
        )

    def _row(self, record: Mapping[str, Any]) -> Row:
        account = self.directory.account(record["username"] or "", record["domain"] or "")
        return contact_row(record, account)


def open_source(table: str, url: str, config: Config) -> PostgresRegistrations:
    return PostgresRegistrations(url, parse_directory(config.directory))

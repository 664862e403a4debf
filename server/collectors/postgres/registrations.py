"""Registered contacts from Kamailio's ``location`` table in PostgreSQL, one table for every
node of a cluster (usrloc ``db_mode`` 3 or 2, each node its ``server_id``), joined with the
accounts directory of the same database (``RTM_DIRECTORY``, ``directory.py``).

``RTM_REGISTRATIONS=postgresql://user@host/kamailio``. A row's ``node`` is its record's
``server_id`` (an integer, as the Kamailio RPC and SQLite sources give it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

from psycopg import sql

from ...config import Config
from ...rows import Row, Rows
from ...times import iso
from ..base import RowChanges
from ..directory import Directory
from ..feed import LoggedCollector
from ..registrations import ShownContacts, contact_row
from .changes import ChangeLog
from .connection import PostgresSource
from .directory import DirectorySpec, parse_directory

log = logging.getLogger("rtm.collectors.postgres")

# Every contact, expired ones too (the runner hides a contact at its expiry). Kamailio
# writes ``expires`` as a local TIMESTAMP: it is read in the session's TimeZone, which must
# be the zone of Kamailio's hosts (UTC everywhere is simplest).
CONTACTS_SQL = """
SELECT id, ruid, username, domain, contact, received, user_agent, socket, server_id,
       extract(epoch FROM expires::timestamptz)::float8 AS expires_at,
       xmin::text::bigint AS version
FROM location
"""
CONTACTS_BY_ID_SQL = CONTACTS_SQL + " WHERE id = ANY(%s::int[])"
# What a new leader reads to take over the rows the last one built (``resume``): the records
# a part per ask of the log, in id order, each built and compared with the row shown (a
# million built at once are ~15 s; 2,500 are ~25 ms of an ask).
CONTACTS_FROM_ID_SQL = CONTACTS_SQL + " WHERE id > %s ORDER BY id LIMIT %s"
SEED_PART = 2_500
FIRST_ID = -(2**63)  # below any id a record may have (serial ids start at 1)
CONTACTS_BY_USER_SQL = CONTACTS_SQL + " WHERE username = ANY(%s::text[])"


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
        # Every full read reuses the row of each record whose ``xmin`` did not move (every
        # UPDATE writes a new one): a million contacts take ~20 s to build, a few to reuse.
        self._shown = ShownContacts[int](
            lambda record: record["version"], lambda record: self._row(record)
        )
        self._seeded_to = FIRST_ID  # taking over (``resume``): records read up to this id
        self._seed_changed = 0  # and the rows that read otherwise than shown

    def position(self) -> str | None:
        return self.log.position()

    async def resume(self, position: str, shown: Mapping[str, Row]) -> bool:
        """Go on from a cluster's last leader: its cursor, the rows it showed, and the whole
        directory (rows built from here on need their owners). Which record each row shown
        is, whether it still reads the same, and which rows' records are gone, comes a part
        per ask of the log after this (``_seed``), so that the first changes go out at once."""
        if not await self.log.resume(position):
            return False
        self.directory.load(cast(Any, await self._directory()))
        self._shown.take_over(shown)
        self._seeded_to, self._seed_changed = FIRST_ID, 0
        return True

    async def _seed(self) -> RowChanges:
        """The next part of the records taken over; at the end, the rows whose record is gone."""
        records = await self.source.query(CONTACTS_FROM_ID_SQL, (self._seeded_to, SEED_PART))
        changes = self._shown.seed(records)
        self._seed_changed += len(changes.upsert)
        if len(records) == SEED_PART:
            self._seeded_to = records[-1]["id"]
        else:
            changes.delete |= self._shown.seeded()
            log.info(
                "accounts: every record taken over read again (%d rows changed, %d gone)",
                self._seed_changed,
                len(changes.delete),
            )
        return changes

    async def _read_all(self) -> Rows:
        """Every contact; an owner, caller id or group changed since the last read (seen
        here, not by the log) rebuilds every row."""
        rebuild = self.directory.load(cast(Any, await self._directory()))
        return await self._shown.read_all(await self.source.query(CONTACTS_SQL), rebuild)

    async def _pending(self) -> RowChanges | None:
        # Taking over, a part of the records first: the log's changes after it are newer, and
        # a failure here loses none of them (nothing below has moved yet).
        seeded = RowChanges()
        if self._shown.seeding and not self.source.in_snapshot:
            seeded = await self._seed()
        logged = await self.log.since()
        if logged is None:
            return None
        users = logged.get(self.spec.table or "", [])
        if users:  # first, so that every row built below has the new owners
            self.directory.load_users(users, cast(Any, await self._directory(users)))
        ids = [int(key) for key in logged.get("location", [])]
        records = await self.source.query(CONTACTS_BY_ID_SQL, (ids,)) if ids else []
        if users:
            records += await self.source.query(CONTACTS_BY_USER_SQL, (users,))
        seeded.update(self._shown.changed(ids, records))
        return seeded

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
        expires = record["expires_at"]
        # Kamailio's 0 ("never expires") is written as 1970: no expiry.
        return contact_row(record, account, iso(expires) if expires and expires > 0 else None)


def open_source(table: str, url: str, config: Config) -> PostgresRegistrations:
    return PostgresRegistrations(url, parse_directory(config.directory))

"""Registered contacts from the embedded store's ``location`` table (Kamailio's usrloc schema),
joined with the ``accounts`` directory."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from ..config import Config
from ..rows import Row, Rows
from ..sip.uri import contact_address
from ..times import iso, julian_to_unix
from .directory import AccountDirectory
from .sqlite_source import SqliteSource, path_from_url

# Contacts whose expiry passed are left out here too; the runner drops the ones that pass
# between polls. 2440587.5 is the Julian day of the unix epoch: Kamailio's "never expires".
CONTACTS_SQL = """
SELECT id, ruid, username, domain, contact, received, expires, user_agent, socket, server_id
FROM location
WHERE typeof(expires) = 'text' OR expires > julianday('now') OR expires <= 2440587.5
"""


def contact_row(record: sqlite3.Row, account: Mapping[str, str]) -> Row:
    """One wire row for one ``location`` record."""
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
        "expires": iso(julian_to_unix(record["expires"])),
        "user_agent": record["user_agent"] or "",
        "contact": contact,
        "node": record["server_id"],
    }


class RegistrationCollector:
    """Contacts from ``location`` + ``accounts`` in one SQLite file.

    Each poll reads every contact (SQLite has no change feed), but only records that differ
    from the last poll are turned into rows again: at 100k contacts parsing URIs and times
    is most of the cost. Unchanged rows are the very same objects, which the diff skips.
    """

    table = "accounts"
    cheap_unchanged = True  # an unchanged file costs one stat and one pragma

    def __init__(self, path: str) -> None:
        self.source = SqliteSource(path)
        self.directory = AccountDirectory(path)
        self._rows_by_record: dict[sqlite3.Row, Row] = {}

    async def fetch(self) -> Rows | None:
        if not await self.source.changed():
            return None
        if await self.directory.refresh():
            self._rows_by_record = {}  # owners, caller ids or groups changed
        previous, current = self._rows_by_record, {}
        rows: dict[str, Row] = {}
        for record in await self.source.query(CONTACTS_SQL):
            row = previous.get(record)
            if row is None:
                account = self.directory.account(record["username"] or "", record["domain"] or "")
                row = contact_row(record, account)
            current[record] = row
            rows[row["id"]] = row
        self._rows_by_record = current
        return rows

    async def close(self) -> None:
        await self.source.close()
        await self.directory.close()


def open_source(table: str, url: str, config: Config) -> RegistrationCollector:
    return RegistrationCollector(path_from_url(url))

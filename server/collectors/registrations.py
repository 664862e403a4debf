"""Registered contacts from the embedded store's ``location`` table (Kamailio's usrloc schema),
joined with the ``accounts`` directory."""

from __future__ import annotations

from ..config import Config
from ..sipuri import contact_address
from ..times import iso, julian_to_unix
from .base import Row, Rows
from .sqlite_source import SqliteSource, path_from_url

# Contacts whose expiry passed are left out here too; the runner drops the ones that pass
# between polls. 2440587.5 is the Julian day of the unix epoch: Kamailio's "never expires".
CONTACTS_SQL = """
SELECT id, ruid, username, domain, contact, received, expires, user_agent, socket, server_id
FROM location
WHERE typeof(expires) = 'text' OR expires > julianday('now') OR expires <= 2440587.5
"""
DIRECTORY_SQL = """
SELECT username, domain, owner, caller_id, caller_id_2, "group" FROM accounts
"""

Directory = dict[tuple[str, str], dict[str, str]]


def directory_entry(directory: Directory, username: str, domain: str) -> dict[str, str]:
    """The account's directory fields: exact domain first, then a domain-less entry."""
    return directory.get((username, domain)) or directory.get((username, "")) or {}


def contact_row(record: dict[str, object], account: dict[str, str]) -> Row:
    """One wire row for one registered contact."""
    contact = str(record.get("contact") or "")
    received = record.get("received")
    socket = record.get("socket")
    address = contact_address(
        contact,
        str(received) if received else None,
        str(socket) if socket else None,
    )
    key = str(record.get("ruid") or f"location:{record.get('id')}")
    return {
        "id": key,
        "username": str(record.get("username") or ""),
        "domain": str(record.get("domain") or ""),
        "owner": account.get("owner", ""),
        "caller_id": account.get("caller_id", ""),
        "caller_id_2": account.get("caller_id_2", ""),
        "group": account.get("group", ""),
        "ip": address.ip,
        "port": address.port,
        "transport": address.transport,
        "expires": iso(julian_to_unix(record.get("expires"))),
        "user_agent": str(record.get("user_agent") or ""),
        "contact": contact,
        "node": record.get("server_id"),
    }


async def load_directory(source: SqliteSource) -> Directory:
    directory: Directory = {}
    for entry in await source.query(DIRECTORY_SQL):
        directory[(entry["username"], entry["domain"] or "")] = {
            "owner": entry["owner"] or "",
            "caller_id": entry["caller_id"] or "",
            "caller_id_2": entry["caller_id_2"] or "",
            "group": entry["group"] or "",
        }
    return directory


class RegistrationCollector:
    """Contacts from ``location`` + ``accounts`` in one SQLite file."""

    table = "accounts"

    def __init__(self, path: str) -> None:
        self.source = SqliteSource(path)

    async def fetch(self) -> Rows | None:
        if not await self.source.changed():
            return None
        directory = await load_directory(self.source)
        rows: dict[str, Row] = {}
        for record in await self.source.query(CONTACTS_SQL):
            data = dict(record)
            username, domain = str(data["username"] or ""), str(data["domain"] or "")
            row = contact_row(data, directory_entry(directory, username, domain))
            rows[row["id"]] = row
        return rows

    async def close(self) -> None:
        await self.source.close()


def open_source(table: str, url: str, config: Config) -> RegistrationCollector:
    return RegistrationCollector(path_from_url(url))

"""rtm's account directory (``accounts`` in the embedded store), read-only, for joining with
contacts that come from elsewhere (Kamailio's memory)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Mapping

from .sqlite_source import SqliteSource

log = logging.getLogger("rtm.collectors.directory")

DIRECTORY_SQL = """
SELECT username, domain, owner, caller_id, caller_id_2, "group" FROM accounts
"""

Entries = dict[tuple[str, str], dict[str, str]]


def directory_entry(directory: Entries, username: str, domain: str) -> dict[str, str]:
    """The account's directory fields: exact domain first, then a domain-less entry."""
    return directory.get((username, domain)) or directory.get((username, "")) or {}


def _fields(entry: sqlite3.Row) -> dict[str, str]:
    return {
        "owner": entry["owner"] or "",
        "caller_id": entry["caller_id"] or "",
        "caller_id_2": entry["caller_id_2"] or "",
        "group": entry["group"] or "",
    }


class Directory:
    """Directory entries in memory, loaded whole or a few users at a time."""

    def __init__(self) -> None:
        self._entries: Entries = {}
        self._by_user: dict[str, dict[str, str]] = {}

    def load(self, records: Iterable[sqlite3.Row]) -> bool:
        """Replace every entry with ``records``; True when anything differs."""
        entries: Entries = {}
        for entry in records:
            entries[(entry["username"], entry["domain"] or "")] = _fields(entry)
        changed = entries != self._entries
        self._entries = entries
        self._by_user = {user: fields for (user, _domain), fields in entries.items()}
        return changed

    def load_users(self, usernames: Iterable[str], records: Iterable[sqlite3.Row]) -> None:
        """Replace the entries of ``usernames`` (any domain) with ``records``: O(users)."""
        names = set(usernames)
        for key in [k for k in self._entries if k[0] in names]:
            del self._entries[key]
        for name in names:
            self._by_user.pop(name, None)
        for entry in records:
            fields = _fields(entry)
            self._entries[(entry["username"], entry["domain"] or "")] = fields
            self._by_user[entry["username"]] = fields

    def account(self, username: str, domain: str) -> Mapping[str, str]:
        """Exact (user, domain), then domain-less; a domain-less AoR matches by user alone."""
        found = directory_entry(self._entries, username, domain)
        if not found and not domain:
            found = self._by_user.get(username, {})
        return found


class AccountDirectory(Directory):
    """rtm's ``accounts`` table, read-only, from its own connection; empty when the store
    does not exist (yet). For contacts that come from elsewhere (Kamailio's memory)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._source = SqliteSource(path)

    async def refresh(self) -> bool:
        """Re-read the directory if the store changed; True when it did."""
        try:
            if not await self._source.changed():
                return False
            records = await self._source.query(DIRECTORY_SQL)
        except FileNotFoundError:
            return self.load(())
        except Exception as exc:  # noqa: BLE001 - keep the last directory; contacts still show
            log.warning("accounts directory unreadable: %s", exc)
            return False
        return self.load(records)

    async def close(self) -> None:
        await self._source.close()

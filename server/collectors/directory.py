"""rtm's account directory (``accounts`` in the embedded store), read-only, for joining with
contacts that come from elsewhere (Kamailio's memory)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from .sqlite_source import SqliteSource

log = logging.getLogger("rtm.collectors.directory")

DIRECTORY_SQL = """
SELECT username, domain, owner, caller_id, caller_id_2, "group" FROM accounts
"""

Directory = dict[tuple[str, str], dict[str, str]]


def directory_entry(directory: Directory, username: str, domain: str) -> dict[str, str]:
    """The account's directory fields: exact domain first, then a domain-less entry."""
    return directory.get((username, domain)) or directory.get((username, "")) or {}


class AccountDirectory:
    """rtm's ``accounts`` table, read-only; empty when the store does not exist (yet)."""

    def __init__(self, path: str) -> None:
        self._source = SqliteSource(path)
        self._entries: Directory = {}
        self._by_user: dict[str, dict[str, str]] = {}

    async def refresh(self) -> bool:
        """Re-read the directory if the store changed; True when it did."""
        try:
            if not await self._source.changed():
                return False
            records = await self._source.query(DIRECTORY_SQL)
        except FileNotFoundError:
            changed = bool(self._entries)
            self._entries, self._by_user = {}, {}
            return changed
        except Exception as exc:  # noqa: BLE001 - keep the last directory; contacts still show
            log.warning("accounts directory unreadable: %s", exc)
            return False
        entries: Directory = {}
        for entry in records:
            entries[(entry["username"], entry["domain"] or "")] = {
                "owner": entry["owner"] or "",
                "caller_id": entry["caller_id"] or "",
                "caller_id_2": entry["caller_id_2"] or "",
                "group": entry["group"] or "",
            }
        changed = entries != self._entries
        self._entries = entries
        self._by_user = {user: fields for (user, _domain), fields in entries.items()}
        return changed

    def account(self, username: str, domain: str) -> Mapping[str, str]:
        """Exact (user, domain), then domain-less; a domain-less AoR matches by user alone."""
        found = directory_entry(self._entries, username, domain)
        if not found and not domain:
            found = self._by_user.get(username, {})
        return found

    async def close(self) -> None:
        await self._source.close()

"""rtm's account directory (``accounts`` in the embedded store), read-only, for joining with
contacts that come from elsewhere (Kamailio's memory)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from .registrations import DIRECTORY_SQL, Directory, directory_entry
from .sqlite_source import SqliteSource

log = logging.getLogger("rtm.collectors.directory")


class AccountDirectory:
    """rtm's ``accounts`` table, read-only; empty when the store does not exist (yet)."""

    def __init__(self, path: str) -> None:
        self._source = SqliteSource(path)
        self._entries: Directory = {}
        self._by_user: dict[str, dict[str, str]] = {}

    async def refresh(self) -> None:
        try:
            if not await self._source.changed():
                return
            records = await self._source.query(DIRECTORY_SQL)
        except FileNotFoundError:
            self._entries, self._by_user = {}, {}
            return
        except Exception as exc:  # noqa: BLE001 - keep the last directory; contacts still show
            log.warning("accounts directory unreadable: %s", exc)
            return
        entries: Directory = {}
        for entry in records:
            entries[(entry["username"], entry["domain"] or "")] = {
                "owner": entry["owner"] or "",
                "caller_id": entry["caller_id"] or "",
                "caller_id_2": entry["caller_id_2"] or "",
                "group": entry["group"] or "",
            }
        self._entries = entries
        self._by_user = {user: fields for (user, _domain), fields in entries.items()}

    def account(self, username: str, domain: str) -> Mapping[str, str]:
        """Exact (user, domain), then domain-less; a domain-less AoR matches by user alone."""
        found = directory_entry(self._entries, username, domain)
        if not found and not domain:
            found = self._by_user.get(username, {})
        return found

    async def close(self) -> None:
        await self._source.close()

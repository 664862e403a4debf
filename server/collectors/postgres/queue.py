"""The message queue in PostgreSQL: msilo's ``silo`` when Kamailio keeps it in that database,
else rtm's own ``messages`` still ENQUEUED (``RTM_DB=postgresql://…``).

``RTM_QUEUE=postgresql://…``. Which table is decided at each full read (a ``silo`` created
later is picked up then). The message text (``silo.body``, ``messages.payload``) is never
selected: the column lists are explicit on purpose.
"""

from __future__ import annotations

from ...config import Config
from ...rows import Rows
from ..base import RowChanges
from ..msilo import silo_row
from ..queue import message_row
from .connection import PostgresSource
from .query import PostgresQueryCollector

SILO_SQL = """
SELECT id, src_addr, dst_addr, username, domain, inc_time, exp_time, snd_time, ctype,
       extra_hdrs, callid, status
FROM silo
"""
# msilo deletes a row once delivered: every row is queued, and a key not found is gone.
SILO_KEYED_SQL = SILO_SQL + " WHERE id = ANY(%s::int[])"
MESSAGES_SQL = """
SELECT id, uuid, api_version, from_account, to_account, from_number, to_number,
       from_seq, to_seq, managed, received, sent, status
FROM messages WHERE status = 'ENQUEUED'
"""
MESSAGES_KEYED_SQL = MESSAGES_SQL + " AND id = ANY(%s::text[])"


class PostgresQueue(PostgresQueryCollector):
    """msilo's ``silo`` if the database has one, else rtm's ``messages``."""

    def __init__(self, url: str) -> None:
        super().__init__(
            "queue",
            PostgresSource(url),
            MESSAGES_SQL,
            MESSAGES_KEYED_SQL,
            message_row,
            ("messages",),
        )

    async def fetch(self) -> Rows:
        await self._choose()
        return await super().fetch()

    async def reconcile(self) -> tuple[RowChanges | None, Rows]:
        await self._choose()
        return await super().reconcile()

    async def _choose(self) -> None:
        """Read ``silo`` when it is there, else ``messages`` (before the snapshot's start)."""
        found = await self.source.query("SELECT to_regclass('silo') IS NOT NULL AS silo")
        if found[0]["silo"]:
            self._sql, self._keyed_sql, self._to_row = SILO_SQL, SILO_KEYED_SQL, silo_row
            self.log.follow(["silo"])
        else:
            self._sql, self._keyed_sql, self._to_row = MESSAGES_SQL, MESSAGES_KEYED_SQL, message_row
            self.log.follow(["messages"])


def open_source(table: str, url: str, config: Config) -> PostgresQueue:
    return PostgresQueue(url)

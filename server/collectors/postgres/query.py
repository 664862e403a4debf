"""A table that is one SQL query over PostgreSQL, mapped record by record to rows, and
followed through the change log by the keys it names (the base of queue.py and trunks.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ...rows import Row, Rows
from ..base import RowChanges
from ..feed import LoggedCollector
from .changes import ChangeLog
from .connection import PostgresSource


class PostgresQueryCollector(LoggedCollector[PostgresSource, ChangeLog]):
    """``sql`` is the full read; ``keyed_sql`` (one ``%s``: a text[] of log keys, which are
    row ids here) reads the rows the log names again, and a key it no longer returns is a
    deleted row. A database without the log is read whole at the poll interval."""

    def __init__(
        self,
        table: str,
        source: PostgresSource,
        sql: str,
        keyed_sql: str,
        to_row: Callable[[dict[str, Any]], Row],
        logged: Sequence[str],
    ) -> None:
        self.table = table
        self.source = source
        self.log = ChangeLog(source, logged)
        self._sql = sql
        self._keyed_sql = keyed_sql
        self._to_row = to_row

    async def _read_all(self) -> Rows:
        rows = (self._to_row(record) for record in await self.source.query(self._sql))
        return {row["id"]: row for row in rows}

    async def _pending(self) -> RowChanges | None:
        logged = await self.log.since()
        if logged is None:
            return None
        keys = list(dict.fromkeys(k for found in logged.values() for k in found))
        changes = RowChanges(delete=set(keys))
        if keys:
            for record in await self.source.query(self._keyed_sql, (keys,)):
                row = self._to_row(record)
                changes.upsert[row["id"]] = row
        return changes

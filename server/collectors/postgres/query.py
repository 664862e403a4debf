"""A table that is one SQL query over PostgreSQL, mapped record by record to rows, and
followed through the change log by the keys it names (the base of queue.py and trunks.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ...rows import Row
from ..feed import QueryCollector
from .changes import ChangeLog
from .connection import PostgresSource


class PostgresQueryCollector(QueryCollector[PostgresSource, ChangeLog]):
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

    async def _read_keys(self, keys: list[Any]) -> list[dict[str, Any]]:
        return await self.source.query(self._keyed_sql, (keys,))

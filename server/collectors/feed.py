"""The ``ChangeFeed`` half every collector of a database with rtm's change log shares (the
SQLite store, PostgreSQL): full reads, asks of the log, and the reconcile.

A database type brings a ``source`` (one read connection that can open a snapshot) and a
``log`` (the change log read from a cursor); a collector says how to read everything
(``_read_all``) and what the log's keys name (``_pending``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, Protocol, TypeVar

from ..rows import Row, Rows
from .base import RowChanges


class SnapshotSource(Protocol):
    """A read connection: ``snapshot`` makes the queries inside see one state."""

    def snapshot(self) -> AbstractAsyncContextManager[None]: ...

    async def changed(self) -> bool:
        """False only when nothing can have been written since last asked (cheap)."""
        ...

    async def close(self) -> None: ...

    async def query(self, sql: Any, params: Any = ()) -> Sequence[Any]:
        """Every record of ``sql``, each readable by column name."""
        ...


class CursorLog(Protocol):
    """A change log: ``start`` (inside a snapshot, before a full read) sets the cursor."""

    async def start(self) -> None: ...

    async def since(self) -> Mapping[str, Sequence[Any]] | None:
        """The keys logged per table since the cursor (which moves on); None: lost track."""
        ...


SourceT = TypeVar("SourceT", bound=SnapshotSource)
LogT = TypeVar("LogT", bound=CursorLog)


class LoggedCollector(Generic[SourceT, LogT]):
    """Full reads, changes and the reconcile of a collector with a change log.

    A database without the log is read whole after each change: ``changes`` says so (None)
    until a full read happened.
    """

    source: SourceT
    log: LogT
    _dirty = True  # no log: the database changed since the last full read

    async def fetch(self) -> Rows:
        async with self.source.snapshot():
            await self.source.changed()  # what this read sees is no news afterwards
            await self.log.start()
            self._dirty = False
            return await self._read_all()

    async def changes(self) -> RowChanges | None:
        if not await self.source.changed():
            return None if self._dirty else RowChanges()
        changes = await self._pending()
        if changes is None:
            self._dirty = True  # stays "read me whole" until a full read happened
        return changes

    async def reconcile(self) -> tuple[RowChanges | None, Rows]:
        async with self.source.snapshot():
            await self.source.changed()
            pending = await self._pending()
            if pending is None:
                await self.log.start()
            self._dirty = False
            return pending, await self._read_all()

    async def _read_all(self) -> Rows:
        raise NotImplementedError

    async def _pending(self) -> RowChanges | None:
        """The rows the log names since the cursor; None when it cannot say."""
        raise NotImplementedError

    async def close(self) -> None:
        await self.source.close()


class QueryCollector(LoggedCollector[SourceT, LogT]):
    """A table that is one SQL query, mapped record by record to rows, whose log keys are
    row ids: the rows they name are read again (``_read_keys``), and a key no longer
    returned is a deleted row. A database type says how it reads rows by key."""

    _sql: str
    _to_row: Callable[[dict[str, Any]], Row]

    async def _read_all(self) -> Rows:
        rows = (self._to_row(dict(record)) for record in await self.source.query(self._sql))
        return {row["id"]: row for row in rows}

    async def _pending(self) -> RowChanges | None:
        logged = await self.log.since()
        if logged is None:
            return None
        keys = list(dict.fromkeys(k for found in logged.values() for k in found))
        changes = RowChanges(delete={str(k) for k in keys})
        if keys:
            for record in await self._read_keys(keys):
                row = self._to_row(dict(record))
                changes.upsert[row["id"]] = row
        return changes

    async def _read_keys(self, keys: list[Any]) -> Sequence[Any]:
        raise NotImplementedError

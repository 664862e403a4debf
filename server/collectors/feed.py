"""The ``ChangeFeed`` half every collector of a database with rtm's change log shares (the
SQLite store, PostgreSQL): full reads, asks of the log, and the reconcile.

A database type brings a ``source`` (one read connection that can open a snapshot) and a
``log`` (the change log read from a cursor); a collector says how to read everything
(``_read_all``) and what the log's keys name (``_pending``).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Generic, Protocol, TypeVar

from ..rows import Rows
from .base import RowChanges


class SnapshotSource(Protocol):
    """A read connection: ``snapshot`` makes the queries inside see one state."""

    def snapshot(self) -> AbstractAsyncContextManager[None]: ...

    async def changed(self) -> bool:
        """False only when nothing can have been written since last asked (cheap)."""
        ...

    async def close(self) -> None: ...


class CursorLog(Protocol):
    """A change log: ``start`` (inside a snapshot, before a full read) sets the cursor."""

    async def start(self) -> None: ...


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

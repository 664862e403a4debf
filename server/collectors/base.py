"""The one small Protocol every source implements, and the optional powers a source declares.

A collector only fetches. Polling, timing, timeouts, errors, staleness, expiry and
diffing are the runner's (``server.collectors.runner``), written once for all sources.
A source that can do more says so by matching a second small Protocol (``ChangeFeed``,
``HintStream``); the runner checks with ``isinstance``, so mypy sees what it relies on.

A source that only has ``fetch`` is read whole and diffed by the runner: fine for a few
hundred trunks or messages. A table that may hold 100k rows needs ``ChangeFeed``, so that
the cost of a change does not grow with the table (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

from ..rows import Row, Rows

T = TypeVar("T")

# A full read builds its rows in Python; between this many records the event loop serves
# everything else. A million contacts take ~20 s to build: a loop held that long misses its
# WebSockets' keepalives, its clients' frames and a cluster's lease.
YIELD_EVERY = 2000


async def in_turns(records: Iterable[T], every: int = YIELD_EVERY) -> AsyncIterator[T]:
    """``records``, letting the event loop run other tasks after each ``every`` of them."""
    for count, record in enumerate(records, 1):
        yield record
        if count % every == 0:
            await asyncio.sleep(0)


@dataclass
class RowChanges:
    """What a source says changed: complete rows to add or replace, ids that are gone.

    An id in both is replaced (upserts are applied after deletes), so a source may list a
    row as deleted whenever it is unsure and then upsert what it read.
    """

    upsert: dict[str, Row] = field(default_factory=dict)
    delete: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.upsert or self.delete)

    def __len__(self) -> int:
        return len(self.upsert) + len(self.delete - self.upsert.keys())

    def update(self, later: RowChanges) -> None:
        """Take ``later``'s changes after these: what it says of a row wins, a delete too."""
        for key in later.delete:
            self.upsert.pop(key, None)
            self.delete.add(key)
        self.upsert.update(later.upsert)


# The runner's apply(changes): take a source's changes into the table and publish them.
Apply = Callable[[RowChanges], None]


@runtime_checkable
class Collector(Protocol):
    """A source of one table's rows."""

    table: str

    async def fetch(self) -> Rows | None:
        """Return every current row keyed by id, or None when nothing changed since last time.

        Raise on failure; the runner keeps the last good rows and reports the source stale.
        """
        ...

    async def close(self) -> None:
        """Release connections; called once when the app stops."""
        ...


@runtime_checkable
class ChangeFeed(Protocol):
    """A source that can say what changed since its cursor (the store's change log).

    ``fetch`` is then the full read, for start-up and after the source lost track; it sets
    the cursor to the point that read saw. ``changes`` is asked every few tens of ms;
    ``reconcile`` at a slow interval, to prove the feed missed nothing.
    """

    async def changes(self) -> RowChanges | None:
        """What changed since the last ``fetch`` or ``changes``; empty when nothing did.

        None when the source lost track (its log was pruned past the cursor, or it has no
        log): the runner then does a full read. Raise on failure, as ``fetch`` does.
        """
        ...

    async def reconcile(self) -> tuple[RowChanges | None, Rows]:
        """From one snapshot of the source: the changes since the cursor (None: lost track)
        and every row; the cursor moves to that snapshot. The runner applies the changes,
        and anything the rows still differ by is a change the feed missed."""
        ...


@runtime_checkable
class Resumable(Protocol):
    """A change feed whose cursor another process can continue: a cluster's new leader
    takes the rows the last one published and goes on from where its reads stood, instead
    of a first full read (a million contacts: ~15 s before any change is shown).

    ``position`` is where the feed's reads stand, as text that travels beside the rows
    published from them (None: nowhere another process could continue). ``resume`` takes
    one and the rows ``shown`` as of it (the hub's, live); False when it cannot continue
    there (another database, no log): the runner then reads whole. Every change after the
    position comes from ``changes`` as usual, rows gone since the position included (they
    may take a few asks to find: the source may learn which rows are which a part at a
    time).
    """

    def position(self) -> str | None: ...

    async def resume(self, position: str, shown: Mapping[str, Row]) -> bool: ...


@runtime_checkable
class HintStream(Protocol):
    """A source that also pushes hints (Kamailio's evapi): ``watch`` runs beside polling,
    calling ``apply`` with the rows that changed; it returns or raises when its link is
    lost. A hint costs O(rows it names): the source knows which ids it replaces."""

    async def watch(self, apply: Apply) -> None: ...


class SourceError(Exception):
    """A source failed in a way worth showing an operator verbatim (no traceback)."""

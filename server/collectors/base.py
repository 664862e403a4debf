"""The one small Protocol every source implements, and the optional powers a source declares.

A collector only fetches. Polling, timing, timeouts, errors, staleness, expiry and
diffing are the runner's (``server.collectors.runner``), written once for all sources.
A source that can do more says so by matching a second small Protocol (``CheapUnchanged``,
``HintStream``); the runner checks with ``isinstance``, so mypy sees what it relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ..rows import Row, Rows

# The runner's replace(match, rows): swap the rows ``match`` selects for ``rows``, publish.
Replace = Callable[[Callable[[Row], bool], Rows], None]


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
class CheapUnchanged(Protocol):
    """A source whose "unchanged" answer costs almost nothing (SQLite's ``data_version``):
    the runner asks it five times per interval while it has nothing new."""

    cheap_unchanged: bool


@runtime_checkable
class HintStream(Protocol):
    """A source that also pushes hints (Kamailio's evapi): ``watch`` runs beside polling,
    calling ``replace`` for what changed; it returns or raises when its link is lost."""

    async def watch(self, replace: Replace) -> None: ...


class SourceError(Exception):
    """A source failed in a way worth showing an operator verbatim (no traceback)."""

"""The one small Protocol every source implements, and the row types it speaks.

A collector only fetches. Polling, timing, timeouts, errors, staleness, expiry and
diffing are the runner's (``server.collectors.runner``), written once for all sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

# A row is the wire form of one table row: JSON-ready values, always with an "id".
Row = dict[str, Any]
# A table's state: rows keyed by their id.
Rows = Mapping[str, Row]


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


class SourceError(Exception):
    """A source failed in a way worth showing an operator verbatim (no traceback)."""

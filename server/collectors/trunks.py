"""Configured trunks from the embedded store, with the live state that ``trunk_status`` holds
(written by whoever watches the trunks)."""

from __future__ import annotations

from ..config import Config
from ..rows import Row
from ..times import iso
from .sqlite_source import QueryCollector, path_from_url
from .trunk_rows import ConfiguredTrunk, trunk_row

# Status rows for trunks missing from ``trunks`` are still shown: the watcher knows them.
# Plain SQL that SQLite and PostgreSQL both run (postgres/trunks.py reads the same).
TRUNKS_SQL = """
SELECT t.name, t.host, t.port, t.transport, t.encryption, t.virtual_number, t.username,
       s.status, s.reason, s.since, s.latency_ms
FROM trunks t LEFT JOIN trunk_status s ON s.trunk = t.name
UNION ALL
SELECT s.trunk, '', NULL, '', 0, '', '', s.status, s.reason, s.since, s.latency_ms
FROM trunk_status s WHERE NOT EXISTS (SELECT 1 FROM trunks t WHERE t.name = s.trunk)
"""


def store_row(record: dict[str, object]) -> Row:
    """The wire row of one record of TRUNKS_SQL (a status with no trunk has no host)."""
    port, since, latency = record.get("port"), record.get("since"), record.get("latency_ms")
    trunk = ConfiguredTrunk(
        name=str(record["name"]),
        host=str(record.get("host") or ""),
        port=port if isinstance(port, int) else 0,
        transport=str(record.get("transport") or ""),
        encryption=bool(record.get("encryption")),
        virtual_number=str(record.get("virtual_number") or ""),
        username=str(record.get("username") or ""),
    )
    return trunk_row(
        trunk,
        str(record.get("status") or "PENDING"),
        str(record["reason"]) if record.get("reason") is not None else None,
        iso(float(since)) if isinstance(since, (int, float)) else None,
        float(latency) if isinstance(latency, (int, float)) else None,
    )


# The trunks the change log names, by name (from ``trunks`` or ``trunk_status``).
TRUNKS_KEYED_SQL = f"SELECT * FROM ({TRUNKS_SQL}) WHERE name IN ({{keys}})"


class TrunkCollector(QueryCollector):
    def __init__(self, path: str) -> None:
        super().__init__(
            "trunks",
            path,
            TRUNKS_SQL,
            store_row,
            logged=("trunks", "trunk_status"),
            keyed_sql=TRUNKS_KEYED_SQL,
        )


def open_source(table: str, url: str, config: Config) -> QueryCollector:
    return TrunkCollector(path_from_url(url))

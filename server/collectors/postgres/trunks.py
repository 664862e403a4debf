"""Configured trunks from rtm's ``trunks`` table in PostgreSQL (``RTM_DB=postgresql://…``),
with the live state ``trunk_status`` holds, followed through the change log."""

from __future__ import annotations

from ...config import Config
from ..trunks import store_row
from .connection import PostgresSource
from .query import PostgresQueryCollector

# Status rows for trunks missing from ``trunks`` are still shown: the watcher knows them.
TRUNKS_SQL = """
SELECT t.name, t.host, t.port, t.transport, t.encryption, t.virtual_number, t.username,
       s.status, s.reason, s.since, s.latency_ms
FROM trunks t LEFT JOIN trunk_status s ON s.trunk = t.name
UNION ALL
SELECT s.trunk, '', NULL, '', 0, '', '', s.status, s.reason, s.since, s.latency_ms
FROM trunk_status s WHERE NOT EXISTS (SELECT 1 FROM trunks t WHERE t.name = s.trunk)
"""
# The trunks the change log names, by name (from ``trunks`` or ``trunk_status``).
TRUNKS_KEYED_SQL = f"SELECT * FROM ({TRUNKS_SQL}) AS every WHERE name = ANY(%s::text[])"


def open_source(table: str, url: str, config: Config) -> PostgresQueryCollector:
    return PostgresQueryCollector(
        "trunks",
        PostgresSource(url),
        TRUNKS_SQL,
        TRUNKS_KEYED_SQL,
        store_row,
        logged=("trunks", "trunk_status"),
    )

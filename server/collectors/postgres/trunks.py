"""Configured trunks from rtm's ``trunks`` table in PostgreSQL (``RTM_DB=postgresql://…``),
with the live state ``trunk_status`` holds, followed through the change log."""

from __future__ import annotations

from ...config import Config
from ..trunks import TRUNKS_SQL, store_row
from .connection import PostgresSource
from .query import PostgresQueryCollector

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

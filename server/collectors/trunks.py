"""Configured trunks from the embedded store, with the live state that ``trunk_status`` holds
(written by whoever watches the trunks)."""

from __future__ import annotations

from ..config import Config
from ..rows import Row
from ..times import iso
from .sqlite_source import QueryCollector, path_from_url

# Status rows for trunks missing from ``trunks`` are still shown: the watcher knows them.
TRUNKS_SQL = """
SELECT t.name, t.host, t.port, t.transport, t.encryption, t.virtual_number, t.username,
       s.status, s.reason, s.since, s.latency_ms
FROM trunks t LEFT JOIN trunk_status s ON s.trunk = t.name
UNION ALL
SELECT s.trunk, '', NULL, '', 0, '', '', s.status, s.reason, s.since, s.latency_ms
FROM trunk_status s WHERE s.trunk NOT IN (SELECT name FROM trunks)
"""


def trunk_row(record: dict[str, object]) -> Row:
    host = str(record.get("host") or "")
    port = record.get("port")
    since = record.get("since")
    latency = record.get("latency_ms")
    return {
        "id": str(record["name"]),
        "name": str(record["name"]),
        "host": f"{host}:{port}" if host and port else host,
        "virtual_number": str(record.get("virtual_number") or ""),
        "username": str(record.get("username") or ""),
        "transport": str(record.get("transport") or ""),
        "encryption": bool(record.get("encryption")),
        "status": str(record.get("status") or "PENDING"),
        "reason": record.get("reason"),
        "since": iso(float(since)) if isinstance(since, (int, float)) else None,
        "latency_ms": float(latency) if isinstance(latency, (int, float)) else None,
    }


class TrunkCollector(QueryCollector):
    def __init__(self, path: str) -> None:
        super().__init__("trunks", path, TRUNKS_SQL, trunk_row)


def open_source(table: str, url: str, config: Config) -> QueryCollector:
    return TrunkCollector(path_from_url(url))

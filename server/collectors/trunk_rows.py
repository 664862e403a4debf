"""A trunk as rtm shows it: the configured trunks of the store's ``trunks`` table
(read-only, re-read only when the store changed) and the one wire row every trunk source
builds (``trunks.py`` from the store, ``options.py`` from probes, ``kamailio/trunks.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import is_postgres
from ..rows import Row
from ..sip.probes import PROBED_PORTS, Target
from .postgres.connection import PostgresSource
from .sqlite_source import SqliteSource

TRUNKS_SQL = """
SELECT name, host, port, transport, encryption, virtual_number, username FROM trunks
"""


@dataclass(frozen=True)
class ConfiguredTrunk:
    """One row of rtm's ``trunks`` table."""

    name: str
    host: str
    port: int
    transport: str
    encryption: bool = False
    virtual_number: str = ""
    username: str = ""

    @property
    def target(self) -> Target:
        return Target(self.host.strip("[]"), self.port, self.transport)


def _configured(record: Any) -> ConfiguredTrunk:
    transport = str(record["transport"] or "UDP").upper()
    port = record["port"]
    return ConfiguredTrunk(
        name=str(record["name"]),
        host=str(record["host"] or ""),
        port=port
        if isinstance(port, int) and 0 < port < 65536
        else PROBED_PORTS.get(transport, 5060),
        transport=transport,
        encryption=bool(record["encryption"]),
        virtual_number=str(record["virtual_number"] or ""),
        username=str(record["username"] or ""),
    )


class TrunkTable:
    """The configured trunks of the store (a SQLite file or a PostgreSQL URL, as RTM_DB),
    re-read only when it changed (PostgreSQL has no cheap "changed?": one small query)."""

    def __init__(self, db: str) -> None:
        self.source: SqliteSource | PostgresSource = (
            PostgresSource(db) if is_postgres(db) else SqliteSource(db)
        )
        self._trunks: list[ConfiguredTrunk] = []

    async def read(self) -> list[ConfiguredTrunk]:
        if await self.source.changed():
            records = await self.source.query(TRUNKS_SQL)
            self._trunks = [_configured(record) for record in records]
        return self._trunks

    async def close(self) -> None:
        await self.source.close()


def trunk_row(
    trunk: ConfiguredTrunk,
    status: str,
    reason: str | None,
    since: str | None,
    latency_ms: float | None = None,
) -> Row:
    """The wire row of a trunk; ``host`` is ``host:port`` (just the host when no port is known).

    Every trunk source builds its rows here, so the three show the same columns the same way.
    """
    return {
        "id": trunk.name,
        "name": trunk.name,
        "host": f"{trunk.host}:{trunk.port}" if trunk.host and trunk.port else trunk.host,
        "virtual_number": trunk.virtual_number,
        "username": trunk.username,
        "transport": trunk.transport,
        "encryption": trunk.encryption,
        "status": status,
        "reason": reason,
        "since": since,
        "latency_ms": latency_ms,
    }

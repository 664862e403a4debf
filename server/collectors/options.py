"""``RTM_TRUNKS=options:`` — trunk status from rtm's own SIP OPTIONS pings, no SIP stack needed.

The configured trunks (the store's ``trunks`` table, read-only) are probed in the background
by a ``ProbeLoop``; a fetch only reads the table (when it changed) and the latest results, so
it returns at once. Any SIP reply proves the host alive (OK) except 408, 5xx and 6xx (FAILED
with the reply as the reason); so do a timeout, a refused connection or a TLS failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..rows import Row, Rows
from ..sip.probes import DEFAULT_PORTS, ProbeLoop, ProbeSettings, Target
from .sqlite_source import SqliteSource
from .trunk_status import SinceTracker, probe_status

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
        else DEFAULT_PORTS.get(transport, 5060),
        transport=transport,
        encryption=bool(record["encryption"]),
        virtual_number=str(record["virtual_number"] or ""),
        username=str(record["username"] or ""),
    )


class TrunkTable:
    """The configured trunks, re-read only when the store changed."""

    def __init__(self, path: str) -> None:
        self.source = SqliteSource(path)
        self._trunks: list[ConfiguredTrunk] = []

    async def read(self) -> list[ConfiguredTrunk]:
        if await self.source.changed():
            records = await self.source.query(TRUNKS_SQL)
            self._trunks = [_configured(record) for record in records]
        return self._trunks

    async def close(self) -> None:
        await self.source.close()


def trunk_row(trunk: ConfiguredTrunk, status: str, reason: str | None, since: str) -> Row:
    """The wire row of a trunk (``host`` is ``host:port``, as the store's trunk source has it)."""
    return {
        "id": trunk.name,
        "name": trunk.name,
        "host": f"{trunk.host}:{trunk.port}",
        "virtual_number": trunk.virtual_number,
        "username": trunk.username,
        "transport": trunk.transport,
        "encryption": trunk.encryption,
        "status": status,
        "reason": reason,
        "since": since,
    }


class OptionsTrunkCollector:
    """Trunk rows whose status is the latest OPTIONS probe of each configured trunk."""

    table = "trunks"

    def __init__(
        self, path: str, settings: ProbeSettings, clock: Callable[[], float] = time.time
    ) -> None:
        self.trunks = TrunkTable(path)
        self.probes = ProbeLoop(settings)
        self._since = SinceTracker()
        self._clock = clock

    async def fetch(self) -> Rows:
        trunks = await self.trunks.read()
        self.probes.track(trunk.target for trunk in trunks)
        verdicts = {}
        for trunk in trunks:
            result = self.probes.result(trunk.target)
            status, reason = probe_status(result)
            latency = result.latency_ms if result else None
            verdicts[trunk.name] = (trunk, status, reason, latency)
        since = self._since.update({name: v[1] for name, v in verdicts.items()}, self._clock())
        rows: dict[str, Row] = {}
        for name, (trunk, status, reason, latency) in verdicts.items():
            rows[name] = trunk_row(trunk, status, reason, since[name]) | {"latency_ms": latency}
        return rows

    async def close(self) -> None:
        await self.probes.close()
        await self.trunks.close()


def open_source(table: str, url: str, config: Config) -> OptionsTrunkCollector:
    """``options:`` probes the trunks of the store at ``config.db`` (RTM_OPTIONS_* tune it)."""
    if table != "trunks":
        raise ValueError(f"options: is a trunk source, not a {table} source")
    return OptionsTrunkCollector(config.db, ProbeSettings.from_config(config))

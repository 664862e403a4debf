"""``RTM_TRUNKS=options:`` — trunk status from rtm's own SIP OPTIONS pings, no SIP stack needed.

The configured trunks (the store's ``trunks`` table, read-only) are probed in the background
by a ``ProbeLoop``; a fetch only reads the table (when it changed) and the latest results, so
it returns at once. Any SIP reply proves the host alive (OK) except 408, 5xx and 6xx (FAILED
with the reply as the reason); so do a timeout, a refused connection or a TLS failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..config import Config
from ..rows import Rows
from ..sip.probes import ProbeLoop, ProbeSettings
from .trunk_rows import TrunkTable, trunk_row
from .trunk_status import SinceTracker, probe_status


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
        return {
            name: trunk_row(trunk, status, reason, since[name], latency)
            for name, (trunk, status, reason, latency) in verdicts.items()
        }

    async def close(self) -> None:
        await self.probes.close()
        await self.trunks.close()


def open_source(table: str, url: str, config: Config) -> OptionsTrunkCollector:
    """``options:`` probes the trunks of the store at ``config.db`` (RTM_OPTIONS_* tune it)."""
    if table != "trunks":
        raise ValueError(f"options: is a trunk source, not a {table} source")
    return OptionsTrunkCollector(config.db, ProbeSettings.from_config(config))

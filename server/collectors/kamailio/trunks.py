"""``RTM_TRUNKS=kamailio+http://host:port/RPC`` — trunk status straight from Kamailio.

Each fetch asks Kamailio for ``uac.reg_dump`` (registration trunks) and ``dispatcher.list``
(gateways it probes with OPTIONS) and maps their flags to a status (``trunk_status``); a
refresh in flight keeps the previous status, so a healthy trunk never flaps. Kamailio only
logs why a trunk failed, so rtm's own OPTIONS prober pings every trunk host in the background
and its latest result fills ``reason`` and ``latency_ms``.

Rows are keyed by trunk name. A uac ``l_uuid`` or dispatcher ``duid`` equal to a name in rtm's
``trunks`` table, or the same host and port, joins that row, which adds name, virtual number,
transport and encryption; what Kamailio knows but the table lacks is shown as Kamailio knows
it. A configured trunk Kamailio does not know gets its status from the prober alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ...config import Config
from ...rows import Row, Rows
from ...sip.probes import ProbeLoop, ProbeSettings, Target
from ..trunk_rows import ConfiguredTrunk, TrunkTable, trunk_row
from ..trunk_status import (
    FAILED,
    SinceTracker,
    combine,
    dispatcher_status,
    probe_status,
    uac_status,
)
from .parts import TrunkPart, dispatcher_parts, uac_parts
from .rpc import KamailioRpc, RpcError, http_url

# Kamailio's own word for a failed part, used when the prober has no better reason.
KAMAILIO_REASONS = {"uac": "not registered", "dispatcher": "gateway inactive in dispatcher"}


@dataclass
class Trunk:
    """One row in the making: the configured trunk (if any) and Kamailio's parts of it."""

    name: str
    configured: ConfiguredTrunk | None = None
    parts: list[TrunkPart] = field(default_factory=list)

    @property
    def target(self) -> Target | None:
        if self.configured is not None:
            return self.configured.target
        return next((part.target for part in self.parts if part.target), None)

    def as_configured(self) -> ConfiguredTrunk:
        """The table's row, or one made of what Kamailio knows."""
        if self.configured is not None:
            return self.configured
        target = self.target or Target("", 0, "UDP")
        username = next((part.username for part in self.parts if part.username), "")
        return ConfiguredTrunk(
            name=self.name,
            host=target.host,
            port=target.port,
            transport=target.transport,
            encryption=target.transport == "TLS",
            username=username,
        )


def group_trunks(configured: Sequence[ConfiguredTrunk], parts: Sequence[TrunkPart]) -> list[Trunk]:
    """Join Kamailio's parts to configured trunks by name, else by host and port."""
    trunks = {trunk.name: Trunk(trunk.name, trunk) for trunk in configured}
    by_address = {(t.target.host, t.target.port): t.name for t in configured}
    names = set(trunks)
    for part in parts:
        name = part.name if part.name in names else None
        if name is None and part.target is not None:
            name = by_address.get((part.target.host, part.target.port))
        trunks.setdefault(name or part.name, Trunk(name or part.name)).parts.append(part)
    return list(trunks.values())


class KamailioTrunkCollector:
    """Trunk rows from Kamailio's uac and dispatcher state, with reasons from OPTIONS probes."""

    table = "trunks"

    def __init__(
        self,
        rpc: KamailioRpc,
        trunks: TrunkTable,
        probes: ProbeLoop,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rpc = rpc
        self.trunks = trunks
        self.probes = probes
        self._clock = clock
        self._part_status: dict[str, str] = {}
        self._since = SinceTracker()

    async def _call(self, method: str) -> object:
        try:
            return await self.rpc.call(method)
        except RpcError:
            return None  # Kamailio answered: that module is not loaded or has no entries

    async def fetch(self) -> Rows:
        uac, dispatcher = await asyncio.gather(
            self._call("uac.reg_dump"), self._call("dispatcher.list")
        )
        parts = uac_parts(uac) + dispatcher_parts(dispatcher)
        trunks = group_trunks(await self.trunks.read(), parts)
        self.probes.track(
            {trunk.target for trunk in trunks if trunk.target}
            | {part.target for part in parts if part.target}
        )
        verdicts = {trunk.name: self._verdict(trunk) for trunk in trunks}
        current = {part.key for part in parts}  # forget parts Kamailio no longer lists
        self._part_status = {k: v for k, v in self._part_status.items() if k in current}
        since = self._since.update({name: v[0] for name, v in verdicts.items()}, self._clock())
        rows: dict[str, Row] = {}
        for trunk in trunks:
            status, reason, latency = verdicts[trunk.name]
            rows[trunk.name] = trunk_row(
                trunk.as_configured(), status, reason, since[trunk.name], latency
            )
        return rows

    def _part_verdict(self, part: TrunkPart) -> str:
        previous = self._part_status.get(part.key)
        if isinstance(part.flags, int):
            status = uac_status(part.flags, previous)
        else:
            status = dispatcher_status(part.flags, previous)
        self._part_status[part.key] = status
        return status

    def _verdict(self, trunk: Trunk) -> tuple[str, str | None, float | None]:
        """(status, reason, latency_ms) of one trunk."""
        result = self.probes.result(trunk.target) if trunk.target else None
        probed, probe_reason = probe_status(result)
        latency = result.latency_ms if result else None
        if not trunk.parts:  # Kamailio does not know it: the prober is all we have
            return probed, probe_reason, latency
        statuses = [self._part_verdict(part) for part in trunk.parts]
        status = combine(statuses)
        if status != FAILED:
            return status, None, latency
        failed = [
            KAMAILIO_REASONS[p.kind]
            for p, s in zip(trunk.parts, statuses, strict=True)
            if s == FAILED
        ]
        own = "; ".join(dict.fromkeys(failed))
        if probe_reason:
            return status, probe_reason, latency
        if result is not None and result.reply:
            return status, f"{own} (OPTIONS answered {result.reply})", latency
        return status, own, latency

    async def close(self) -> None:
        await self.probes.close()
        await self.trunks.close()
        await self.rpc.close()


def open_source(table: str, url: str, config: Config) -> KamailioTrunkCollector:
    """Trunks from the Kamailio at ``url``, joined with the store's ``trunks`` table."""
    if table != "trunks":
        raise ValueError(f"{url!r}: the Kamailio trunk source serves trunks, not {table}")
    interval = config.poll.get(table, 1.0)
    # Answer a little before the runner gives up, so the operator sees our clearer error.
    rpc = KamailioRpc(http_url(url), timeout=max(5.0, 3 * interval) * 0.9)
    probes = ProbeLoop(ProbeSettings.from_config(config))
    return KamailioTrunkCollector(rpc, TrunkTable(config.db), probes)

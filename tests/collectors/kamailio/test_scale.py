"""Registrations at scale against a real Kamailio and sipp: with evapi a REGISTER costs the
hub O(1) rows and rtm no RPC, whatever the table's size; the reconcile finds nothing new.

The runner and hub run in this process, so the test reads ``hub.stats.rows_compared`` and
counts the collector's RPC calls instead of timing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.collectors import open_source
from server.collectors.kamailio.hints import HintedKamailioRegistrationCollector
from server.collectors.runner import CollectorRunner
from server.config import Config
from server.hub import Hub

from ...live_server import UNIT
from ...waiting import cancelled, eventually
from .conftest import Kamailio, Sipp, StartKamailio, free_port

pytestmark = [pytest.mark.asyncio, pytest.mark.kamailio]

TABLE = 20_000
REGISTERS = 1_000


class CountedCalls:
    """Wraps the collector's ``rpc.call`` to count calls by method."""

    def __init__(self, source: HintedKamailioRegistrationCollector) -> None:
        self.calls: dict[str, int] = {}
        self._call = source.rpc.call
        source.rpc.call = self.call  # type: ignore[method-assign]

    async def call(self, method: str, *params: Any, within: float | None = None) -> Any:
        self.calls[method] = self.calls.get(method, 0) + 1
        return await self._call(method, *params, within=within)


@contextlib.asynccontextmanager
async def hinted_runner(
    kamailio: Kamailio, tmp_path: Path
) -> AsyncIterator[tuple[Hub, HintedKamailioRegistrationCollector, CountedCalls]]:
    config = Config(
        db=str(tmp_path / "rtm.db"), poll={"accounts": 0.2}, kamailio_evapi=kamailio.evapi_url
    )
    source = open_source("accounts", kamailio.source_url, config)
    assert isinstance(source, HintedKamailioRegistrationCollector)
    counted = CountedCalls(source)
    hub = Hub(["accounts"])
    runner = CollectorRunner(source, hub, interval=0.2, expires_field="expires")
    tasks = [asyncio.create_task(runner.run()), asyncio.create_task(runner.watch())]
    try:
        yield hub, source, counted
    finally:
        await cancelled(tasks)
        await source.close()


def users(count: int, expires: int) -> list[tuple[str, int]]:
    return [(f"u{n:05d}", expires) for n in range(count)]


async def test_1000_registers_over_20k_contacts_cost_the_hub_o1_each_and_no_rpc(
    kamailio_factory: StartKamailio, sipp: Sipp, tmp_path: Path
) -> None:
    started = time.monotonic()
    kamailio = kamailio_factory(memory=(256, 128))
    port = free_port(udp=True)  # one phone address: the REGISTERs below refresh the same rows
    sipp.run("register.xml", kamailio, rows=users(TABLE, 3600), rate=4000, port=port, timeout=60)
    async with hinted_runner(kamailio, tmp_path) as (hub, source, counted):
        rows = hub.tables["accounts"].rows
        await eventually(lambda: len(rows) == TABLE, 30 * UNIT, "the first ul.dump")
        assert counted.calls == {"ul.dump": 1}
        compared = hub.stats.rows_compared
        before = {key: row["expires"] for key, row in rows.items()}
        sipp.run("register.xml", kamailio, rows=users(REGISTERS, 1800), rate=500, port=port)

        def refreshed() -> int:
            return sum(rows[key]["expires"] != before[key] for key in before if key in rows)

        await eventually(lambda: refreshed() == REGISTERS, 10 * UNIT, "every refresh shown")
        per_register = (hub.stats.rows_compared - compared) / REGISTERS
        assert counted.calls == {"ul.dump": 1}  # the events carried every field
        assert source.lookups == 0
        assert per_register <= 2, per_register  # one row each, not a diff of 20k
        assert len(rows) == TABLE

        # The reconcile reads all 20k again: nothing changed, so nothing is a change, not
        # even an expiry a hint set from the event and the dump now says in seconds left.
        compared, seq = hub.stats.rows_compared, hub.tables["accounts"].seq
        source.dump.schedule.next_at = 0.0
        await eventually(
            lambda: counted.calls["ul.dump"] == 2 and source.dump.task is None,
            30 * UNIT,
            "the reconcile",
        )
        assert (hub.stats.rows_compared, hub.tables["accounts"].seq) == (compared, seq)
    took = time.monotonic() - started
    print(f"\n{TABLE} contacts: {per_register:.2f} rows compared per REGISTER; {took:.1f} s")


async def test_an_event_without_fields_is_answered_by_one_lookup(
    kamailio: Kamailio, sipp: Sipp, tmp_path: Path
) -> None:
    sipp.run("register.xml", kamailio, rows=[("older", 300)])
    async with hinted_runner(kamailio, tmp_path) as (hub, source, counted):
        rows = hub.tables["accounts"].rows
        await eventually(lambda: len(rows) == 1, 10 * UNIT, "the first ul.dump")
        kamailio.rpc("ul.rm", "location", "older")  # no event: as an older config would
        changes, unnamed = source.take_events([{"event": "registered", "aor": "older"}])
        assert not changes and unnamed == ["older"]
        assert await source.lookup("older") == {}
    assert counted.calls.get("ul.lookup") == 1

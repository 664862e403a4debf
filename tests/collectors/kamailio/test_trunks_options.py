"""The OPTIONS prober against real SIP peers: a sipp UAS (UDP and TCP) and Kamailio itself,
and ``RTM_TRUNKS=options:`` end to end through a real rtm."""

from __future__ import annotations

from typing import Any

import pytest

from server.sip.options import probe

from ...conftest import StartRtm
from ...live_server import UNIT
from ...mirror import Mirror
from ...store_rows import write
from ...waiting import retried
from .conftest import Kamailio, Sipp, free_port

pytestmark = [pytest.mark.asyncio, pytest.mark.kamailio]

CARRIER = "carrier_uas.xml"  # answers REGISTER and OPTIONS with 200 OK
DEADCALL = ["-deadcall_wait", "0"]


class NoAnswer(Exception):
    """A probe of a peer that is not listening yet."""


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_probe_sipp_uas(sipp: Sipp, transport: str) -> None:
    port = free_port(udp=True)
    uas = sipp.start(CARRIER, None, port=port, transport=transport.lower(), extra=DEADCALL)

    async def answered() -> Any:
        assert uas.poll() is None, "sipp exited"
        result = await probe("127.0.0.1", port, transport, within=0.5 * UNIT)
        if result.code is None:
            raise NoAnswer(result.error)
        return result

    result = await retried(answered, (NoAnswer,), 10 * UNIT, "sipp's UAS answering")
    assert (result.reply, result.error) == ("200 OK", None)
    assert result.latency_ms is not None and 0 < result.latency_ms < 200 * UNIT


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_probe_kamailio(kamailio: Kamailio, transport: str) -> None:
    result = await probe("127.0.0.1", kamailio.sip_port, transport, within=2 * UNIT)
    assert (result.reply, result.error) == ("200 Keepalive", None)


def trunk(mirror: Mirror, name: str) -> dict[str, Any]:
    return mirror.tables.get("trunks", {}).get(name, {})


async def test_options_source_end_to_end(
    kamailio: Kamailio, sipp: Sipp, start_rtm: StartRtm
) -> None:
    carrier_port, closed_port = free_port(udp=True), free_port()

    def start_carrier() -> Any:
        return sipp.start(CARRIER, None, port=carrier_port, extra=DEADCALL)

    def seed(db: str) -> None:
        write(
            db,
            "INSERT INTO trunks (name, host, port, transport, virtual_number)"
            " VALUES (?, '127.0.0.1', ?, ?, ?)",
            [
                ("sipp-udp", carrier_port, "UDP", "+4930100"),
                ("kamailio-tcp", kamailio.sip_port, "TCP", "+4930200"),
                ("closed", closed_port, "TCP", "+4930300"),
            ],
        )

    carrier = start_carrier()
    env = {"RTM_TRUNKS": "options:", "RTM_OPTIONS_INTERVAL": "0.5", "RTM_OPTIONS_TIMEOUT": "1"}
    server = start_rtm(env=env, seed=seed)
    async with server.ws() as ws:
        mirror = await Mirror(ws).start()
        await mirror.until(lambda m: trunk(m, "sipp-udp").get("status") == "OK", 10 * UNIT)
        await mirror.until(lambda m: trunk(m, "kamailio-tcp").get("status") == "OK", 5 * UNIT)
        await mirror.until(lambda m: trunk(m, "closed").get("status") == "FAILED", 5 * UNIT)
        assert trunk(mirror, "closed")["reason"] == "connection refused"
        assert trunk(mirror, "kamailio-tcp")["latency_ms"] > 0
        assert trunk(mirror, "sipp-udp")["virtual_number"] == "+4930100"

        carrier.kill()  # by its PID
        carrier.wait(10)
        down = await mirror.until(lambda m: trunk(m, "sipp-udp")["status"] == "FAILED", 5 * UNIT)
        assert trunk(mirror, "sipp-udp")["reason"] == "connection refused"
        start_carrier()
        back = await mirror.until(lambda m: trunk(m, "sipp-udp")["status"] == "OK", 10 * UNIT)
        assert trunk(mirror, "sipp-udp")["reason"] is None
    print(f"options: carrier down seen in {down:.2f} s, back in {back:.2f} s")

"""Trunk status from a real Kamailio (uac + dispatcher) and a sipp carrier, through a real rtm.

The carrier is lab/sipp/carrier_uas.xml, or a slow copy of it that answers after 1.2 s so that
every uac refresh spends 1.2 s in flight (flags 18): the state that must not make a healthy
trunk flap. The trunks' uac password is a canary that must appear nowhere rtm writes.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server import store
from server.collectors.base import SourceError
from server.collectors.kamailio.rpc import KamailioRpc, http_url
from server.collectors.kamailio.trunks import KamailioTrunkCollector
from server.collectors.trunk_rows import TrunkTable
from server.sip.probes import ProbeLoop, ProbeSettings

from ...conftest import StartRtm
from ...live_server import UNIT
from ...mirror import Mirror
from ...store_rows import write
from ...waiting import eventually, until
from .conftest import SIPP_DIR, Kamailio, Sipp, free_port

pytestmark = [pytest.mark.asyncio, pytest.mark.kamailio]

CANARY = "canary-trunk-pw-7f3a9c"
VIRTUAL_NUMBER = "+493011112222"
PROBE_ENV = {"RTM_OPTIONS_INTERVAL": "1", "RTM_OPTIONS_TIMEOUT": "2"}
IN_FLIGHT = 18  # uac's flags while a refresh waits for the carrier (registered bit cleared)
REFRESHES = 12  # seen in flight, with no status change, for the healthy-refresh test


class CarrierLab:
    """A sipp carrier on a fixed UDP port, a Kamailio registering to it, rtm's trunk table."""

    def __init__(self, kamailio_factory: Any, sipp: Sipp, tmp_path: Path, slow: bool) -> None:
        self.sipp = sipp
        self.port = free_port(udp=True)
        self.dead_udp = free_port(udp=True)
        self.dead_tcp = free_port()
        self.scenario = SIPP_DIR / "carrier_uas.xml"
        if slow:
            self.scenario = tmp_path / "slow_carrier.xml"
            text = (SIPP_DIR / "carrier_uas.xml").read_text()
            self.scenario.write_text(text.replace("<send>", '<pause milliseconds="1200"/>\n<send>'))
        self.carrier: subprocess.Popen[bytes] | None = None
        self.start_carrier()
        self.kamailio: Kamailio = kamailio_factory(
            uacreg=[
                uac("carrier-a", "acme", self.port),
                uac("carrier-x", "xuser", self.dead_udp),  # Kamailio knows it, the table not
            ],
            dispatcher=[f"1 sip:127.0.0.1:{self.port} 0 0 duid=carrier-a"],
        )

    def start_carrier(self) -> None:
        self.carrier = self.sipp.start(
            self.scenario, None, port=self.port, extra=["-deadcall_wait", "0"]
        )

    def kill_carrier(self) -> None:
        assert self.carrier is not None
        self.carrier.kill()  # this PID only
        self.carrier.wait(10)

    def seed(self, db: str) -> None:
        write(
            db,
            "INSERT INTO trunks (name, host, port, transport, encryption, virtual_number, username)"
            " VALUES (?, '127.0.0.1', ?, ?, ?, ?, 'acme')",
            [
                ("carrier-a", self.port, "UDP", 1, VIRTUAL_NUMBER),
                ("spare", self.dead_tcp, "TCP", 0, "+493099999999"),  # the table only
            ],
        )


def uac(name: str, user: str, port: int) -> dict[str, object]:
    return {
        "l_uuid": name,
        "l_username": user,
        "l_domain": "127.0.0.1",
        "r_username": user,
        "r_domain": "127.0.0.1",
        "realm": "127.0.0.1",
        "auth_username": user,
        "auth_password": CANARY,
        "auth_proxy": f"sip:127.0.0.1:{port}",
        "expires": 10,
    }


def trunk(mirror: Mirror, name: str) -> dict[str, Any]:
    return mirror.tables.get("trunks", {}).get(name, {})


def status_is(name: str, *statuses: str) -> Callable[[Mirror], bool]:
    return lambda m: trunk(m, name).get("status") in statuses


def assert_no_canary(server: Any, mirror: Mirror) -> None:
    assert CANARY not in "".join(mirror.raw)
    assert CANARY not in server.log()
    api = server.get("/api/trunks")
    assert CANARY not in api.text


async def test_carrier_killed_leaves_ok_with_a_reason_and_comes_back(
    kamailio_factory: Any, sipp: Sipp, tmp_path: Path, start_rtm: StartRtm
) -> None:
    lab = CarrierLab(kamailio_factory, sipp, tmp_path, slow=False)
    server = start_rtm(env={"RTM_TRUNKS": lab.kamailio.source_url, **PROBE_ENV}, seed=lab.seed)
    async with server.ws() as ws:
        mirror = await Mirror(ws).start()
        await mirror.until(status_is("carrier-a", "OK"), 30 * UNIT)
        await mirror.until(status_is("carrier-x", "FAILED"), 20 * UNIT)
        await mirror.until(status_is("spare", "FAILED"), 10 * UNIT)
        row = trunk(mirror, "carrier-a")
        assert (row["virtual_number"], row["transport"], row["encryption"]) == (
            VIRTUAL_NUMBER,
            "UDP",
            True,
        )
        assert row["reason"] is None and row["host"] == f"127.0.0.1:{lab.port}"
        await mirror.until(lambda m: trunk(m, "carrier-a").get("latency_ms") is not None)
        known_only = trunk(mirror, "carrier-x")
        assert (known_only["username"], known_only["virtual_number"]) == ("xuser", "")
        assert known_only["reason"] == "connection refused"
        assert trunk(mirror, "spare")["reason"] == "connection refused"

        lab.kill_carrier()
        down = await mirror.until(lambda m: not status_is("carrier-a", "OK")(m), 30 * UNIT)
        failed = trunk(mirror, "carrier-a")
        assert failed["status"] == "FAILED"
        assert failed["reason"] == "connection refused"  # UDP: loopback ICMP port unreachable

        lab.start_carrier()
        back = await mirror.until(status_is("carrier-a", "OK"), 40 * UNIT)
        assert trunk(mirror, "carrier-a")["reason"] is None
        print(f"carrier killed -> FAILED in {down:.1f} s; back -> OK in {back:.1f} s")
    assert_no_canary(server, mirror)


async def test_a_dozen_healthy_refreshes_in_flight_change_no_status(
    kamailio_factory: Any, sipp: Sipp, tmp_path: Path, start_rtm: StartRtm
) -> None:
    lab = CarrierLab(kamailio_factory, sipp, tmp_path, slow=True)
    server = start_rtm(env={"RTM_TRUNKS": lab.kamailio.source_url, **PROBE_ENV}, seed=lab.seed)
    in_flight = FlagWatcher(lab.kamailio, "carrier-a")
    async with server.ws() as ws:
        mirror = await Mirror(ws).start()
        await mirror.until(status_is("carrier-a", "OK"), 30 * UNIT)
        since = trunk(mirror, "carrier-a")["since"]
        start = len(mirror.frames)
        in_flight.start()
        try:  # as long as it takes, not a fixed time: a dozen refreshes seen in flight
            await mirror.until(lambda _m: in_flight.refreshes >= REFRESHES, 240 * UNIT)
        finally:
            in_flight.stop()
    changes = [
        frame
        for frame in mirror.frames[start:]
        if frame["type"] == "diff"
        and frame["table"] == "trunks"
        and any(row["id"] == "carrier-a" and "status" in row for row in frame["upsert"])
    ]
    assert changes == []
    assert trunk(mirror, "carrier-a")["status"] == "OK"
    assert trunk(mirror, "carrier-a")["since"] == since
    # The refreshes really were in flight while rtm polled (flags 18, registered bit cleared),
    # 1.2 s each (the slow carrier's answer).
    assert in_flight.seconds_in_flight >= REFRESHES * 1.0, in_flight.seconds
    print(f"seconds each uac flags value was seen: {in_flight.seconds}")
    assert_no_canary(server, mirror)


class FlagWatcher:
    """Polls a uac trunk's flags from Kamailio in a thread (tests/waiting.until's pace),
    adding up how long each flag value was seen, and counting the refreshes seen in flight
    (each time the flags become IN_FLIGHT)."""

    def __init__(self, kamailio: Kamailio, name: str) -> None:
        self.kamailio = kamailio
        self.name = name
        self.seconds: dict[int, float] = {}
        self.refreshes = 0
        self._flags: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def seconds_in_flight(self) -> float:
        return self.seconds.get(IN_FLIGHT, 0.0)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        last = [time.monotonic()]

        def sampled_until_stopped() -> bool:
            now = time.monotonic()
            for entry in self.kamailio.rpc("uac.reg_dump"):
                if entry["l_uuid"] == self.name:
                    flags = entry["flags"]
                    self.seconds[flags] = self.seconds.get(flags, 0.0) + now - last[0]
                    if flags == IN_FLIGHT and self._flags != IN_FLIGHT:
                        self.refreshes += 1
                    self._flags = flags
            last[0] = now
            return self._stop.is_set()

        until(sampled_until_stopped, 3600, "the flag watcher stopped")


async def test_collector_drops_credentials_and_fails_while_kamailio_is_down(
    kamailio_factory: Any, sipp: Sipp, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lab = CarrierLab(kamailio_factory, sipp, tmp_path, slow=False)
    db = str(tmp_path / "rtm.db")
    store.migrate(db)
    lab.seed(db)
    collector = KamailioTrunkCollector(
        KamailioRpc(http_url(lab.kamailio.source_url), timeout=5 * UNIT),
        TrunkTable(db),
        ProbeLoop(ProbeSettings(interval=1, timeout=1)),
    )
    try:
        rows = await collector.fetch()
        assert set(rows) == {"carrier-a", "carrier-x", "spare"}
        lab.kamailio.kill()
        with pytest.raises(SourceError, match="uac.reg_dump|dispatcher.list"):
            await collector.fetch()
        lab.kamailio.start()
        # Kamailio answers RPC before its uac has loaded its registrations: once it lists
        # carrier-x again, so must rtm.
        listed = lambda: any(e["l_uuid"] == "carrier-x" for e in lab.kamailio.rpc("uac.reg_dump"))  # noqa: E731
        await eventually(listed, 10 * UNIT, "Kamailio listing its registrations again")
        assert set(await collector.fetch()) == set(rows)
        seen = [json.dumps(rows), repr(rows), repr(vars(collector)), repr(vars(collector.probes))]
        assert not [text for text in seen if CANARY in text]
        assert CANARY not in caplog.text
    finally:
        await collector.close()

"""End to end: real Kamailio and sipp → a real rtm (its runner, hub and /ws) → a websockets client.

Each test starts its own Kamailio and rtm on free ports; the client is tests.mirror.Mirror.
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ...conftest import StartRtm
from ...live_server import UNIT, udp_port_free
from ...mirror import Mirror
from ...waiting import eventually
from .conftest import Kamailio, Sipp, StartKamailio, free_port

pytestmark = [pytest.mark.asyncio, pytest.mark.kamailio]


def accounts_by_user(mirror: Mirror) -> dict[str, dict[str, object]]:
    return {str(row["username"]): row for row in mirror.tables.get("accounts", {}).values()}


def has_user(user: str) -> Callable[[Mirror], bool]:
    return lambda mirror: user in accounts_by_user(mirror)


async def test_expires_0_removes_the_row_within_2_s(
    kamailio: Kamailio, sipp: Sipp, start_rtm: StartRtm
) -> None:
    server = start_rtm(env={"RTM_REGISTRATIONS": kamailio.source_url})
    port = free_port(udp=True)
    async with server.ws() as ws:
        mirror = await Mirror(ws).start()
        sipp.run("register.xml", kamailio, rows=[("leaver", 300), ("stayer", 300)], port=port)
        await mirror.until(lambda m: {"leaver", "stayer"} <= set(accounts_by_user(m)), 5 * UNIT)
        sipp.run("register.xml", kamailio, rows=[("leaver", 0)], port=port)
        took = await mirror.until(lambda m: "leaver" not in accounts_by_user(m), 2 * UNIT)
    assert took < 2 * UNIT
    assert set(accounts_by_user(mirror)) == {"stayer"}


async def test_a_15_s_registration_leaves_at_its_expiry_before_kamailio_sweeps_it(
    kamailio_factory: StartKamailio, sipp: Sipp, start_rtm: StartRtm
) -> None:
    # Kamailio's usrloc timer runs every 60 s here: only rtm's own expiry can remove the row.
    kamailio: Kamailio = kamailio_factory(defines={"ULTIMER": 60})
    server = start_rtm(env={"RTM_REGISTRATIONS": kamailio.source_url})
    async with server.ws() as ws:
        mirror = await Mirror(ws).start()
        sent = time.time()
        sipp.run("register.xml", kamailio, rows=[("brief", 15)])
        answered = time.time()
        await mirror.until(has_user("brief"), 5 * UNIT)
        await mirror.until(lambda m: "brief" not in accounts_by_user(m), 20 * UNIT)
        gone = time.time()
    assert sent + 15 - 1 <= gone <= answered + 15 + 1
    kept = [contact["Expires"] for contact in kamailio.all_contacts()]
    # Still in Kamailio (0 s left or "expired"): the timer had not swept it, rtm removed it.
    assert len(kept) == 1, "Kamailio had already swept it; the test proves nothing"
    assert kept[0] == "expired" or kept[0] <= 1


async def test_kamailio_killed_is_stale_then_recovers_with_kamailios_rows(
    kamailio: Kamailio, sipp: Sipp, start_rtm: StartRtm
) -> None:
    server = start_rtm(
        env={
            "RTM_REGISTRATIONS": kamailio.source_url,
            "RTM_TRUNKS": kamailio.source_url,
            "RTM_QUEUE": kamailio.msilo_url,
            "RTM_POLL": "0.3",
        }
    )
    async with server.ws() as ws:
        mirror = await Mirror(ws).start()
        sipp.run("register.xml", kamailio, rows=[(f"before{n}", 300) for n in range(3)])
        await mirror.until(lambda m: len(m.tables["accounts"]) == 3, 5 * UNIT)
        kamailio.kill()
        await mirror.until(
            lambda m: not m.sources["accounts"]["ok"] and not m.sources["trunks"]["ok"], 5 * UNIT
        )
        for table in ("accounts", "trunks"):
            assert "Kamailio" in str(mirror.sources[table]["error"]), mirror.sources[table]
        assert len(mirror.tables["accounts"]) == 3  # last good rows stay, marked stale
        # msilo's queue is Kamailio's SQLite file, still there and still right
        assert mirror.sources["queue"]["ok"] is True
        kamailio.start()
        sipp.run("register.xml", kamailio, rows=[(f"after{n}", 300) for n in range(2)])
        live = {c["Ruid"] for c in kamailio.contacts()}
        await mirror.until(
            lambda m: (
                all(m.sources[t]["ok"] for t in ("accounts", "trunks"))
                and set(m.tables["accounts"]) == live
            ),
            5 * UNIT,
        )
    assert set(accounts_by_user(mirror)) == {"after0", "after1"}


async def test_a_message_to_an_offline_user_is_queued_then_delivered(
    kamailio_factory: StartKamailio, sipp: Sipp, start_rtm: StartRtm
) -> None:
    kamailio: Kamailio = kamailio_factory(defines={"MSILO_CHECK": 1})
    server = start_rtm(env={"RTM_QUEUE": kamailio.msilo_url, "RTM_POLL_QUEUE": "0.3"})
    secret = f"SECRET-BODY-{uuid.uuid4().hex}"
    async with server.ws() as ws:
        mirror = await Mirror(ws).start()
        sipp.run("message_send.xml", kamailio, rows=[("carol", secret)])
        took = await mirror.until(lambda m: len(m.tables["queue"]) == 1, 2 * UNIT)
        assert took < 2 * UNIT
        (row,) = mirror.tables["queue"].values()
        assert (row["to_account"], row["from_account"], row["status"]) == (
            "carol",
            "sender",
            "ENQUEUED",
        )
        assert str(row["to"]).startswith("sip:carol@")
        # carol comes online: a sipp UAS answers the MESSAGE msilo delivers to her contact
        uas_port = free_port(udp=True)
        sipp.start("message_recv.xml", port=uas_port, calls=1)
        await eventually(lambda: not udp_port_free(uas_port), 5 * UNIT, "sipp UAS bound")
        sipp.run(
            "register_contact.xml", kamailio, rows=[("carol", 300)], keys={"contact_port": uas_port}
        )
        await mirror.until(lambda m: not m.tables["queue"], 15 * UNIT)
    assert not any(secret in frame for frame in mirror.raw)


def register_request(user: str, sip_port: int, local_port: int) -> bytes:
    branch = uuid.uuid4().hex
    return (
        f"REGISTER sip:127.0.0.1:{sip_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{branch}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:{user}@127.0.0.1>;tag={branch[:8]}\r\n"
        f"To: <sip:{user}@127.0.0.1>\r\n"
        f"Call-ID: {branch}@127.0.0.1\r\n"
        "CSeq: 1 REGISTER\r\n"
        f"Contact: <sip:{user}@127.0.0.1:{local_port}>\r\n"
        "Expires: 300\r\n"
        "User-Agent: rtm-latency-probe\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


@contextlib.contextmanager
def phone(kamailio: Kamailio) -> Iterator[Callable[[str], object]]:
    """``register(user)``: one REGISTER for ``user`` to Kamailio from a bound UDP socket."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        local_port = sock.getsockname()[1]
        target = ("127.0.0.1", kamailio.sip_port)
        yield lambda user: sock.sendto(
            register_request(user, kamailio.sip_port, local_port), target
        )


def evapi_env(kamailio: Kamailio) -> dict[str, str]:
    """Registrations with evapi hints and a full poll only every 60 s: rows come by hint."""
    return {
        "RTM_REGISTRATIONS": kamailio.source_url,
        "RTM_KAMAILIO_EVAPI": kamailio.evapi_url,
        "RTM_POLL_ACCOUNTS": "60",
    }


async def test_evapi_hints_bring_a_register_to_the_client_at_once(
    kamailio: Kamailio, start_rtm: StartRtm, tmp_path: Path
) -> None:
    # The full poll is 60 s apart: every row below can only have come through an evapi hint.
    server = start_rtm(env=evapi_env(kamailio))
    latencies = []
    with phone(kamailio) as register:
        async with server.ws() as ws:
            mirror = await Mirror(ws).start()
            # the hint connection comes up right after start; the first REGISTER proves it
            register("warmup")
            await mirror.until(has_user("warmup"), 10 * UNIT)
            for n in range(100):
                user = f"fast{n:03d}"
                sent = time.monotonic()
                register(user)
                await mirror.until(has_user(user), 5 * UNIT)
                latencies.append(time.monotonic() - sent)
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[98] * 1000
    print(f"\nevapi REGISTER -> WebSocket upsert over 100: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    assert p99 < 2000 * UNIT


async def test_evapi_reconnects_by_itself_after_kamailio_restarts(
    kamailio: Kamailio, start_rtm: StartRtm
) -> None:
    server = start_rtm(env=evapi_env(kamailio))
    with phone(kamailio) as register:
        async with server.ws() as ws:
            mirror = await Mirror(ws).start()
            await mirror.until(lambda m: m.sources["accounts"]["ok"], 5 * UNIT)  # first dump
            kamailio.kill()
            # Its events are gone and the next dump is a minute away: the table says so at
            # once, keeping its rows, and never shows the source live while it is down.
            await mirror.until(lambda m: not m.sources["accounts"]["ok"], 5 * UNIT)
            assert "evapi" in str(mirror.sources["accounts"]["error"]), mirror.sources
            kamailio.start()
            # Until the hint link is back a REGISTER goes unnoticed (the next poll is 60 s
            # away), so register again every half second until one comes through.
            deadline = time.monotonic() + 10 * UNIT
            while not has_user("again")(mirror):
                assert time.monotonic() < deadline, "evapi did not reconnect"
                register("again")
                try:
                    await mirror.until(has_user("again"), 0.5)
                except TimeoutError:
                    pass
            await mirror.until(lambda m: m.sources["accounts"]["ok"], 5 * UNIT)

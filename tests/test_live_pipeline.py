"""The pipeline end to end: a real rtm, a real SQLite store, a real websockets client."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from server import store
from server.times import parse_iso

from .conftest import StartRtm
from .live_server import UNIT, RtmServer
from .mirror import Mirror, close_code
from .store_rows import (
    add_account,
    add_contact,
    add_contacts,
    add_message,
    add_trunk,
    contact_params,
    delete_contact,
    set_message_status,
    set_trunk_status,
)

pytestmark = pytest.mark.asyncio


async def test_hello_then_snapshots(start_rtm: StartRtm) -> None:
    def seed(db: str) -> None:
        add_account(db, "alice", owner="Alice Liddell", caller_id="+39061234", group="Sales")
        add_contact(db, "alice", ip="203.0.113.7", port=27537, user_agent="PrivateGSM/4 <b>")
        add_trunk(db, "carrier-a", host="sip.carrier.example", transport="TLS", encryption=1)
        add_message(db, "m1", from_number="+3906", to_number="+3907")

    server = start_rtm(seed=seed)
    async with server.ws() as ws:
        mirror = await Mirror(ws).start()
    assert mirror.hello["tables"] == ["accounts", "trunks", "queue"]
    (alice,) = mirror.tables["accounts"].values()
    assert alice["owner"] == "Alice Liddell"
    assert alice["group"] == "Sales"
    assert (alice["ip"], alice["port"], alice["transport"]) == ("203.0.113.7", 27537, "UDP")
    assert alice["user_agent"] == "PrivateGSM/4 <b>"
    (trunk,) = mirror.tables["trunks"].values()
    assert trunk["encryption"] is True and trunk["status"] == "PENDING"
    assert list(mirror.tables["queue"]) == ["m1"]
    assert all(source["ok"] for source in mirror.sources.values())


async def test_insert_and_delete_arrive_as_diffs(rtm_server: RtmServer) -> None:
    async with rtm_server.ws() as ws:
        mirror = await Mirror(ws).start()
        ruid = add_contact(rtm_server.db, "bob")
        took = await mirror.until(lambda m: ruid in m.tables["accounts"], 2 * UNIT)
        assert took < 2 * UNIT
        assert mirror.frames[-1]["type"] == "diff"
        delete_contact(rtm_server.db, ruid)
        await mirror.until(lambda m: ruid not in m.tables["accounts"], 2 * UNIT)
        assert mirror.frames[-1]["delete"] == [ruid]


async def test_expired_contact_leaves_without_any_write(rtm_server: RtmServer) -> None:
    ruid = add_contact(rtm_server.db, "carol", expires_in=3)
    async with rtm_server.ws() as ws:
        mirror = await Mirror(ws).start()
        await mirror.until(lambda m: ruid in m.tables["accounts"], 2 * UNIT)
        expires = mirror.tables["accounts"][ruid]["expires"]
        await mirror.until(lambda m: ruid not in m.tables["accounts"], 5 * UNIT)
    # It left at its expiry second: not before it, and not at some later sweep.
    assert 0 <= time.time() - parse_iso(expires) < 1.5


async def test_changed_row_carries_only_changed_fields(rtm_server: RtmServer) -> None:
    add_trunk(rtm_server.db, "carrier-b")
    async with rtm_server.ws() as ws:
        mirror = await Mirror(ws).start()
        await mirror.until(lambda m: "carrier-b" in m.tables["trunks"])
        set_trunk_status(rtm_server.db, "carrier-b", "FAILED", "408 Request Timeout")
        await mirror.until(lambda m: m.tables["trunks"]["carrier-b"]["status"] == "FAILED")
        diff = mirror.frames[-1]
        assert diff["type"] == "diff"
        assert set(diff["upsert"][0]) <= {"id", "status", "reason", "since", "latency_ms"}


async def test_resume_loses_and_duplicates_nothing(rtm_server: RtmServer) -> None:
    async with rtm_server.ws() as ws:
        first = await Mirror(ws).start()
    # Changes made while disconnected arrive as diffs on resume, not a snapshot.
    ruids = [add_contact(rtm_server.db, f"user{i}") for i in range(3)]
    add_message(rtm_server.db, "m-resume")
    set_message_status(rtm_server.db, "m-resume", "DELIVERED")
    async with rtm_server.ws() as ws:
        # Wait for the server to have seen the writes before resuming.
        probe = await Mirror(ws).start()
        await probe.until(lambda m: all(r in m.tables["accounts"] for r in ruids), 3 * UNIT)
    async with rtm_server.ws() as ws:
        second = Mirror(ws)
        second.tables = {t: dict(rows) for t, rows in first.tables.items()}
        second.seq = dict(first.seq)
        await second.start(epoch=first.epoch, seq=first.seq)
        assert not any(f["type"] == "snapshot" for f in second.frames)
        assert any(f["type"] == "diff" for f in second.frames)
        # Against a client connecting after it (the probe waited for the contacts only: the
        # message's add and delivery may land after the probe's snapshot).
        async with rtm_server.ws() as other:
            fresh = await Mirror(other).start()
        await second.until(lambda m: all(m.seq[t] >= n for t, n in fresh.seq.items()), 3 * UNIT)
        assert second.tables == fresh.tables
        assert second.seq == fresh.seq


async def test_resume_with_unknown_epoch_gets_snapshots(rtm_server: RtmServer) -> None:
    add_contact(rtm_server.db, "dave")
    async with rtm_server.ws() as ws:
        mirror = await Mirror(ws).start(epoch="some-old-epoch", seq={"accounts": 5})
    assert {f["table"] for f in mirror.frames if f["type"] == "snapshot"} == {
        "accounts",
        "trunks",
        "queue",
    }


async def test_stopped_source_turns_stale_and_recovers(start_rtm: StartRtm, tmp_path: Path) -> None:
    other = str(tmp_path / "queue.db")
    store.migrate(other)
    server = start_rtm(env={"RTM_QUEUE": f"sqlite:///{other}"})
    add_message(other, "m-stale")
    async with server.ws() as ws:
        mirror = await Mirror(ws).start()
        await mirror.until(lambda m: "m-stale" in m.tables["queue"])
        os.rename(other, other + ".away")
        await mirror.until(lambda m: not m.sources["queue"]["ok"], 5 * UNIT)
        stale = mirror.sources["queue"]
        assert stale["error"] and stale["since"]
        assert "m-stale" in mirror.tables["queue"], "a stale source keeps its last rows"
        os.rename(other + ".away", other)
        await mirror.until(lambda m: m.sources["queue"]["ok"], 5 * UNIT)


async def test_garbage_frames_get_errors_and_server_lives(rtm_server: RtmServer) -> None:
    async with rtm_server.ws() as ws:
        mirror = Mirror(ws)
        await mirror.receive_one()
        for garbage in ["not json", "[1,2]", '{"type":"explode"}', '{"type":"resume","seq":5}']:
            await ws.send(garbage)
            frame = await mirror.receive_one()
            assert frame["type"] == "error"
        await ws.send(b"\x00\x01")
        assert (await mirror.receive_one())["type"] == "error"
        await ws.send(json.dumps({"type": "resume", "epoch": None, "seq": {}}))
        await mirror.until(lambda m: set(m.sources) == {"accounts", "trunks", "queue"})
        await ws.send("after the resume")
        assert (await mirror.receive_one())["type"] == "error"
    assert rtm_server.get("/healthz").status_code == 200


async def test_oversized_frame_closes_1009(rtm_server: RtmServer) -> None:
    async with rtm_server.ws(max_size=None) as ws:
        await ws.recv()
        assert await close_code(ws, "x" * (70 * 1024)) == 1009
    assert rtm_server.get("/healthz").status_code == 200


async def test_flood_closes_1008(rtm_server: RtmServer) -> None:
    async with rtm_server.ws() as ws:
        await ws.recv()
        assert await close_code(ws, *["{}"] * 200) == 1008


async def test_payload_canary_appears_nowhere(rtm_server: RtmServer) -> None:
    canary = "CANARY-7f3a-SECRET-PAYLOAD"
    add_message(rtm_server.db, "m-canary", payload=canary.encode())
    async with rtm_server.ws() as ws:
        mirror = await Mirror(ws).start()
        await mirror.until(lambda m: "m-canary" in m.tables["queue"])
    bodies = [rtm_server.get(p).text for p in ("/api/queue", "/api/queue/m-canary", "/healthz")]
    assert all(canary not in text for text in mirror.raw + bodies)
    assert canary not in rtm_server.log()


async def test_first_snapshot_waits_for_the_first_poll(start_rtm: StartRtm) -> None:
    """A client connecting right after a restart never sees a falsely empty table."""

    def seed(db: str) -> None:
        add_contacts(db, [contact_params(f"early{i}") for i in range(60_000)])

    # 60k contacts make the first poll take about a second, while /healthz answers at once;
    # a long interval means only the first poll can fill the table.
    server = start_rtm(seed=seed, env={"RTM_POLL": "30"})
    async with server.ws() as ws:
        mirror = await Mirror(ws).start()
    assert len(mirror.tables["accounts"]) == 60_000


async def test_limits_are_counted_in_metrics(rtm_server: RtmServer) -> None:
    async with rtm_server.ws() as ws:
        await ws.recv()
        await ws.send("not json")
        await ws.recv()
    async with rtm_server.ws(max_size=None) as ws:
        await ws.recv()
        await ws.send("x" * (70 * 1024))
        await ws.wait_closed()
    text = rtm_server.get("/metrics").text  # loopback may read metrics
    assert "rtm_ws_bad_messages_total 1" in text
    assert 'rtm_ws_closed_total{reason="oversized"} 1' in text
    assert 'rtm_source_up{table="accounts"} 1' in text


async def test_past_the_connection_cap_an_upgrade_is_refused_and_counted(
    start_rtm: StartRtm,
) -> None:
    server = start_rtm(env={"RTM_WS_MAX_CLIENTS": "2"})
    async with server.ws() as first, server.ws() as second:
        await Mirror(first).start()
        await Mirror(second).start()
        async with server.ws() as third:
            assert await close_code(third) == 1013
        assert server.get("/login").status_code == 200  # HTTP keeps working
        assert "rtm_ws_refused_total 1.0" in server.get("/metrics").text
    async with server.ws() as again:  # a slot freed: served again
        await Mirror(again).start()

"""Snapshots encoded once and shared: over HTTP (gzipped, with an ETag) and as WebSocket pages,
and a client that fetches one and resumes the socket from its seq ends equal to the server."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import httpx
import pytest

from server.hub import Hub

from .conftest import StartRtm
from .live_server import UNIT, RtmServer
from .mirror import Mirror
from .store_rows import add_contact, delete_contact
from .waiting import eventually

pytestmark = pytest.mark.asyncio


def rows(n: int, tag: str = "") -> dict[str, dict[str, Any]]:
    return {f"r{i}": {"id": f"r{i}", "v": f"{tag}{i}"} for i in range(n)}


def body(hub: Hub, table: str) -> dict[str, Any]:
    shared = hub.tables[table].shared
    assert shared is not None
    decoded: dict[str, Any] = json.loads(gzip.decompress(shared.gzipped))
    return decoded


async def test_clients_asking_at_once_share_one_encode() -> None:
    hub = Hub(["t"])
    hub.publish_state("t", rows(2000))
    answers = await asyncio.gather(*(hub.tables["t"].shared_snapshot(hub.epoch) for _ in range(50)))
    assert len({id(a) for a in answers}) == 1 and hub.tables["t"].encodes == 1
    assert body(hub, "t")["seq"] == 1 and len(body(hub, "t")["rows"]) == 2000
    assert body(hub, "t")["epoch"] == hub.epoch


async def test_the_first_full_read_builds_the_body_that_the_first_clients_share() -> None:
    # A restart: nobody has asked yet when the first read is in; the body is built then.
    hub = Hub(["t"])
    table = hub.tables["t"]
    hub.publish_state("t", rows(2000))
    hub.mark_polled("t")
    await eventually(lambda: table.shared is not None, 5 * UNIT, "the body built unasked")
    assert (await table.shared_snapshot(hub.epoch)) is table.shared and table.encodes == 1
    # Clients arriving while that build runs wait for it: never a second build.
    later = Hub(["t"])
    later.publish_state("t", rows(2000))
    later.mark_polled("t")
    answers = await asyncio.gather(
        *(later.tables["t"].shared_snapshot(later.epoch) for _ in range(20))
    )
    assert len({id(a) for a in answers}) == 1 and later.tables["t"].encodes == 1
    assert json.loads(gzip.decompress(answers[0].gzipped))["rows"] == list(rows(2000).values())


async def test_a_body_built_unasked_is_dropped_once_nobody_asked_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Memory stays bounded: the body built at the first read is one table's, and it goes
    # at the first publish after SHARED_IDLE without an ask, as an asked-for one does.
    hub = Hub(["t"])
    table = hub.tables["t"]
    hub.publish_state("t", rows(100))
    hub.mark_polled("t")
    await eventually(lambda: table.shared is not None, 5 * UNIT, "the body built unasked")
    monkeypatch.setattr("server.hub.SHARED_IDLE", 0.0)
    hub.publish_changes("t", {"r1": {"id": "r1", "v": "changed"}})
    assert table.shared is None


async def test_a_row_that_orjson_refuses_is_encoded_all_the_same() -> None:
    hub = Hub(["t"])
    hub.publish_state("t", {"big": {"id": "big", "n": 2**70, "s": "caf\u00e9 \u2028"}})
    await hub.tables["t"].shared_snapshot(hub.epoch)
    assert body(hub, "t")["rows"] == [{"id": "big", "n": 2**70, "s": "caf\u00e9 \u2028"}]


async def test_under_churn_the_shared_snapshot_is_reused_while_the_ring_can_catch_up() -> None:
    hub = Hub(["t"], ring_size=4)
    table = hub.tables["t"]
    hub.publish_state("t", rows(100))
    first = await table.shared_snapshot(hub.epoch)
    table.snapshot()  # a WebSocket client connects too: pages at seq 1
    for i in range(3):  # three diffs: the ring (4) still holds all of them
        hub.publish_changes("t", {"r1": {"id": "r1", "v": f"churn{i}"}})
    again = await table.shared_snapshot(hub.epoch)
    assert again is first and table.encodes == 2  # the HTTP body and the pages, once each
    # The WebSocket path shares pages the same way: pages at seq 1, then diffs 2..4.
    frames = [json.loads(f) for f in table.snapshot()]
    assert [f["type"] for f in frames] == ["snapshot", "diff", "diff", "diff"]
    assert [f["seq"] for f in frames] == [1, 2, 3, 4]
    for i in range(3, 6):  # the ring no longer reaches back to seq 1: dropped, re-encoded
        hub.publish_changes("t", {"r1": {"id": "r1", "v": f"churn{i}"}})
    assert table.shared is None
    fresh = await table.shared_snapshot(hub.epoch)
    assert fresh.seq == table.seq and table.encodes == 3


async def test_a_source_change_makes_a_new_body_and_etag() -> None:
    hub = Hub(["t"])
    hub.publish_state("t", rows(3))
    first = await hub.tables["t"].shared_snapshot(hub.epoch)
    hub.set_source("t", False, "boom")
    second = await hub.tables["t"].shared_snapshot(hub.epoch)
    assert second.etag != first.etag and body(hub, "t")["source"]["error"] == "boom"


async def test_http_snapshot_etag_gzip_and_resume(start_rtm: StartRtm) -> None:
    server: RtmServer = start_rtm(seed=lambda db: [add_contact(db, f"u{i}") for i in range(50)])
    url = server.url + "/api/accounts"
    async with httpx.AsyncClient(headers=server.headers, cookies=server.cookies) as http:
        answer = await http.get(url, headers={"Accept-Encoding": "gzip"})
        assert answer.status_code == 200 and answer.headers["content-encoding"] == "gzip"
        held = answer.json()
        etag = answer.headers["etag"]
        unchanged = await http.get(url, headers={"If-None-Match": etag})
        assert unchanged.status_code == 304 and not unchanged.content
        plain = await http.get(url, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.json() == held
        # Writes land between the fetch and the socket: the resume brings exactly those.
        new = add_contact(server.db, "late")
        gone = next(iter(r["id"] for r in held["rows"]))
        delete_contact(server.db, gone)
        async with server.ws() as ws:
            mirror = Mirror(ws)
            mirror.tables["accounts"] = {r["id"]: r for r in held["rows"]}
            mirror.seq["accounts"] = held["seq"]
            await mirror.start(held["epoch"], {"accounts": held["seq"]})
            await mirror.until(lambda m: new in m.tables["accounts"], 5 * UNIT)
            await mirror.until(lambda m: gone not in m.tables["accounts"], 5 * UNIT)
            snapshots = [f for f in mirror.frames if f["type"] == "snapshot"]
            assert not [f for f in snapshots if f["table"] == "accounts"]
            await same_as_a_fresh_client(server, mirror)


async def test_a_resume_from_a_seq_that_left_the_ring_gets_a_snapshot(start_rtm: StartRtm) -> None:
    server: RtmServer = start_rtm(env={"RTM_RING_SIZE": "2"})
    async with httpx.AsyncClient(headers=server.headers, cookies=server.cookies) as http:
        held = (await http.get(server.url + "/api/accounts")).json()
        async with server.ws() as watching:
            watcher = await Mirror(watching).start()
            for i in range(4):  # four diffs, each seen before the next write: the ring keeps 2
                add_contact(server.db, f"w{i}")
                seq = held["seq"] + i + 1
                await watcher.until(lambda m, seq=seq: m.seq["accounts"] >= seq, 5 * UNIT)
        async with server.ws() as ws:
            mirror = await Mirror(ws).start(held["epoch"], {"accounts": held["seq"]})
            assert any(f["type"] == "snapshot" and f["table"] == "accounts" for f in mirror.frames)
            await same_as_a_fresh_client(server, mirror)


async def same_as_a_fresh_client(server: RtmServer, mirror: Mirror) -> None:
    """The mirror holds what a client connecting now is given (at the same seq)."""
    async with server.ws() as ws:
        fresh = await Mirror(ws).start()
    await mirror.until(lambda m: m.seq["accounts"] >= fresh.seq["accounts"], 5 * UNIT)
    assert mirror.seq["accounts"] == fresh.seq["accounts"]
    assert mirror.tables["accounts"] == fresh.tables["accounts"]

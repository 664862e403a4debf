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


async def test_a_hub_that_serves_no_client_builds_no_body() -> None:
    # A cluster leader's own hub (frames=False): its first read of a million rows built a
    # body for nobody, a second of the new leader's loop.
    hub = Hub(["t"], frames=False)
    hub.publish_state("t", rows(2000))
    hub.mark_polled("t")
    assert hub.tables["t"]._prebuild is None, "no build started (it starts right here)"


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


def named(names: list[str]) -> dict[str, dict[str, Any]]:
    return {f"r{i}": {"id": f"r{i}", "username": name} for i, name in enumerate(names)}


async def test_a_preview_is_the_first_rows_in_the_pages_order() -> None:
    # The page's compareKeys: text case-insensitive, a missing value first, ties by id
    # ascending in both directions (web/js/rowindex.js).
    names = ["bob", "Alice", "carol", "alice", "Bob", "dave", "eve"]
    hub = Hub(["t"])
    hub.publish_state("t", {**named(names), "r9": {"id": "r9", "username": None}})
    table = hub.tables["t"]
    ascending = json.loads(await table.head(hub.epoch, "username", False, 4))
    assert [r["id"] for r in ascending["rows"]] == ["r9", "r1", "r3", "r0"]
    assert ascending["total"] == 8 and ascending["first"] is True
    assert ascending["epoch"] == hub.epoch and ascending["seq"] == table.seq
    descending = json.loads(await table.head(hub.epoch, "username", True, 3))
    assert [r["id"] for r in descending["rows"]] == ["r6", "r5", "r2"]
    ties = json.loads(await table.head(hub.epoch, "username", True, 6))["rows"]
    assert [r["id"] for r in ties][3:] == ["r0", "r4", "r1"]  # bob, Bob (r0 < r4), then alice
    # A field no row has orders by id; more asked than held gives every row.
    everything = json.loads(await table.head(hub.epoch, "nope", False, 99))["rows"]
    assert [r["id"] for r in everything] == ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r9"]


async def test_clients_asking_for_the_same_preview_share_one_build_and_memory_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub = Hub(["t"])
    hub.publish_state("t", named([f"u{i}" for i in range(5000)]))
    table = hub.tables["t"]
    answers = await asyncio.gather(
        *(table.head(hub.epoch, "username", False, 50) for _ in range(30))
    )
    assert len({id(a) for a in answers}) == 1 and len(table._heads) == 1
    for count in range(1, 20):  # any number of different orders: a few kept
        await table.head(hub.epoch, "username", False, count)
    assert len(table._heads) <= 8
    monkeypatch.setattr("server.hub.SHARED_MAX_AGE", 0.0)
    hub.publish_changes("t", {"r1": {"id": "r1", "username": "changed"}})
    assert not table._heads  # old previews go at the next publish


async def test_http_preview_and_its_bad_queries(start_rtm: StartRtm) -> None:
    server: RtmServer = start_rtm(seed=lambda db: [add_contact(db, f"u{i:02d}") for i in range(30)])
    url = server.url + "/api/accounts"
    async with httpx.AsyncClient(headers=server.headers, cookies=server.cookies) as http:
        answer = await http.get(url, params={"first": "5", "sort": "username", "dir": "desc"})
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
        preview = answer.json()
        assert [r["username"] for r in preview["rows"]] == ["u29", "u28", "u27", "u26", "u25"]
        assert preview["total"] == 30 and preview["source"]["ok"] is True
        for query, says in (
            ({"first": "0"}, "first must be"),
            ({"first": "1001"}, "first must be"),
            ({"first": "ten"}, "first must be"),
            ({"first": "5", "sort": "user name"}, "sort must be"),
            ({"first": "5", "sort": "x" * 65}, "sort must be"),
            ({"first": "5", "dir": "up"}, "dir must be"),
        ):
            bad = await http.get(url, params=query)
            assert bad.status_code == 400 and bad.json()["error"].startswith(says), query
        # The whole table is served as before, beside the previews.
        assert len((await http.get(url)).json()["rows"]) == 30

"""The hub alone: seq numbering, the resume ring, and backpressure on slow clients."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server import protocol
from server.hub import Hub


def rows(n: int, tag: str = "", width: int = 0) -> dict[str, dict[str, Any]]:
    return {str(i): {"id": str(i), "tag": tag, "pad": "x" * width} for i in range(n)}


def decoded(frames: list[str]) -> list[dict[str, Any]]:
    return [json.loads(f) for f in frames]


def test_seq_increases_only_on_change() -> None:
    hub = Hub(["t"])
    hub.publish_state("t", rows(3))
    hub.publish_state("t", rows(3))
    assert hub.tables["t"].seq == 1
    hub.publish_state("t", rows(3, "b"))
    assert hub.tables["t"].seq == 2


def test_resume_within_ring_replays_only_missed_diffs() -> None:
    hub = Hub(["t"], ring_size=10)
    for i in range(5):
        hub.publish_state("t", rows(2, str(i)))
    _, frames = hub.connect(protocol.Resume(hub.epoch, {"t": 3}))
    kinds = [(f["type"], f.get("seq")) for f in decoded(frames)]
    assert kinds == [("diff", 4), ("diff", 5), ("source", None)]


def test_resume_past_ring_or_other_epoch_gets_snapshot() -> None:
    hub = Hub(["t"], ring_size=2)
    for i in range(5):
        hub.publish_state("t", rows(2, str(i)))
    for resume in (protocol.Resume(hub.epoch, {"t": 1}), protocol.Resume("old", {"t": 5}), None):
        _, frames = hub.connect(resume)
        assert decoded(frames)[0]["type"] == "snapshot"


def test_a_diff_nobody_can_read_is_never_encoded_and_resuming_past_it_is_a_snapshot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoded: list[Any] = []
    encode = protocol.encode
    monkeypatch.setattr(protocol, "encode", lambda frame: encoded.append(frame) or encode(frame))
    monkeypatch.setattr("server.hub.UNSENT_DIFF", 5)
    hub = Hub(["t"], ring_size=10)
    hub.publish_state("t", rows(2))  # small: kept for resuming clients
    hub.publish_state("t", rows(8, "big"))  # no client, and over the limit: not encoded
    diffs = lambda: [frame.seq for frame in encoded if isinstance(frame, protocol.Diff)]  # noqa: E731
    assert diffs() == [1] and hub.tables["t"].seq == 2
    _, frames = hub.connect(protocol.Resume(hub.epoch, {"t": 1}))
    assert decoded(frames)[0]["type"] == "snapshot"  # seq 2 was never kept
    hub.publish_state("t", rows(8, "again"))  # a client now: sent, however big
    assert diffs() == [1, 3]


def test_a_hub_without_frames_tells_its_listener_and_encodes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(protocol, "encode", lambda frame: pytest.fail("encoded"))
    hub, told = Hub(["t"], frames=False), []
    hub.on_publish = lambda state, changes: told.append((state.seq, len(changes)))
    hub.publish_state("t", rows(2))
    hub.publish_changes("t", {}, ["0"])
    assert told == [(1, 2), (2, 1)]


def test_snapshot_pages_are_bounded_and_final_last() -> None:
    hub = Hub(["t"])
    hub.publish_state("t", rows(12001))
    _, frames = hub.connect(None)
    pages = [f for f in decoded(frames) if f["type"] == "snapshot"]
    assert [len(p["rows"]) for p in pages] == [5000, 5000, 2001]
    assert [p["final"] for p in pages] == [False, False, True]


def test_stalled_client_is_bounded_and_resynced_while_others_get_every_diff() -> None:
    hub = Hub(["t"], client_frames=8, client_bytes=200_000)
    stalled, _ = hub.connect(None)
    healthy = [hub.connect(None)[0] for _ in range(20)]
    received: list[list[dict[str, Any]]] = [[] for _ in healthy]
    for i in range(200):
        hub.publish_state("t", rows(50, str(i), width=100))
        for client, got in zip(healthy, received, strict=True):
            got.extend(decoded(client.take()))  # healthy clients drain as they go
        assert stalled.queued_bytes <= 200_000
    assert all([f["seq"] for f in got] == list(range(1, 201)) for got in received)
    assert stalled.needs_snapshot and hub.stats.resyncs >= 1
    frames = decoded(hub.snapshot_frames(stalled))
    assert frames[0] == {
        "type": "snapshot",
        "table": "t",
        "seq": 200,
        "rows": list(rows(50, "199", width=100).values()),
        "final": True,
    }
    assert not stalled.needs_snapshot


def test_source_changes_are_broadcast_once() -> None:
    hub = Hub(["t"])
    hub.mark_polled("t")
    client, _ = hub.connect(None)
    hub.set_source("t", False, "boom")
    hub.set_source("t", False, "boom")
    hub.set_source("t", True, None)
    assert [(f["ok"], f["error"]) for f in decoded(client.take())] == [
        (False, "boom"),
        (True, None),
    ]


def test_snapshot_pages_are_bounded_in_bytes_too() -> None:
    hub = Hub(["t"])
    hub.publish_state("t", rows(600, width=2000))
    pages = [f for f in hub.snapshot_frames() if '"snapshot"' in f]
    assert len(pages) > 1 and all(len(page) < 600 * 1024 for page in pages)
    assert sum(len(json.loads(page)["rows"]) for page in pages) == 600


def test_resume_ring_is_bounded_in_bytes() -> None:
    hub = Hub(["t"], ring_size=100, ring_bytes=50_000)
    for i in range(20):
        # every field of every row changes: ~8 KB a diff
        hub.publish_state("t", {str(k): {"id": str(k), "pad": f"{i:03}" * 100} for k in range(20)})
    state = hub.tables["t"]
    assert sum(len(frame) for _, frame in state.ring) <= 50_000
    assert state.ring[-1][0] == 20 and len(state.ring) < 20
    # A client older than the ring gets a snapshot, a recent one only diffs.
    _, old = hub.connect(protocol.Resume(hub.epoch, {"t": 1}))
    _, recent = hub.connect(protocol.Resume(hub.epoch, {"t": 19}))
    assert decoded(old)[0]["type"] == "snapshot"
    assert [f["type"] for f in decoded(recent)] == ["diff", "source"]


def test_a_table_not_yet_read_is_never_sent_as_a_healthy_empty_one() -> None:
    # A client that waited out FIRST_POLL_WAIT got an empty snapshot with its source "ok":
    # a page showing Live and "0 registered users" that no source ever said.
    hub = Hub(["t"])
    client, frames = hub.connect(None)
    (snapshot, source) = decoded(frames)
    assert snapshot["rows"] == [] and (source["ok"], source["error"]) == (False, "not read yet")
    hub.publish_state("t", rows(2))
    hub.set_source("t", True, None)
    hub.mark_polled("t")
    hub.mark_polled("t")
    heard = decoded(client.take())
    assert [(f["type"], f.get("ok")) for f in heard] == [("diff", None), ("source", True)]
    assert decoded(hub.connect(None)[1])[-1]["ok"] is True
    # A source that fails before its first poll ends is told as it is: that is a reading.
    failing = Hub(["t"])
    failing.set_source("t", False, "no database at x.db")
    assert decoded(failing.connect(None)[1])[-1]["error"] == "no database at x.db"

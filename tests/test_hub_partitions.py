"""The hub's partitions: several nodes feeding one table, each touching only its own rows."""

from __future__ import annotations

import json
from typing import Any

from server import protocol
from server.hub import NOT_READ, Hub


def part(node: str, n: int, tag: str = "") -> dict[str, dict[str, Any]]:
    """``n`` rows of ``node``, ids prefixed by the node as the runner does."""
    return {f"{node}:{i}": {"id": f"{node}:{i}", "node": node, "tag": tag} for i in range(n)}


def two_nodes() -> Hub:
    hub = Hub(["t"])
    hub.add_node("t", "a")
    hub.add_node("t", "b")
    return hub


def decoded(frames: list[str]) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in frames]


def test_a_nodes_full_read_never_touches_another_nodes_rows() -> None:
    hub = two_nodes()
    hub.publish_state("t", part("a", 3), node="a")
    hub.publish_state("t", part("b", 2), node="b")
    assert set(hub.tables["t"].rows) == set(part("a", 3)) | set(part("b", 2))
    # a's next read lists one row fewer and one changed: b's rows stay, untouched
    b_rows = {key: hub.tables["t"].rows[key] for key in part("b", 2)}
    changes = hub.publish_state(
        "t", {**part("a", 1), "a:1": {"id": "a:1", "node": "a", "tag": "x"}}, node="a"
    )
    assert changes.delete == ["a:2"]
    assert changes.upsert == [{"id": "a:1", "tag": "x"}]
    assert all(hub.tables["t"].rows[key] is row for key, row in b_rows.items())
    # an empty read of b empties b's part only
    hub.publish_state("t", {}, node="b")
    assert set(hub.tables["t"].rows) == {"a:0", "a:1"}
    assert hub.tables["t"].partitions == {"a": {"a:0", "a:1"}, "b": set()}


def test_rows_compared_counts_only_that_nodes_rows() -> None:
    hub = two_nodes()
    hub.publish_state("t", part("a", 1000), node="a")
    hub.publish_state("t", part("b", 10), node="b")
    before = hub.stats.rows_compared
    hub.publish_state("t", part("b", 10, "new"), node="b")
    assert hub.stats.rows_compared - before == 10
    before = hub.stats.rows_compared
    hub.publish_state("t", part("b", 9), node="b")  # 9 listed, 1 gone
    assert hub.stats.rows_compared - before == 10


def test_changes_keep_the_partition_and_one_seq_for_the_table() -> None:
    hub = two_nodes()
    hub.publish_changes("t", part("a", 2), node="a")
    hub.publish_changes("t", part("b", 2), node="b")
    hub.publish_changes("t", {}, ["a:0"], node="a")
    assert hub.tables["t"].partitions == {"a": {"a:1"}, "b": {"b:0", "b:1"}}
    assert hub.tables["t"].seq == 3
    # a full read of a after changes still knows which rows are a's
    hub.publish_state("t", {}, node="a")
    assert set(hub.tables["t"].rows) == {"b:0", "b:1"}


def test_a_stale_node_makes_the_table_stale_naming_it_and_the_others_stay_ok() -> None:
    hub = two_nodes()
    client, _ = hub.connect(None)
    for node in ("a", "b"):
        hub.set_source("t", True, None, node)
        hub.mark_polled("t", node)
    client.take()
    hub.set_source("t", False, "no answer in time", "b")
    (frame,) = decoded(client.take())
    assert frame["type"] == "source" and frame["ok"] is False
    assert frame["error"] == "node b: no answer in time"
    nodes = {n["node"]: n for n in frame["nodes"]}
    assert nodes["a"]["ok"] is True and nodes["b"]["ok"] is False
    assert frame["since"] == nodes["b"]["since"]
    assert frame["read"] is True
    assert hub.source_ok("t", "a") and not hub.source_ok("t", "b")
    hub.set_source("t", False, "no answer in time", "b")  # no news: no frame
    assert client.take() == []
    hub.set_source("t", True, None, "b")
    (frame,) = decoded(client.take())
    assert frame["ok"] is True and frame["error"] is None


def test_the_table_is_polled_once_every_node_was() -> None:
    hub = two_nodes()
    hub.mark_polled("t", "a")
    assert not hub.polled("t")
    _, frames = hub.connect(None)
    assert decoded(frames)[-1]["error"] == NOT_READ
    hub.mark_polled("t", "b")
    assert hub.polled("t") and hub.ready.is_set()


def test_a_single_source_frame_is_as_before() -> None:
    hub = Hub(["t"])
    hub.set_source("t", False, "down")
    _, frames = hub.connect(None)
    source = decoded(frames)[-1]
    assert list(source) == ["table", "ok", "error", "since", "read", "type"]
    assert protocol.encode(hub.tables["t"].source).endswith('"read":false,"type":"source"}')


def test_a_node_declared_on_a_hub_holding_its_rows_takes_them_as_its_part() -> None:
    """A cluster's new leader copies the cluster's table (rows of every node, published
    whole) before its collectors declare their nodes: each node's part is its rows."""
    hub = Hub(["t"])
    hub.publish_changes("t", {**part("a", 2), **part("b", 1), "x": {"id": "x", "node": None}})
    hub.add_node("t", "a")
    hub.add_node("t", "b")
    assert hub.tables["t"].partitions == {"a": {"a:0", "a:1"}, "b": {"b:0"}}
    changes = hub.publish_state("t", part("a", 1), node="a")  # a no longer lists a:1
    assert changes.delete == ["a:1"] and set(hub.tables["t"].rows) == {"a:0", "b:0", "x"}

"""``/metrics`` through prometheus-client: today's names, the NOC's additions, hostile labels."""

from __future__ import annotations

import asyncio
import json
import random
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server import metrics
from server.hub import Hub
from server.times import iso
from tests.live_server import UNIT, RtmServer
from tests.waiting import eventually

HOSTILE = 'evil"} 1\nrtm_trunk_up{trunk="x'


def scrape(hub: Hub) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample, by name and sorted labels, parsed the way Prometheus parses it."""
    text = metrics.exposition(metrics.registry(hub)).decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_names_values_and_hostile_labels() -> None:
    hub = Hub(["accounts", "trunks", "queue"])
    now = time.time()
    hub.publish_state(
        "trunks",
        {
            "a": {"id": "a", "name": "a", "status": "OK", "since": iso(now - 60)},
            HOSTILE: {"id": HOSTILE, "name": HOSTILE, "status": "FAILED", "since": iso(now - 5)},
        },
    )
    hub.publish_state(
        "accounts",
        {
            "c1": {"id": "c1", "username": "alice", "domain": "", "node": 1},
            "c2": {"id": "c2", "username": "alice", "domain": "", "node": 1},
            "c3": {"id": "c3", "username": "bob", "domain": "", "node": 2},
        },
    )
    hub.publish_state("queue", {"m": {"id": "m", "received": iso(now - 400, millis=True)}})
    hub.set_source("queue", False, "no such table: messages")
    hub.observe_read("accounts", 0.002, True)
    hub.count_reconcile_mismatch("accounts", 3)
    got = scrape(hub)
    assert got["rtm_clients"][()] == 0
    assert got["rtm_table_rows"][(("table", "accounts"),)] == 3
    assert got["rtm_table_seq"][(("table", "trunks"),)] == 1
    assert got["rtm_source_up"][(("table", "queue"),)] == 0
    assert got["rtm_reconcile_mismatches_total"][(("table", "accounts"),)] == 3
    assert got["rtm_source_read_seconds_count"][(("table", "accounts"),)] == 1
    assert got["rtm_source_read_seconds_bucket"][(("le", "0.005"), ("table", "accounts"))] == 1
    assert got["rtm_trunk_up"] == {(("trunk", "a"),): 1, (("trunk", HOSTILE),): 0}
    assert got["rtm_trunk_status"][(("status", "FAILED"), ("trunk", HOSTILE))] == 1
    assert got["rtm_trunk_status"][(("status", "OK"), ("trunk", HOSTILE))] == 0
    assert abs(got["rtm_trunk_status_since_timestamp_seconds"][(("trunk", "a"),)] - (now - 60)) < 2
    assert got["rtm_contacts"] == {(("node", "1"),): 2, (("node", "2"),): 1}
    assert got["rtm_registered_users"] == {(("node", "1"),): 1, (("node", "2"),): 1}
    assert got["rtm_queue_depth"][()] == 1
    assert 398 < got["rtm_queue_oldest_age_seconds"][()] < 410
    for kept in ("rtm_client_resyncs_total", "rtm_diffs_published_total",
                 "rtm_ws_bad_messages_total", "rtm_ws_closed_total"):  # fmt: skip
        assert kept in got


def walked(hub: Hub) -> tuple[dict[str, int], dict[str, int]]:
    """Contacts and distinct users per node, counted the slow way (the whole table)."""
    contacts: dict[str, int] = {}
    users: dict[str, set[tuple[str, str]]] = {}
    for row in hub.tables["accounts"].rows.values():
        node = "" if row.get("node") is None else str(row["node"])
        contacts[node] = contacts.get(node, 0) + 1
        users.setdefault(node, set()).add((str(row["username"]), str(row.get("domain"))))
    return contacts, {node: len(who) for node, who in users.items()}


def test_node_counts_move_with_changes_and_match_a_walk() -> None:
    hub = Hub(["accounts", "trunks", "queue"])
    rng = random.Random(12)
    for step in range(3000):
        key = f"c{rng.randrange(60)}"
        if rng.random() < 0.3:
            hub.publish_changes("accounts", {}, [key])
        else:
            row = {"id": key, "username": f"u{rng.randrange(15)}", "domain": "",
                   "node": rng.choice([1, 2, None]), "cseq": step}  # fmt: skip
            hub.publish_changes("accounts", {key: row})
        if step == 1500:  # a full read in between starts the counts again from the rows
            hub.publish_state("accounts", dict(hub.tables["accounts"].rows))
    contacts, users = walked(hub)
    counts = hub.stats.nodes
    assert {n: c for n, c in counts.contacts.items() if c} == contacts
    assert {n: c for n, c in counts.users.items() if c} == users
    hub.publish_state("accounts", {})
    got = scrape(hub)  # a node that had contacts is still there, at 0 (the alert needs it)
    assert set(got["rtm_contacts"].values()) == {0}
    assert set(got["rtm_registered_users"].values()) == {0}


@pytest.mark.asyncio
async def test_frames_and_bytes_sent_are_counted_per_role(rtm_server: RtmServer) -> None:
    async with rtm_server.ws(compression=None) as ws:  # bytes on the wire: header + text
        hello = await ws.recv()
        await ws.send(json.dumps({"type": "resume", "epoch": None, "seq": {}}))
        got = [hello]
        while len(got) < 7:  # hello, then each table's snapshot page and source
            got.append(await asyncio.wait_for(ws.recv(), 10 * UNIT))

        def sent() -> tuple[float, float]:
            samples = {
                s.name: s.value
                for f in text_string_to_metric_families(rtm_server.get("/metrics").text)
                for s in f.samples
                if s.labels.get("kind") == "admin"
            }
            return samples.get("rtm_ws_frames_sent_total", 0), samples.get(
                "rtm_ws_sent_bytes_total", 0
            )

        sizes = [len(str(frame).encode()) for frame in got]
        expected = (len(got), sum(n + (2 if n < 126 else 4 if n < 65536 else 10) for n in sizes))
        await eventually(lambda: sent() == expected, 10 * UNIT, "frames and bytes counted")


@pytest.mark.asyncio
async def test_a_socket_that_vanishes_is_counted_as_lost(rtm_server: RtmServer) -> None:
    async with rtm_server.ws() as ws:
        await ws.recv()  # hello
        ws.transport.abort()  # no close frame: as a client that died or stopped answering

    def lost() -> float:
        for line in rtm_server.get("/metrics").text.splitlines():
            if line.startswith('rtm_ws_closed_total{reason="lost"}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    await eventually(lambda: lost() == 1, 10 * UNIT, "the lost socket counted")

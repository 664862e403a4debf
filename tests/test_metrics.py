"""``/metrics`` through prometheus-client: today's names, the NOC's additions, hostile labels."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from server import metrics
from server.hub import Hub
from server.times import iso

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

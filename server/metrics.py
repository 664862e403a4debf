"""``/metrics``: the hub's state as Prometheus metrics, through ``prometheus-client``.

Read at scrape time by one custom collector (nothing is counted twice, and the hub stays
free of the library): the names of the first release stay, and what a NOC alerts on is
added (docs/alerts.yml has rules for them). Label values (trunk names, nodes) are written by
prometheus-client's exposition, which escapes them, so a hostile name cannot break the text.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .hub import READ_BUCKETS, Hub
from .times import parse_iso

# Trunk statuses get a 0/1 series each, so a rule can say "FAILED for 1 minute".
TRUNK_STATUSES = ("OK", "FAILED", "PENDING", "DISABLED")


def _since(value: Any) -> float | None:
    try:
        return parse_iso(value) if isinstance(value, str) else None
    except ValueError:
        return None


class HubCollector(Collector):
    """Every rtm metric, read from the hub when Prometheus scrapes."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        stats = self.hub.stats
        yield GaugeMetricFamily("rtm_clients", "WebSocket clients connected now.", stats.clients)
        yield GaugeMetricFamily(
            "rtm_ws_sockets", "Open /ws sockets (the cap counts these).", stats.sockets
        )
        yield CounterMetricFamily(
            "rtm_ws_refused",
            "WebSocket upgrades refused at RTM_WS_MAX_CLIENTS.",
            stats.refused,
        )
        yield CounterMetricFamily(
            "rtm_client_resyncs",
            "Clients that fell behind and were sent a snapshot.",
            stats.resyncs,
        )
        yield CounterMetricFamily(
            "rtm_diffs_published", "Diffs published across all tables.", stats.published
        )
        yield CounterMetricFamily(
            "rtm_ws_bad_messages",
            "Client frames answered with an error message.",
            stats.bad_messages,
        )
        closed = CounterMetricFamily(
            "rtm_ws_closed", "Client sockets closed by rtm (or lost), by reason.", labels=["reason"]
        )
        closed.add_metric(["oversized"], stats.closed_oversized)
        closed.add_metric(["flood"], stats.closed_flood)
        closed.add_metric(["slow"], stats.closed_slow)
        closed.add_metric(["lost"], stats.closed_lost)
        yield closed
        yield from self._sent()
        yield from self._tables()
        yield from self._sources()
        yield from self._trunks()
        yield from self._registrations()
        yield from self._queue()

    def _sent(self) -> Iterator[Metric]:
        stats = self.hub.stats
        frames = CounterMetricFamily(
            "rtm_ws_frames_sent",
            "WebSocket frames written to clients, by the client's role (none: no sign-in).",
            labels=["kind"],
        )
        sent = CounterMetricFamily(
            "rtm_ws_sent_bytes",
            "Bytes written to clients (whole frames, after permessage-deflate), by role.",
            labels=["kind"],
        )
        for kind, count in stats.frames_sent.items():
            frames.add_metric([kind], count)
            sent.add_metric([kind], stats.bytes_sent.get(kind, 0))
        yield from (frames, sent)

    def _tables(self) -> Iterator[Metric]:
        hub = self.hub
        rows = GaugeMetricFamily("rtm_table_rows", "Rows in each table now.", labels=["table"])
        # A gauge: it starts again at 0 with each epoch (a restart).
        seq = GaugeMetricFamily(
            "rtm_table_seq", "Each table's diff sequence number.", labels=["table"]
        )
        encodes = CounterMetricFamily(
            "rtm_snapshot_encodes",
            "Whole-table encodes (shared by every client connecting meanwhile).",
            labels=["table"],
        )
        for name, state in hub.tables.items():
            rows.add_metric([name], len(state.rows))
            seq.add_metric([name], state.seq)
            encodes.add_metric([name], state.encodes)
        yield from (rows, seq, encodes)

    def _sources(self) -> Iterator[Metric]:
        hub, stats = self.hub, self.hub.stats
        up = GaugeMetricFamily(
            "rtm_source_up", "1 while the table's source answers, 0 while stale.", labels=["table"]
        )
        last = GaugeMetricFamily(
            "rtm_source_last_success_timestamp_seconds",
            "When the table's source last answered (unix time).",
            labels=["table"],
        )
        mismatches = CounterMetricFamily(
            "rtm_reconcile_mismatches",
            "Rows a source's change feed missed and the reconcile found (should stay 0).",
            labels=["table"],
        )
        reads = HistogramMetricFamily(
            "rtm_source_read_seconds",
            "How long each read of a source took (full reads and asks of its change log).",
            labels=["table"],
        )
        for name, state in hub.tables.items():
            up.add_metric([name], int(state.source.ok))
            mismatches.add_metric([name], stats.reconcile_mismatches.get(name, 0))
            times = stats.reads.get(name)
            if times is None:
                continue
            if times.last_success is not None:
                last.add_metric([name], times.last_success)
            cumulative, buckets = 0, []
            for bound, count in zip((*READ_BUCKETS, float("inf")), times.counts, strict=True):
                cumulative += count
                buckets.append((str(bound) if bound != float("inf") else "+Inf", cumulative))
            reads.add_metric([name], buckets, times.total)
        yield from (up, last, mismatches, reads)

    def _trunks(self) -> Iterator[Metric]:
        trunks = self.hub.tables.get("trunks")
        up = GaugeMetricFamily("rtm_trunk_up", "1 while the trunk is OK.", labels=["trunk"])
        status = GaugeMetricFamily(
            "rtm_trunk_status", "1 for the trunk's current status.", labels=["trunk", "status"]
        )
        since = GaugeMetricFamily(
            "rtm_trunk_status_since_timestamp_seconds",
            "When the trunk's status last changed (unix time).",
            labels=["trunk"],
        )
        for row in trunks.rows.values() if trunks else ():
            name, current = str(row.get("name") or row.get("id")), str(row.get("status"))
            up.add_metric([name], int(current == "OK"))
            for each in TRUNK_STATUSES:
                status.add_metric([name, each], int(current == each))
            changed = _since(row.get("since"))
            if changed is not None:
                since.add_metric([name], changed)
        yield from (up, status, since)

    def _registrations(self) -> Iterator[Metric]:
        # Counts the hub keeps as rows change: a scrape never walks the accounts table.
        # A node that had contacts stays, at 0, until a restart.
        counts = self.hub.stats.nodes
        family = GaugeMetricFamily(
            "rtm_contacts", "Registered contacts, per SIP node (server_id).", labels=["node"]
        )
        people = GaugeMetricFamily(
            "rtm_registered_users", "Users with a registered contact, per node.", labels=["node"]
        )
        for node, count in counts.contacts.items():
            family.add_metric([node], count)
            people.add_metric([node], counts.users.get(node, 0))
        yield from (family, people)

    def _queue(self) -> Iterator[Metric]:
        queue = self.hub.tables.get("queue")
        rows = list(queue.rows.values()) if queue else []
        yield GaugeMetricFamily("rtm_queue_depth", "Messages queued, not yet delivered.", len(rows))
        received = [t for t in (_since(r.get("received")) for r in rows) if t is not None]
        oldest = time.time() - min(received) if received else 0.0
        yield GaugeMetricFamily(
            "rtm_queue_oldest_age_seconds", "Age of the oldest queued message (0: none).", oldest
        )


def registry(hub: Hub) -> CollectorRegistry:
    """A registry of this app's metrics only (not the process-wide default one)."""
    found = CollectorRegistry(auto_describe=False)
    found.register(HubCollector(hub))
    return found


def exposition(metrics: CollectorRegistry) -> bytes:
    return generate_latest(metrics)

"""Memory with one stalled client among 100: bounded by its outbox limit, not by time.

Clients drain their outbox after every diff, except (in the second run) one that never
does. tracemalloc follows the hub's memory as diffs keep coming: the stalled client's
outbox fills to its limit, then it is marked for a snapshot and its outbox dropped, so
memory stops growing. Figures are set against the size of one snapshot of the table.
"""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass

from server import protocol
from server.config import Config
from server.hub import Hub

from . import rows
from .measure import Figure, compared, size

TABLE_ROWS = 5_000
CHANGED = 0.002  # 10 rows per diff
CLIENTS = 100
DIFFS = 1_500
LATE = 1_100  # past the ring's 1024 diffs: from here on memory should stay flat


@dataclass
class Growth:
    peak: int
    late: int  # growth from diff LATE to the last
    most_queued: int
    resyncs: int
    ring: int


def _grow(stall: bool) -> Growth:
    config = Config()
    states = [rows.table(TABLE_ROWS), rows.refetched(rows.table(TABLE_ROWS), CHANGED)]
    tracemalloc.start()
    hub = Hub(["accounts"], ring_size=config.ring_size, client_frames=config.client_queue_frames,
              client_bytes=config.client_queue_bytes)  # fmt: skip
    # Connect to an empty table (no snapshot to encode per client), then fill it.
    clients = [hub.connect(None)[0] for _ in range(CLIENTS)]
    hub.publish_state("accounts", states[0])
    for client in clients:
        client.take()
    draining = clients[1:] if stall else clients
    baseline = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    most_queued = at_late = 0
    for i in range(1, DIFFS + 1):
        hub.publish_state("accounts", states[i % 2])
        for client in draining:
            client.take()
        most_queued = max(most_queued, clients[0].queued_bytes)
        if i == LATE:
            at_late = tracemalloc.get_traced_memory()[0]
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ring = sum(len(frame) for _, frame in hub.tables["accounts"].ring)
    return Growth(peak - baseline, current - at_late, most_queued, clients[0].resyncs, ring)


def run() -> list[Figure]:
    snapshot_rows = list(rows.table(TABLE_ROWS).values())
    snapshot = sum(len(p) for p in protocol.snapshot_pages("accounts", 1, snapshot_rows))
    healthy, stalled = _grow(stall=False), _grow(stall=True)
    against = f"one snapshot of {TABLE_ROWS // 1000}k rows"
    limit = Config().client_queue_frames

    def figure(what: str, value: int) -> Figure:
        return compared("memory", what, value, snapshot, against, size)

    return [
        figure(f"peak growth, {DIFFS} diffs to {CLIENTS} clients", healthy.peak),
        figure(f"same, 1 of the {CLIENTS} stalled", stalled.peak),
        figure(f"stalled outbox at most ({limit} frames, {stalled.resyncs} resync)",
               stalled.most_queued),
        figure(f"growth after diff {LATE}, stalled run", stalled.late),
        figure(f"resume ring ({Config().ring_size} diffs)", stalled.ring),
    ]  # fmt: skip

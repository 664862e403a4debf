"""Hub fan-out: publishing one diff to 100 clients, against encoding that diff's frame once.

The hub encodes a diff once and appends the same string to every client's outbox, so
fan-out should cost a small fraction of one encode however many clients there are.
"""

from __future__ import annotations

from server import protocol
from server.diff import diff
from server.hub import Hub

from . import rows
from .measure import Figure, best_seconds, compared

TABLE_ROWS = 1_000
CHANGED = 0.01  # 10 rows per diff, what a busy PBX changes in one poll
CLIENTS = 100
BATCH = 100  # publishes between drains, under the outbox's 256-frame limit


def _publish_cost(clients: int) -> float:
    hub = Hub(["accounts"])
    outboxes = [hub.connect(None)[0] for _ in range(clients)]
    states = [rows.table(TABLE_ROWS), rows.refetched(rows.table(TABLE_ROWS), CHANGED)]
    hub.publish_state("accounts", states[1])

    def publish_batch() -> None:
        for i in range(BATCH):
            hub.publish_state("accounts", states[i % 2])
        for client in outboxes:
            client.take()

    return best_seconds(publish_batch, repeat=7) / BATCH


def run() -> list[Figure]:
    old = rows.table(TABLE_ROWS)
    new = rows.refetched(old, CHANGED)
    changes = diff(old, new)
    message = protocol.Diff("accounts", 1, changes.upsert, changes.delete)
    encode = best_seconds(lambda: protocol.encode(message), repeat=7, number=200)
    alone = _publish_cost(0)
    fanned = _publish_cost(CLIENTS)
    per_diff = max(fanned - alone, 0.0)
    against = "encoding the frame once"
    return [
        compared("fan-out", f"publish a {len(changes.upsert)}-row diff, 0 clients", alone,
                 encode, against),
        compared("fan-out", f"extra for fan-out to {CLIENTS} clients", per_diff, encode, against),
    ]  # fmt: skip

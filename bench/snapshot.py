"""Snapshot encoding: 100k rows as protocol snapshot pages, against one plain json.dumps.

Every client that connects (or falls behind) gets the snapshot encoded for it, so this
is the price of one connect on a big table.
"""

from __future__ import annotations

import json

from server import protocol
from server.hub import Hub

from . import rows
from .measure import Figure, compared, interleaved, size

ROWS = 100_000


def run() -> list[Figure]:
    table = rows.table(ROWS)
    listed = list(table.values())
    hub = Hub(["accounts", "trunks", "queue"])
    hub.publish_state("accounts", table)
    plain, encoded, connect = interleaved(
        (lambda: json.dumps(listed, separators=(",", ":"), ensure_ascii=False), 1),
        (lambda: protocol.snapshot_pages("accounts", 1, listed), 1),
        (lambda: hub.disconnect(hub.connect(None)[0]), 1),
        repeat=3,
    )
    pages = protocol.snapshot_pages("accounts", 1, listed)
    total = sum(len(page.encode()) for page in pages)
    against = "json.dumps of the rows"
    return [
        compared("snapshot", f"{ROWS // 1000}k rows as {len(pages)} pages, {size(total)}",
                 encoded, plain, against),
        compared("snapshot", "hub.connect of one new client (same table)", connect, plain,
                 against),
    ]  # fmt: skip

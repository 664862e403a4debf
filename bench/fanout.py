"""Hub fan-out: publishing one diff to 100 clients, against encoding that diff's frame once.

The hub encodes a diff once and appends the same string to every client's outbox, so
fan-out should cost a small fraction of one encode however many clients there are. Over a
real socket the hub writes the frame itself, prepared once for every client
(server/wire.py): measured here with a socket that takes every frame and does nothing, so
the figure is rtm's own cost per client without the ``send()`` syscall (bench/connect.py
measures that one).
"""

from __future__ import annotations

from collections.abc import Callable

from server import protocol, wire
from server.diff import diff
from server.hub import Hub

from . import rows
from .measure import Figure, compared, interleaved

# A small table, so that the diff inside each publish does not drown the fan-out; 10 rows
# per diff is what a busy PBX changes in one poll.
TABLE_ROWS = 40
CHANGED = 0.25
CLIENTS = 100
BATCH = 100  # publishes between drains, under the outbox's 256-frame limit


def _null_socket(frame: str) -> bool:
    """A client socket that takes every frame: the prepared bytes, then nothing."""
    return bool(wire.FRAMES.get(frame, wire.WINDOW_BITS))


def _publisher(clients: int, written: bool = False) -> Callable[[], None]:
    """A batch of BATCH publishes to a hub with ``clients`` clients, outboxes drained after
    (or, ``written``, every frame written at once to a null socket)."""
    hub = Hub(["accounts"])
    outboxes = [hub.connect(None)[0] for _ in range(clients)]
    for client in outboxes:
        client.write_now = _null_socket if written else None
    states = [rows.table(TABLE_ROWS), rows.refetched(rows.table(TABLE_ROWS), CHANGED)]
    hub.publish_state("accounts", states[1])

    def publish_batch() -> None:
        for i in range(BATCH):
            hub.publish_state("accounts", states[i % 2])
        for client in outboxes:
            client.take()

    return publish_batch


def run() -> list[Figure]:
    old = rows.table(TABLE_ROWS)
    changes = diff(old, rows.refetched(old, CHANGED))
    message = protocol.Diff("accounts", 1, changes.upsert, changes.delete)
    encode, alone, fanned, written = interleaved(
        (lambda: protocol.encode(message), BATCH),
        (_publisher(0), 1),
        (_publisher(CLIENTS), 1),
        (_publisher(CLIENTS, written=True), 1),
        repeat=40,
    )
    alone, fanned, written = alone / BATCH, fanned / BATCH, written / BATCH
    against = "encoding the frame once"
    return [
        compared("fan-out", f"publish a {len(changes.upsert)}-row diff, 0 clients", alone,
                 encode, against),
        compared("fan-out", f"extra for fan-out to {CLIENTS} clients", max(fanned - alone, 0.0),
                 encode, against),
        compared("fan-out", f"same, written to {CLIENTS} null sockets (frame prepared once)",
                 max(written - alone, 0.0), encode, against),
    ]  # fmt: skip

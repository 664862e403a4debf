"""The pure diff on a big table: 100k rows with 1% changed, against copying the same rows."""

from __future__ import annotations

from server.diff import apply, diff

from . import rows
from .measure import Figure, compared, interleaved

ROWS = 100_000


def run() -> list[Figure]:
    old = rows.table(ROWS)
    new = rows.refetched(old, 0.01)
    changes = diff(old, new)
    copy, changed, same, applied = interleaved(
        (lambda: dict(new), 10),
        # What a collector's new fetch costs to diff: every row a fresh, mostly equal dict.
        (lambda: diff(old, new), 1),
        # The runner republishing the rows it already holds: identical objects short-circuit.
        (lambda: diff(new, dict(new)), 1),
        (lambda: apply(old, changes), 1),
    )
    label = f"{ROWS // 1000}k rows"
    return [
        compared("diff", f"diff, {label}, 1% changed", changed, copy, "dict(rows)"),
        compared("diff", f"diff, {label}, same row objects", same, copy, "dict(rows)"),
        compared("diff", f"apply that diff, {label}", applied, copy, "dict(rows)"),
    ]

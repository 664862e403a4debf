"""The pure diff on a big table: 100k rows with 1% changed, against copying the same rows."""

from __future__ import annotations

from server.diff import apply, diff

from . import rows
from .measure import Figure, best_seconds, compared

ROWS = 100_000


def run() -> list[Figure]:
    old = rows.table(ROWS)
    new = rows.refetched(old, 0.01)
    copy = best_seconds(lambda: dict(new))
    # What a collector's new fetch costs to diff: every row a fresh, mostly equal dict.
    changed = best_seconds(lambda: diff(old, new))
    # The runner republishing the rows it already holds: identical objects short-circuit.
    same = best_seconds(lambda: diff(new, dict(new)))
    changes = diff(old, new)
    applied = best_seconds(lambda: apply(old, changes))
    label = f"{ROWS // 1000}k rows"
    return [
        compared("diff", f"diff, {label}, 1% changed", changed, copy, "dict(rows)"),
        compared("diff", f"diff, {label}, same row objects", same, copy, "dict(rows)"),
        compared("diff", f"apply that diff, {label}", applied, copy, "dict(rows)"),
    ]

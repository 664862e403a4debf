"""Row-level changes between two states of a table. Pure: no I/O, no clock.

A diff carries, per changed row, only the fields that changed (plus "id"); a new row is
complete; a vanished row is an id in ``delete``. A row whose set of fields changed is sent
as both a delete and a complete upsert, so that ``apply`` (deletes first, then upserts)
reproduces any new state exactly: ``apply(old, diff(old, new)) == new``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .rows import Row


@dataclass
class Changes:
    upsert: list[Row] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.upsert or self.delete)

    def __len__(self) -> int:
        """Rows named (one both deleted and upserted, its fields changed, counts twice)."""
        return len(self.upsert) + len(self.delete)


def diff(old: Mapping[str, Row], new: Mapping[str, Row]) -> Changes:
    """The changes that turn ``old`` into ``new`` (both keyed by row id). O(table)."""
    changes = Changes()
    for key in old.keys() - new.keys():
        changes.delete.append(key)
    for key, row in new.items():
        _compare(changes, key, old.get(key), row)
    return changes


def diff_some(old: Mapping[str, Row], upsert: Mapping[str, Row], delete: Iterable[str]) -> Changes:
    """The changes that deleting ``delete`` and then upserting ``upsert`` (complete rows)
    make to ``old``. O(rows named): the change-driven path, which never looks at the rest.

    A row named in both is compared, not deleted; deleting what ``old`` lacks is nothing.
    """
    changes = Changes()
    for key in delete:
        if key in old and key not in upsert:
            changes.delete.append(key)
    for key, row in upsert.items():
        _compare(changes, key, old.get(key), row)
    return changes


def _compare(changes: Changes, key: str, before: Row | None, row: Row) -> None:
    if before is None:
        # Rows are replaced, never mutated: one that has its id already is its own change
        # (no copy: a first read of a million rows made a million).
        changes.upsert.append(row if row.get("id") == key else {**row, "id": key})
    elif before is not row and before != row:
        if before.keys() != row.keys():
            changes.delete.append(key)
            changes.upsert.append({**row, "id": key})
        else:
            changed = {f: v for f, v in row.items() if before[f] != v}
            changed["id"] = key
            changes.upsert.append(changed)


def apply(rows: Mapping[str, Row], changes: Changes) -> dict[str, Row]:
    """A new state: ``rows`` with ``changes`` applied (deletes first). ``rows`` is not mutated."""
    result = dict(rows)
    for key in changes.delete:
        result.pop(key, None)
    for change in changes.upsert:
        key = change["id"]
        before = result.get(key)
        result[key] = change.copy() if before is None else {**before, **change}
    return result

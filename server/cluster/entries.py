"""What travels through Redis: stream entries (a diff, or a source's health) and snapshots.

Pure: no I/O, no clock. A diff entry carries complete rows (not the fields a client is sent),
so a follower computes the very diff the leader published, whatever it held before.
``sent`` is the leader's clock as it wrote the entry: the Redis hop's share of latency.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..protocol import NodeSource, Source, compact, text
from ..rows import Row

DIFF = "diff"
SOURCE = "source"
# "The table at this seq is in its snapshot": written after a diff too big for the stream
# (a first read of a million rows), whose rows went into the snapshot instead.
RELOAD = "reload"


@dataclass(frozen=True)
class Entry:
    epoch: str
    seq: int
    kind: str  # DIFF, SOURCE or RELOAD
    sent: float
    upsert: dict[str, Row] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    health: dict[str, Any] | None = None


@dataclass(frozen=True)
class SnapshotMeta:
    """A snapshot's ``meta`` field: the rows beside it are the table at ``seq``, which is
    the stream's entry ``stream_id``; a follower reads the stream after that id."""

    epoch: str
    seq: int
    stream_id: str
    health: dict[str, Any]


def diff_fields(
    epoch: str, seq: int, upsert: Mapping[str, Row], delete: list[str], sent: float
) -> dict[str, str]:
    return {
        "kind": DIFF,
        "epoch": epoch,
        "seq": str(seq),
        "sent": repr(sent),
        # A first read's diff holds the whole table: orjson, 10x faster beside the loop.
        "upsert": text(upsert),
        "delete": text(delete),
    }


def source_fields(epoch: str, seq: int, source: Source, sent: float) -> dict[str, str]:
    health = json.dumps(source.health(), separators=(",", ":"))
    return {"kind": SOURCE, "epoch": epoch, "seq": str(seq), "sent": repr(sent), "health": health}


def reload_fields(epoch: str, seq: int, sent: float) -> dict[str, str]:
    return {"kind": RELOAD, "epoch": epoch, "seq": str(seq), "sent": repr(sent)}


def decode(fields: Mapping[str, str]) -> Entry:
    """An entry from a stream's fields; ValueError (or KeyError) for one rtm did not write."""
    kind = fields["kind"]
    common = (fields["epoch"], int(fields["seq"]), kind, float(fields["sent"]))
    if kind == DIFF:
        upsert = orjson.loads(fields["upsert"])
        delete = orjson.loads(fields["delete"])
        if not isinstance(upsert, dict) or not isinstance(delete, list):
            raise ValueError("a diff entry's upsert is an object and its delete a list")
        return Entry(*common, upsert=upsert, delete=[str(key) for key in delete])
    if kind == SOURCE:
        health = json.loads(fields["health"])
        if not isinstance(health, dict):
            raise ValueError("a source entry's health is an object")
        return Entry(*common, health=health)
    if kind == RELOAD:
        return Entry(*common)
    raise ValueError(f"unknown entry kind {kind!r}")


def source_from(table: str, health: Mapping[str, Any]) -> Source:
    """The ``Source`` a health dict (``Source.health()``) describes."""
    nodes = tuple(NodeSource(**node) for node in health.get("nodes", ()))
    return Source(
        table,
        bool(health["ok"]),
        health.get("error"),
        str(health["since"]),
        read=bool(health.get("read", True)),
        nodes=nodes,
    )


def snapshot_fields(meta: SnapshotMeta, rows: Mapping[str, Row]) -> dict[str, str]:
    encoded: dict[str, Any] = {"epoch": meta.epoch, "seq": meta.seq, "stream_id": meta.stream_id}
    encoded["health"] = meta.health
    return {
        "meta": json.dumps(encoded, separators=(",", ":")),
        # A million rows: orjson's 2 s less holding the GIL beside the leader's event loop.
        "rows": compact({"seq": meta.seq, "rows": rows}).decode(),
    }


def decode_meta(text: str) -> SnapshotMeta:
    meta = json.loads(text)
    return SnapshotMeta(
        str(meta["epoch"]), int(meta["seq"]), str(meta["stream_id"]), meta["health"]
    )


def decode_rows(text: str, seq: int) -> dict[str, Row]:
    """A snapshot's rows; ValueError when they are not those of ``seq`` (rewritten between)."""
    body = orjson.loads(text)
    rows = body.get("rows") if isinstance(body, dict) else None
    if not isinstance(rows, dict) or body.get("seq") != seq:
        raise ValueError(f"snapshot rows are not those of seq {seq}")
    return rows

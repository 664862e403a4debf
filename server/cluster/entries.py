"""What travels through Redis: stream entries (a diff, or a source's health) and snapshots.

Pure: no I/O, no clock. A diff entry carries complete rows (not the fields a client is sent),
so a follower computes the very diff the leader published, whatever it held before.
``sent`` is the leader's clock as it wrote the entry: the Redis hop's share of latency.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import islice
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
    position: str | None = None  # a diff's: the leader's source's (hub.py, Table.position)


@dataclass(frozen=True)
class SnapshotMeta:
    """A snapshot's ``meta`` field: the rows beside it are the table at ``seq``, which is
    the stream's entry ``stream_id``; a follower reads the stream after that id."""

    epoch: str
    seq: int
    stream_id: str
    health: dict[str, Any]
    parts: int = 0  # fields of rows beside it: part_names(parts)
    position: str | None = None  # where the leader's source stood with these rows


def diff_fields(
    epoch: str,
    seq: int,
    upsert: Mapping[str, Row],
    delete: list[str],
    sent: float,
    position: str | None = None,
) -> dict[str, str]:
    fields = {
        "kind": DIFF,
        "epoch": epoch,
        "seq": str(seq),
        "sent": repr(sent),
        # A first read's diff holds the whole table: orjson, 10x faster beside the loop.
        "upsert": text(upsert),
        "delete": text(delete),
    }
    if position is not None:
        fields["position"] = position
    return fields


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
        position = fields.get("position")
        return Entry(
            *common,
            upsert=upsert,
            delete=[str(key) for key in delete],
            position=None if position is None else str(position),
        )
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


# Rows per field of a snapshot (``rows:0``, ``rows:1``, …). One orjson call holds the GIL
# however it is threaded, and so does one decode or copy of one big string: a million rows
# as one 250 MB field were seconds in which the lease's renewal thread could not run, and
# the leader lost its 3 s lease (bench/cluster.py). A field of 10,000 rows is ~2.5 MB.
SNAPSHOT_PART = 10_000


def snapshot_fields(meta: SnapshotMeta, rows: Mapping[str, Row]) -> dict[str, str]:
    """A snapshot's hash fields: ``meta``, and the rows in ``parts`` fields of up to
    SNAPSHOT_PART rows each (written and read whole, so they are always of one seq)."""
    items = iter(rows.items())
    fields: dict[str, str] = {}
    while part := dict(islice(items, SNAPSHOT_PART)):
        fields[part_name(len(fields))] = compact(part).decode()
    encoded: dict[str, Any] = {"epoch": meta.epoch, "seq": meta.seq, "stream_id": meta.stream_id}
    encoded["health"], encoded["parts"] = meta.health, len(fields)
    if meta.position is not None:
        encoded["position"] = meta.position
    return {"meta": json.dumps(encoded, separators=(",", ":")), **fields}


def part_name(index: int) -> str:
    return f"rows:{index}"


def decode_meta(text: str) -> SnapshotMeta:
    """A snapshot's meta; ValueError for one without parts (an older rtm wrote it)."""
    meta = json.loads(text)
    parts = meta.get("parts")
    if not isinstance(parts, int):
        raise ValueError("a snapshot without parts (written by an older rtm)")
    position = meta.get("position")
    return SnapshotMeta(
        str(meta["epoch"]),
        int(meta["seq"]),
        str(meta["stream_id"]),
        meta["health"],
        parts,
        None if position is None else str(position),
    )


def decode_rows(fields: Mapping[str, str], parts: int) -> dict[str, Row]:
    """A snapshot's rows from its ``parts`` fields."""
    rows: dict[str, Row] = {}
    for index in range(parts):  # a part at a time: the GIL is free between
        part = orjson.loads(fields[part_name(index)])
        if not isinstance(part, dict):
            raise ValueError("a snapshot's part is an object of rows")
        rows.update(part)
    return rows

"""The wire: every message rtm sends or accepts over ``/ws``, serialised in one place.

See docs/protocol.md for the prose version; keep the two in step.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from .rows import Row

SNAPSHOT_PAGE_ROWS = 5000
SNAPSHOT_PAGE_BYTES = 512 * 1024
# Anything the client sends is tiny; a bigger frame is abuse.
MAX_CLIENT_FRAME = 64 * 1024


@dataclass(frozen=True)
class Hello:
    epoch: str
    tables: Sequence[str]
    now: float
    tz: Mapping[str, Any]
    demo: bool = False
    user: Mapping[str, Any] | None = None
    type: Literal["hello"] = "hello"


@dataclass(frozen=True)
class Snapshot:
    table: str
    seq: int
    rows: Sequence[Row]
    final: bool
    type: Literal["snapshot"] = "snapshot"


@dataclass(frozen=True)
class Diff:
    table: str
    seq: int
    upsert: Sequence[Row]
    delete: Sequence[str]
    type: Literal["diff"] = "diff"


@dataclass(frozen=True)
class NodeSource:
    """One node's part of a table's source health, when several nodes feed one table."""

    node: str
    ok: bool
    error: str | None
    since: str
    read: bool = False


@dataclass(frozen=True)
class Source:
    table: str
    ok: bool
    error: str | None
    since: str
    # False until the source was read successfully once since start: its (empty) table is
    # no reading, and a page must not count it as zero.
    read: bool = True
    # Per node when several feed the table (RTM_REGISTRATIONS naming several sources);
    # empty, and left off the wire, for a single source.
    nodes: Sequence[NodeSource] = ()
    type: Literal["source"] = "source"

    @classmethod
    def merged(cls, table: str, nodes: Sequence[NodeSource]) -> Source:
        """A table's health from its nodes': ok only when all are; a failure names its
        node(s) and is dated from the oldest; read once any node was read."""
        failing = [n for n in nodes if not n.ok]
        if failing:
            error = "; ".join(f"node {n.node}: {n.error}" for n in failing)
            since = min(n.since for n in failing)
        else:
            error, since = None, max(n.since for n in nodes)
        read = any(n.read for n in nodes)
        return cls(table, not failing, error, since, read=read, nodes=tuple(nodes))

    def health(self) -> dict[str, Any]:
        """``ok``, ``error``, ``since``, ``read`` (and ``nodes`` when there are several)."""
        fields: dict[str, Any] = {
            "ok": self.ok,
            "error": self.error,
            "since": self.since,
            "read": self.read,
        }
        if self.nodes:
            fields["nodes"] = [dataclasses.asdict(node) for node in self.nodes]
        return fields


@dataclass(frozen=True)
class Error:
    error: str
    detail: str = ""
    type: Literal["error"] = "error"


@dataclass(frozen=True)
class Resume:
    """The client's first message: what it already holds."""

    epoch: str | None
    seq: Mapping[str, int] = field(default_factory=dict)
    type: Literal["resume"] = "resume"


Message = Hello | Snapshot | Diff | Source | Error


def encode(message: Message) -> str:
    """Serialise a server message to one JSON text frame."""
    # A shallow dict: dataclasses.asdict would deep-copy every row first (5x slower).
    fields = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}
    if isinstance(message, Source):  # nodes only when several, as nested objects
        fields = {"table": message.table, **message.health(), "type": message.type}
    return text(fields)


def text(value: Any) -> str:
    """``value`` as one compact JSON text (non-ASCII kept as it is)."""
    try:
        # orjson: the diff of a first read (100k rows) in 40 ms instead of 390 ms on the loop.
        return orjson.dumps(value).decode()
    except TypeError:  # what orjson refuses (an int beyond 64 bits, a lone surrogate)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def snapshot_pages(table: str, seq: int, rows: Sequence[Row]) -> list[str]:
    """A table's rows as snapshot frames, the last one ``final``.

    A page holds at most SNAPSHOT_PAGE_ROWS rows and, unless one row alone is larger, at
    most SNAPSHOT_PAGE_BYTES, so that no client needs a large frame limit.
    """
    head = f'{{"type":"snapshot","table":{json.dumps(table)},"seq":{seq},"rows":['
    pages: list[list[str]] = [[]]
    size = 0
    for row in rows:
        encoded = text(row)
        page = pages[-1]
        if page and (len(page) >= SNAPSHOT_PAGE_ROWS or size + len(encoded) > SNAPSHOT_PAGE_BYTES):
            pages.append([])
            size = 0
        pages[-1].append(encoded)
        size += len(encoded) + 1
    last = len(pages) - 1
    return [
        f'{head}{",".join(page)}],"final":{"true" if i == last else "false"}}}'
        for i, page in enumerate(pages)
    ]


def compact(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, for big bodies (a table's rows)."""
    try:
        # orjson writes the same JSON ten times faster (100k rows: 31 ms against 316 ms):
        # the body a restart's first clients wait for, a cluster's snapshot in Redis.
        return orjson.dumps(value)
    except TypeError:  # what orjson refuses (an int beyond 64 bits, a surrogate)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def table_body(epoch: str, seq: int, rows: Sequence[Row], source: Source) -> bytes:
    """``GET /api/<table>``: ``{"epoch", "seq", "rows", "source"}``; a client holding it
    resumes the WebSocket from that epoch and seq (docs/benchmarks.md, issue 10)."""
    return compact({"epoch": epoch, "seq": seq, "rows": rows, "source": source.health()})


def head_body(epoch: str, seq: int, rows: Sequence[Row], total: int, source: Source) -> bytes:
    """``GET /api/<table>?first=N``: a view's first rows and the table's row count; a page
    shows them until the whole table has arrived (never resumes from them)."""
    return compact(
        {
            "epoch": epoch,
            "seq": seq,
            "rows": rows,
            "total": total,
            "first": True,
            "source": source.health(),
        }
    )


class BadMessage(ValueError):
    """A client frame rtm does not accept; the text goes back in an ``error`` message."""


def decode_client(text: str | bytes, tables: Sequence[str]) -> Resume:
    """Parse one client frame; raise BadMessage with a short reason when it is not valid."""
    if isinstance(text, bytes):
        raise BadMessage("binary frames are not accepted")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadMessage("malformed JSON") from exc
    if not isinstance(data, dict):
        raise BadMessage("a message is a JSON object")
    kind = data.get("type")
    if kind != "resume":
        raise BadMessage(f"unknown message type {str(kind)[:40]!r}")
    epoch = data.get("epoch")
    if epoch is not None and not isinstance(epoch, str):
        raise BadMessage("resume.epoch must be a string or null")
    seq = data.get("seq", {})
    if not isinstance(seq, dict):
        raise BadMessage("resume.seq must be an object")
    clean: dict[str, int] = {}
    for table, number in seq.items():
        if table not in tables:
            raise BadMessage(f"unknown table {str(table)[:40]!r}")
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise BadMessage(f"resume.seq.{table} must be a non-negative integer")
        clean[table] = number
    return Resume(epoch=epoch, seq=clean)

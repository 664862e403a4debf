"""The hub: each table's current rows and ``seq``, a ring of recent diffs, and fan-out.

Publishing is synchronous and never awaits a client: a diff is encoded once, written to
every client whose socket takes it now and appended to the bounded outbox of the others. A
client whose outbox overflows (frames or bytes) stops receiving diffs and is sent a fresh
snapshot of every table when its sender next runs; it is counted in ``stats``. Memory per
client is therefore bounded by its outbox limits.

Until a table's source has been polled once, clients are told it is "not read yet" rather
than healthy: its empty rows are no reading, and a page must not show them as zeros.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import heapq
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from . import protocol
from .config import Config
from .diff import Changes, diff, diff_some
from .rows import Row
from .times import now_iso

log = logging.getLogger(__name__)

READY_MESSAGE = "every table was read once: serving them"
NOT_READ = "not read yet"  # a table's source error until its first poll
FIRST_POLL_WAIT = 15.0  # at start-up, how long a client waits for every source's first poll
# A shared snapshot (HTTP or WebSocket pages) is reused for this long after the table moved
# on, as long as the ring still holds every diff since: under churn, connecting clients catch
# up from the ring instead of each forcing an encode of the whole table.
SHARED_MAX_AGE = 10.0
# ... and dropped once nobody asked for it for this long (its memory is one table's).
SHARED_IDLE = 60.0
# Rows in a diff that, with no client connected, is not encoded at all: the ring would not
# keep its frame (16 MB), and a million rows' frame was two seconds of the loop at a
# cluster leader's first read. A client resuming from before it is sent the table.
UNSENT_DIFF = 100_000
# gzip level of a shared snapshot: 28.6 MB of JSON (100k rows) to 1.70 MB in ~60 ms at 3,
# against 1.52 MB in ~110 ms at 5 (docs/benchmarks.md): the CPU is what a restart under a
# wall of displays waits for, and 11% more bytes on a LAN are not.
GZIP_LEVEL = 3
# ``GET /api/<table>?first=N``: the most rows a preview carries (a tall wall's first screen
# is ~100), and how many differently sorted previews a table keeps at once.
MAX_FIRST = 1000
HEADS_KEPT = 8


@dataclass(frozen=True)
class SharedSnapshot:
    """``GET /api/<table>``'s body at one seq, gzipped once for every client that asks."""

    seq: int
    source_version: int
    etag: str
    gzipped: bytes
    built: float  # monotonic


class Client:
    """One subscriber's bounded outbox of encoded frames."""

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self._frames: deque[str] = deque()
        self._bytes = 0
        self._max_frames = max_frames
        self._max_bytes = max_bytes
        self._wakeup = asyncio.Event()
        self.needs_snapshot = False
        self.resyncs = 0
        # Set by the endpoint (server/ws.py) once the client's first frames are out: writes
        # a frame to the socket now if it takes it, so that a frame to 1,000 clients costs
        # no task wake-up each. ``sending``: its sender holds frames not yet written.
        self.write_now: Callable[[str], bool] | None = None
        self.sending = False

    def push(self, frame: str) -> None:
        """Write a frame now when nothing is queued or being sent before it and the socket
        takes it; else queue it. On overflow drop the outbox and ask for a snapshot."""
        if self.needs_snapshot:
            return  # the snapshot it will get supersedes every diff until then
        if not self._frames and not self.sending and self.write_now and self.write_now(frame):
            return
        if len(self._frames) >= self._max_frames or self._bytes + len(frame) > self._max_bytes:
            self._frames.clear()
            self._bytes = 0
            self.needs_snapshot = True
            self.resyncs += 1
        else:
            self._frames.append(frame)
            self._bytes += len(frame)
        self._wakeup.set()

    async def wait(self) -> None:
        """Return once there is something to send (frames or a pending snapshot)."""
        while not self._frames and not self.needs_snapshot:
            self._wakeup.clear()
            await self._wakeup.wait()

    def take(self) -> list[str]:
        frames = list(self._frames)
        self._frames.clear()
        self._bytes = 0
        return frames

    @property
    def queued_bytes(self) -> int:
        return self._bytes


@dataclass
class Table:
    name: str
    ring_size: int
    ring_bytes: int
    rows: dict[str, Row] = field(default_factory=dict)
    seq: int = 0
    ring: deque[tuple[int, str]] = field(init=False)
    _ring_held: int = field(init=False, default=0)
    source: protocol.Source = field(init=False)
    # Encoding 100k rows takes most of a second: clients (re)connecting share one encode,
    # as pages (WebSocket) and as gzipped JSON (HTTP), while the ring can bring it up to date.
    _pages: tuple[int, list[str], float] | None = field(init=False, default=None)
    shared: SharedSnapshot | None = field(init=False, default=None)
    _shared_used: float = field(init=False, default=0.0)
    # The shared body's build in flight (one key: there is one body), see _built_once.
    _building: dict[None, asyncio.Future[SharedSnapshot]] = field(init=False, default_factory=dict)
    _prebuild: asyncio.Task[SharedSnapshot] | None = field(init=False, default=None)
    # Previews (the first screen of a view, sorted as it sorts): (field, descending, count)
    # -> (seq, version, built, body); one build in flight per key.
    _heads: dict[tuple[str, bool, int], tuple[int, int, float, bytes]] = field(
        init=False, default_factory=dict
    )
    _heads_building: dict[tuple[str, bool, int], asyncio.Future[bytes]] = field(
        init=False, default_factory=dict
    )
    source_version: int = field(init=False, default=0)
    # Whole-table encodes so far (WebSocket pages, gzipped HTTP bodies): what connects cost.
    encodes: int = field(init=False, default=0)
    # Several nodes feeding one table (docs/scaling.md): the keys each node's rows hold,
    # so that one node's full read diffs only its rows, and each node's source health.
    partitions: dict[str, set[str]] = field(init=False, default_factory=dict)
    node_sources: dict[str, protocol.NodeSource] = field(init=False, default_factory=dict)
    # Where the source's reads stood when the rows were as they are now (its ``position``,
    # collectors/base.py ``Resumable``): a cluster's entries carry it, so that a new leader
    # goes on from there. None: no source that can be continued.
    position: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.ring = deque()
        self.source = protocol.Source(self.name, True, None, now_iso(), read=False)

    def can_resume_from(self, seq: int) -> bool:
        """True when the ring holds every diff after ``seq`` (or there is none)."""
        if seq == self.seq:
            return True
        return bool(self.ring) and self.ring[0][0] <= seq + 1 <= self.seq + 1

    def _reusable(self, seq: int, built: float) -> bool:
        return seq == self.seq or (
            time.monotonic() - built < SHARED_MAX_AGE and self.can_resume_from(seq)
        )

    def forget_frames(self) -> None:
        """Keep no diff: what came before can no longer be resumed from (a snapshot)."""
        self.ring.clear()
        self._ring_held = 0

    def remember(self, seq: int, frame: str) -> None:
        """Keep a diff for resuming clients, within the ring's count and byte limits.

        The byte limit matters: the diff that first fills a 100k-row table is as large as a
        snapshot, and a client that far behind is better served by one anyway.
        """
        self.ring.append((seq, frame))
        self._ring_held += len(frame)
        while self.ring and (len(self.ring) > self.ring_size or self._ring_held > self.ring_bytes):
            self._ring_held -= len(self.ring.popleft()[1])

    def forget_snapshot(self) -> None:
        """After a publish: drop shared snapshots that can no longer be caught up, or that
        nobody asked for lately (their memory is a whole table's)."""
        now = time.monotonic()
        if self._pages is not None and not self._reusable(self._pages[0], self._pages[2]):
            self._pages = None
        shared = self.shared
        if shared is not None and (
            not self.can_resume_from(shared.seq) or now - self._shared_used > SHARED_IDLE
        ):
            self.shared = None
        for key, (_, _, built, _) in list(self._heads.items()):
            if now - built > SHARED_MAX_AGE:
                del self._heads[key]

    def snapshot(self) -> list[str]:
        """Snapshot pages and the ring's diffs since them: encoded once, shared by every
        client that connects while they can still be caught up."""
        pages = self._pages
        if pages is None or not self._reusable(pages[0], pages[2]):
            rows = list(self.rows.values())
            self.encodes += 1
            pages = (self.seq, protocol.snapshot_pages(self.name, self.seq, rows), time.monotonic())
            self._pages = pages
        seq, frames, _ = pages
        if seq == self.seq:
            return frames
        return frames + [frame for number, frame in self.ring if number > seq]

    async def shared_snapshot(self, epoch: str) -> SharedSnapshot:
        """The gzipped ``GET /api/<table>`` body: one encode for every client asking while
        the ring can bring it up to date (they resume from its seq), at most one in flight."""
        shared = self.shared
        if (
            shared is not None
            and shared.source_version == self.source_version
            and self._reusable(shared.seq, shared.built)
        ):
            self._shared_used = time.monotonic()
            return shared
        return await _built_once(self._building, None, lambda: self._build_shared(epoch))

    def _state_now(self) -> tuple[int, int, list[Row], protocol.Source]:
        """Seq, source version, rows and source as they are now: rows are replaced, never
        mutated, so this list stays a consistent state for a build off the loop."""
        return self.seq, self.source_version, list(self.rows.values()), self.source

    async def _build_shared(self, epoch: str) -> SharedSnapshot:
        seq, version, rows, source = self._state_now()
        self.encodes += 1
        # Off the loop: it keeps serving between the GIL's switches.
        gzipped = await asyncio.to_thread(_gzipped_body, epoch, seq, rows, source)
        shared = SharedSnapshot(
            seq, version, f'"{epoch}.{seq}.{version}"', gzipped, time.monotonic()
        )
        self.shared, self._shared_used = shared, time.monotonic()
        return shared

    async def head(self, epoch: str, sort: str, descending: bool, count: int) -> bytes:
        """``GET /api/<table>?first=…``: the ``count`` rows a view sorted by ``sort`` shows
        first, so a page paints its first screen before the whole table has arrived.

        A preview, not a state to resume from: it may be up to SHARED_MAX_AGE old, and every
        client asking for the same order meanwhile shares one build (off the loop).
        """
        key = (sort, descending, count)
        held = self._heads.get(key)
        if (
            held is not None
            and held[1] == self.source_version
            and time.monotonic() - held[2] < SHARED_MAX_AGE
        ):
            return held[3]
        return await _built_once(
            self._heads_building, key, lambda: self._build_head(epoch, sort, descending, count)
        )

    async def _build_head(self, epoch: str, sort: str, descending: bool, count: int) -> bytes:
        seq, version, rows, source = self._state_now()
        body = await asyncio.to_thread(
            _head_body, epoch, seq, rows, source, sort, descending, count
        )
        while len(self._heads) >= HEADS_KEPT:
            del self._heads[next(iter(self._heads))]
        self._heads[(sort, descending, count)] = (seq, version, time.monotonic(), body)
        return body

    def build_soon(self, epoch: str) -> None:
        """Start building the shared body in the background (at the table's first full
        read): the first client after a start finds it built, or waits for this same build.
        Without a running loop (a synchronous caller) the first ask builds it instead."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._prebuild is None and not self._building:
            self._prebuild = loop.create_task(self.shared_snapshot(epoch))
            self._prebuild.add_done_callback(self._prebuilt)

    def _prebuilt(self, task: asyncio.Task[SharedSnapshot]) -> None:
        self._prebuild = None
        if not task.cancelled() and task.exception() is not None:
            # Nobody awaits this task: say why, and let the first ask build the body.
            log.error(
                "%s: building the shared snapshot failed", self.name, exc_info=task.exception()
            )


K = TypeVar("K")
T = TypeVar("T")


async def _built_once(
    builds: dict[K, asyncio.Future[T]], key: K, build: Callable[[], Awaitable[T]]
) -> T:
    """What ``build()`` makes, made once for everyone asking for ``key`` while it is in
    flight: later askers await the same build, shielded (one of them cancelled, say a client
    gone, cancels nobody else's wait), and get its error if it fails."""
    building = builds.get(key)
    if building is not None:
        return await asyncio.shield(building)
    future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    builds[key] = future
    try:
        made = await build()
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: the waiters (if any) get it too
        raise
    finally:
        del builds[key]
    future.set_result(made)
    return made


def _gzipped_body(epoch: str, seq: int, rows: list[Row], source: protocol.Source) -> bytes:
    return gzip.compress(protocol.table_body(epoch, seq, rows, source), GZIP_LEVEL, mtime=0)


def text_key(value: object) -> str:
    """A text column's sort key, as the page's ``sortValue`` makes it (web/js/columns.js):
    case-insensitive, a missing value first."""
    return "" if value is None else str(value).lower()


def first_rows(rows: Iterable[Row], sort: str, descending: bool, count: int) -> list[Row]:
    """The ``count`` rows that come first in ``sort``'s text order, ties by id ascending in
    either direction (the page's ``compareKeys``, web/js/rowindex.js).

    O(table) with a small constant: the boundary key is found with a heap, and only the
    rows at or before it are sorted.
    """
    rows = list(rows)
    if count <= 0 or not rows:
        return []
    keys = [text_key(row.get(sort)) for row in rows]
    pick = heapq.nlargest if descending else heapq.nsmallest
    boundary = pick(count, keys)[-1]
    pairs = zip(keys, rows, strict=True)
    chosen = [
        (key, str(row.get("id")), row)
        for key, row in pairs
        if (key >= boundary if descending else key <= boundary)
    ]
    chosen.sort(key=lambda item: item[1])  # ids ascending, kept by the stable sort below
    chosen.sort(key=lambda item: item[0], reverse=descending)
    return [row for _, _, row in chosen[:count]]


def _head_body(
    epoch: str,
    seq: int,
    rows: list[Row],
    source: protocol.Source,
    sort: str,
    descending: bool,
    count: int,
) -> bytes:
    first = first_rows(rows, sort, descending, count)
    return protocol.head_body(epoch, seq, first, len(rows), source)


# Upper bounds (seconds) of the source read-time histogram (``rtm_source_read_seconds``).
READ_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)


@dataclass
class ReadTimes:
    """How long a source's reads took: a histogram's counts, kept without a metrics library
    so the hub stays I/O- and dependency-free (server/metrics.py exports it)."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(READ_BUCKETS) + 1))
    total: float = 0.0
    last_success: float | None = None  # unix time of the last read that worked

    def observe(self, seconds: float, ok: bool) -> None:
        index = next((i for i, bound in enumerate(READ_BUCKETS) if seconds <= bound), -1)
        self.counts[index] += 1
        self.total += seconds
        if ok:
            self.last_success = time.time()


class NodeCounts:
    """Contacts and distinct users per SIP node, moved by each change (``/metrics`` reads
    them without walking the accounts table at every scrape)."""

    def __init__(self) -> None:
        self.contacts: dict[str, int] = {}
        self.users: dict[str, int] = {}
        self._per_user: dict[tuple[str, str, str], int] = {}  # (node, user, domain) -> contacts

    def add(self, row: Row | None, step: int = 1) -> None:
        """Count a contact in (``step`` 1) or out (-1); a node at 0 stays, at 0."""
        if row is None:
            return
        node = "" if row.get("node") is None else str(row.get("node"))
        who = (node, str(row.get("username")), str(row.get("domain")))
        self.contacts[node] = self.contacts.get(node, 0) + step
        held = self._per_user.get(who, 0) + step
        if held <= 0:
            self._per_user.pop(who, None)
        if held == 0 or (held == 1 and step == 1):
            self.users[node] = self.users.get(node, 0) + step
        if held > 0:
            self._per_user[who] = held

    def reset(self, rows: Iterable[Row]) -> None:
        self.contacts = dict.fromkeys(self.contacts, 0)
        self.users = dict.fromkeys(self.users, 0)
        self._per_user = {}
        for row in rows:
            self.add(row)


@dataclass
class HubStats:
    """Counters an operator can watch (``/healthz``, ``/metrics``)."""

    clients: int = 0
    sockets: int = 0  # open /ws sockets, also those not yet resumed (the cap counts these)
    refused: int = 0  # upgrades refused at RTM_WS_MAX_CLIENTS
    resyncs: int = 0
    published: int = 0
    # Client-side abuse and trouble, by how it ended (ws.py counts these).
    bad_messages: int = 0
    closed_oversized: int = 0
    closed_flood: int = 0
    closed_slow: int = 0
    # Sockets that ended without a close code: the client vanished, or it stopped answering
    # uvicorn's keepalive pings (a stalled client is closed so, 20 s + 20 s on).
    closed_lost: int = 0
    # Rows the hub looked at to find what changed: O(changes) on the change-driven path,
    # O(table) per full read. Tests count it where timing would be noise.
    rows_compared: int = 0
    # Rows a change feed missed and its reconcile found, per table: should stay 0.
    reconcile_mismatches: dict[str, int] = field(default_factory=dict)
    # Per table: how long its source's reads take, and when one last worked.
    reads: dict[str, ReadTimes] = field(default_factory=dict)
    # Frames and bytes (of text, before compression) written to clients, per client kind
    # (the signed-in user's role: admin, operator, display); ws.py counts these.
    frames_sent: dict[str, int] = field(default_factory=dict)
    bytes_sent: dict[str, int] = field(default_factory=dict)
    # The accounts table's contacts and users per node, kept as it changes.
    nodes: NodeCounts = field(default_factory=NodeCounts)
    # Connects that resumed with no snapshot at all, and table snapshots sent (at connect or
    # on a resync): a cluster's failover should move the first, not the second.
    resumed: int = 0
    snapshots_sent: int = 0


class Hub:
    """Tables, sequence numbers and the fan-out to WebSocket clients."""

    def __init__(
        self,
        tables: Iterable[str],
        *,
        ring_size: int = Config.ring_size,
        ring_bytes: int = Config.ring_bytes,
        client_frames: int = Config.client_queue_frames,
        client_bytes: int = Config.client_queue_bytes,
        frames: bool = True,
    ) -> None:
        # False: a hub no client reads (a cluster leader's, server/cluster/node.py): its
        # diffs go to ``on_publish`` only, never encoded as frames, and it keeps no node
        # counts (nothing reads its stats; counting a million rows held a new leader ~1 s).
        self.frames = frames
        self.epoch = f"{int(time.time())}-{secrets.token_hex(4)}"
        self.tables = {name: Table(name, ring_size, ring_bytes) for name in tables}
        self._clients: set[Client] = set()
        self._client_frames = client_frames
        self._client_bytes = client_bytes
        self.stats = HubStats()
        # Set once every table has been polled once (successfully or not): before that a
        # snapshot would show an empty table, and a wall display "0 registered users".
        self.ready = asyncio.Event()
        self._unpolled = set(self.tables)
        # Told of every diff as it is published (server/cluster/ sends them to Redis).
        self.on_publish: Callable[[Table, Changes], None] | None = None
        self._unpolled_nodes: dict[str, set[str]] = {}  # table -> nodes not polled yet

    def add_node(self, table: str, node: str) -> None:
        """Declare that ``node`` feeds its own part of ``table``: its rows are published
        with ``node=``, its health set per node, and the table counts as polled once every
        node was."""
        state = self.tables[table]
        if node not in state.partitions:  # a cluster's new leader holds the cluster's rows
            state.partitions[node] = {k for k, row in state.rows.items() if row.get("node") == node}
        # Rows of it already held are a reading (the cluster's), not "not read yet".
        held = bool(state.partitions[node])
        state.node_sources[node] = protocol.NodeSource(node, True, None, now_iso(), held)
        self._unpolled_nodes.setdefault(table, set()).add(node)
        state.source = protocol.Source.merged(table, list(state.node_sources.values()))

    async def first_poll(self) -> None:
        """Wait (at most FIRST_POLL_WAIT) until every source was polled once, so that a client
        is not given an empty table that nobody has read yet."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), FIRST_POLL_WAIT)

    def polled(self, table: str) -> bool:
        """True once the table's source was polled (successfully or not)."""
        return table not in self._unpolled

    def mark_polled(self, table: str, node: str | None = None) -> None:
        """Note a table's poll; after its first, clients hear how its source really is."""
        waiting = self._unpolled_nodes.get(table)
        if node is not None and waiting is not None:
            waiting.discard(node)
            if waiting:
                return  # the table is read once all its nodes were
        if table not in self._unpolled:
            return
        self._unpolled.discard(table)
        if self.tables[table].source.ok:  # a failure was told as it happened
            self._fan_out(self._source_frame(self.tables[table]))
        if self.frames:  # a cluster leader's own hub serves no client: nothing to share
            self.tables[table].build_soon(self.epoch)  # the restart's first clients share it
        if not self._unpolled:
            log.info(READY_MESSAGE)  # when a restart's clients can have their tables
            self.ready.set()

    def _source_frame(self, state: Table) -> str:
        if state.name in self._unpolled and state.source.ok:
            # Clients that waited out FIRST_POLL_WAIT: the empty table is no reading.
            return protocol.encode(
                protocol.Source(state.name, False, NOT_READ, state.source.since, read=False)
            )
        return protocol.encode(state.source)

    # --- publishing -------------------------------------------------------------------

    def publish_state(
        self, table: str, rows: Mapping[str, Row], node: str | None = None
    ) -> Changes:
        """Make ``rows`` the table's state (or ``node``'s part of it); publish the diff if
        anything changed. O(table), or O(that node's rows): for full reads; the
        change-driven path is ``publish_changes``."""
        if node is not None:
            held = self.tables[table].partitions.setdefault(node, set())
            return self.publish_changes(table, rows, held - rows.keys(), node=node)
        state = self.tables[table]
        state.position = None  # rows from no source that can be continued
        self.stats.rows_compared += len(state.rows) + len(rows)
        changes = diff(state.rows, rows)
        state.rows = dict(rows)
        if table == "accounts" and changes and self.frames:
            self.stats.nodes.reset(state.rows.values())
        if changes:
            self._publish(state, changes)
        return changes

    def publish_changes(
        self,
        table: str,
        upsert: Mapping[str, Row],
        delete: Iterable[str] = (),
        node: str | None = None,
        position: str | None = None,
    ) -> Changes:
        """Delete ``delete``, then upsert ``upsert`` (complete rows); publish what that
        changed. O(rows named), however large the table: rows are updated in place.
        ``position``: where the source's reads stand with these changes, the rows complete
        for it; None (a source that cannot be continued) clears it, so that no new leader
        goes on from a position older than rows changed without one."""
        state = self.tables[table]
        state.position = position
        delete = delete if isinstance(delete, (set, frozenset, list, tuple)) else list(delete)
        self.stats.rows_compared += len(upsert) + len(delete)
        changes = diff_some(state.rows, upsert, delete)
        if node is not None:  # the keys of node's part; ids are unique across nodes
            held = state.partitions.setdefault(node, set())
            held.difference_update(changes.delete)
            held.update(change["id"] for change in changes.upsert)
        if not changes:
            return changes
        rows = state.rows
        counts = self.stats.nodes if table == "accounts" and self.frames else None
        for key in changes.delete:
            gone = rows.pop(key, None)
            if counts is not None:
                counts.add(gone, -1)
        for change in changes.upsert:
            key = change["id"]
            if counts is not None:
                counts.add(rows.get(key), -1)
                counts.add(upsert[key])
            rows[key] = upsert[key]
        self._publish(state, changes)
        return changes

    def _publish(self, state: Table, changes: Changes) -> None:
        state.seq += 1
        state.forget_snapshot()
        self.stats.published += 1
        if self.frames and (self._clients or len(changes) <= UNSENT_DIFF):
            frame = protocol.encode(
                protocol.Diff(state.name, state.seq, changes.upsert, changes.delete)
            )
            state.remember(state.seq, frame)
            self._fan_out(frame)
        else:
            state.forget_frames()
        if self.on_publish is not None:
            self.on_publish(state, changes)

    def observe_read(self, table: str, seconds: float, ok: bool) -> None:
        """Note one source read (a full read or an ask of its changes) and how it went."""
        self.stats.reads.setdefault(table, ReadTimes()).observe(seconds, ok)

    def count_reconcile_mismatch(self, table: str, rows: int) -> None:
        mismatches = self.stats.reconcile_mismatches
        mismatches[table] = mismatches.get(table, 0) + rows

    def source_ok(self, table: str, node: str | None = None) -> bool:
        """Whether the table's source (or that node's) answers."""
        state = self.tables[table]
        return state.source.ok if node is None else state.node_sources[node].ok

    def set_source(self, table: str, ok: bool, error: str | None, node: str | None = None) -> None:
        """Record a source's (or one node's) health; clients hear of it only when it
        changes."""
        state = self.tables[table]
        if node is not None:
            before = state.node_sources[node]
            read = before.read or ok
            if (before.ok, before.error, before.read) == (ok, error, read):
                return
            state.node_sources[node] = protocol.NodeSource(node, ok, error, now_iso(), read)
            state.source = protocol.Source.merged(table, list(state.node_sources.values()))
            state.source_version += 1
            if not ok or table not in self._unpolled:
                self._fan_out(protocol.encode(state.source))
            return
        read = state.source.read or ok
        if state.source.ok == ok and state.source.error == error and state.source.read == read:
            return
        state.source = protocol.Source(table, ok, error, now_iso(), read=read)
        state.source_version += 1
        if not ok or table not in self._unpolled:  # else mark_polled tells, after the rows
            self._fan_out(protocol.encode(state.source))

    def _fan_out(self, frame: str) -> None:
        for client in self._clients:
            before = client.resyncs
            client.push(frame)
            self.stats.resyncs += client.resyncs - before

    # --- subscribing ------------------------------------------------------------------

    def connect(self, resume: protocol.Resume | None) -> tuple[Client, list[str]]:
        """Register a client; return it and its first frames (missed diffs or snapshots).

        Synchronous, so no diff can fall between the frames returned and the outbox.
        """
        client = Client(self._client_frames, self._client_bytes)
        frames: list[str] = []
        sent = self.stats.snapshots_sent
        for state in self.tables.values():
            frames.extend(self._catch_up(state, resume))
            frames.append(self._source_frame(state))
        if resume is not None and self.stats.snapshots_sent == sent:
            self.stats.resumed += 1
        self._clients.add(client)
        self.stats.clients = len(self._clients)
        return client, frames

    def disconnect(self, client: Client) -> None:
        self._clients.discard(client)
        self.stats.clients = len(self._clients)

    def snapshot_frames(self, client: Client | None = None) -> list[str]:
        """Every table as snapshot pages (and sources); clears a client's pending snapshot."""
        if client is not None:
            client.take()
            client.needs_snapshot = False
        frames: list[str] = []
        for state in self.tables.values():
            frames.extend(state.snapshot())
            frames.append(self._source_frame(state))
        self.stats.snapshots_sent += len(self.tables)
        return frames

    def _catch_up(self, state: Table, resume: protocol.Resume | None) -> list[str]:
        if resume is not None and resume.epoch == self.epoch and state.name in resume.seq:
            have = resume.seq[state.name]
            if have == state.seq:
                return []
            oldest = state.ring[0][0] if state.ring else state.seq + 1
            if oldest <= have + 1 <= state.seq:
                return [frame for seq, frame in state.ring if seq > have]
        self.stats.snapshots_sent += 1
        return state.snapshot()

    # --- a cluster's instance (server/cluster/): the leader's state, at its seq ----------

    def apply_remote(
        self,
        table: str,
        seq: int,
        upsert: Mapping[str, Row],
        delete: Iterable[str],
        position: str | None = None,
    ) -> None:
        """Publish the leader's diff ``seq`` (complete rows) as ``publish_changes`` would,
        numbered as the leader numbered it, so every instance's seq for a table is the same;
        ``position`` is the leader's source's as of it."""
        state = self.tables[table]
        state.seq = seq - 1
        if not self.publish_changes(table, upsert, delete, position=position):
            self._publish(state, Changes())  # nothing new here: keep the numbering gapless

    def load_remote(
        self, table: str, seq: int, rows: Mapping[str, Row], position: str | None = None
    ) -> None:
        """Make the table the leader's snapshot at ``seq`` (its source at ``position``).
        Clients are sent fresh snapshots when that is not what they hold: the diffs between
        never reached this instance."""
        state = self.tables[table]
        state.position = position
        if state.seq == seq and state.rows == rows:
            return
        state.rows, state.seq = dict(rows), seq
        state.forget_frames()
        state._pages, state.shared = None, None
        if table == "accounts" and self.frames:
            self.stats.nodes.reset(state.rows.values())
        self.resync_clients()

    def set_remote_source(self, table: str, source: protocol.Source) -> None:
        """Take a table's health as the cluster says it is (the leader's, or unavailable)."""
        state = self.tables[table]
        if state.source == source:
            return
        state.source = source
        state.source_version += 1
        self._fan_out(protocol.encode(source))

    def resync_clients(self) -> None:
        """Send every client fresh snapshots (what it holds may not be this hub's past)."""
        for client in self._clients:
            client.take()
            client.needs_snapshot = True
            client._wakeup.set()

"""A read-only aiosqlite connection that knows whether the file changed since last asked,
and the reader of the store's change log (``rtm_changes``, see server/store.py)."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import aiosqlite

from ..rows import Row
from . import feed

log = logging.getLogger("rtm.collectors")

# Keys per ``IN (...)`` query: far below SQLite's variable limit, small enough to stay fast.
KEYS_PER_QUERY = 500
# More entries than this since the cursor and a full read is as cheap as following them.
MAX_CHANGES_READ = 50_000


def path_from_url(url: str) -> str:
    """``sqlite:///var/rtm.db`` → ``var/rtm.db``; ``sqlite:////abs/x.db`` → ``/abs/x.db``."""
    parts = urlsplit(url)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if parts.netloc:
        raise ValueError(f"{url!r}: a sqlite URL has no host (use sqlite:///relative or ////abs)")
    if not path:
        raise ValueError(f"{url!r}: no database path")
    return path


def missing_database(path: str, scheme: str = "sqlite") -> str:
    """The error for a database that is not there, pointing at the four-slash URL when the
    path was read as relative but exists from the root (``sqlite:///srv/x`` for ``/srv/x``)."""
    message = f"no database at {path}"
    if not os.path.isabs(path) and os.path.exists(os.sep + path):
        message += (
            f" (relative to {os.getcwd()}); /{path} exists: an absolute path takes four"
            f" slashes, as in {scheme}:////{path}"
        )
    return message


# "The files look unchanged" is trusted for this long before SQLite itself is asked again.
TRUST_FILES = 1.0
# A new look of the files that SQLite says is no commit is accepted after this many asks.
SETTLE_ASKS = 3


class SqliteSource:
    """One persistent read connection; ``changed()`` uses ``PRAGMA data_version``.

    data_version moves when any *other* connection commits. Asking it is a trip to
    aiosqlite's thread, and the change log is asked 20 times a second per table, so first
    the file and its ``-wal`` are stat'ed (a commit writes one of them: mtime and size move):
    while they look the same, SQLite is asked only once a second (``TRUST_FILES``, the bound
    on what a missed look could cost). A look that changed without a commit (a checkpoint,
    or frames written a moment before the commit is visible) is asked about again until it
    settles. The stat also notices a file that was removed or replaced (an open connection
    would go on reading the old one). After an error the connection is dropped and the next
    call reopens it.
    """

    def __init__(self, path: str, scheme: str = "sqlite") -> None:
        self.path = path
        self.scheme = scheme  # the source URL's, for the error that names the right URL
        # Read-only: rtm never writes a source's file (and cannot corrupt Kamailio's).
        self._uri = f"file:{quote(os.path.abspath(path))}?mode=ro"
        self._conn: aiosqlite.Connection | None = None
        self._version: int | None = None
        self._inode: tuple[int, int] | None = None
        self._look: tuple[object, ...] | None = None  # the files when SQLite was last asked
        self._asked = -TRUST_FILES
        self._unsettled = 0

    def _files(self) -> tuple[object, ...]:
        """What a commit changes: the file's identity, mtime and size, and its -wal's."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            raise FileNotFoundError(missing_database(self.path, self.scheme)) from None
        try:
            wal = os.stat(self.path + "-wal")
            journal: tuple[int, int] | None = (wal.st_mtime_ns, wal.st_size)
        except FileNotFoundError:
            journal = None
        return (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size, journal)

    def _stat(self) -> tuple[int, int]:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            raise FileNotFoundError(missing_database(self.path, self.scheme)) from None
        return info.st_dev, info.st_ino

    async def _connection(self) -> aiosqlite.Connection:
        inode = self._stat()
        if self._conn is not None and inode != self._inode:
            await self.close()  # replaced under us: read the new file from now on
        if self._conn is None:
            conn = await aiosqlite.connect(self._uri, uri=True, timeout=2.0)
            conn.row_factory = sqlite3.Row
            self._conn = conn
            self._version = None
            self._inode = inode
        return self._conn

    async def changed(self) -> bool:
        """True on the first call, after a reconnect, and whenever another writer committed."""
        look, now = self._files(), time.monotonic()
        if self._conn is not None and look == self._look and now - self._asked < TRUST_FILES:
            return False
        records = await self.query("PRAGMA data_version")
        self._asked = now
        version = int(records[0][0]) if records else -1
        if version != self._version:
            self._version, self._look, self._unsettled = version, look, 0
            return True
        if look != self._look:
            self._unsettled += 1
            if self._unsettled >= SETTLE_ASKS:
                self._look, self._unsettled = look, 0
        return False

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[None]:
        """Queries inside see one state of the file (a read transaction; WAL keeps writers
        going meanwhile), so a change log's cursor and the rows read agree."""
        conn = await self._connection()
        await conn.execute_fetchall("BEGIN")
        try:
            yield
        finally:
            if self._conn is conn:  # a failed query closed it, and its transaction with it
                try:
                    await conn.execute_fetchall("COMMIT")
                except Exception:  # noqa: BLE001 - read-only: nothing to lose; reopen next time
                    await self.close()

    @property
    def inode(self) -> tuple[int, int] | None:
        """The file the connection reads (changes when it was replaced under us)."""
        return self._inode

    async def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Every record of ``sql``: one trip to aiosqlite's thread (a trip per fetch and per
        cursor close would triple the cost of each ask of the change log)."""
        try:
            conn = await self._connection()
            return list(await conn.execute_fetchall(sql, tuple(params)))
        except Exception:
            await self.close()
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        self._version = None
        self._inode = None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                pass


async def query_keys(source: SqliteSource, sql: str, keys: Sequence[Any]) -> list[sqlite3.Row]:
    """Run ``sql`` (with ``{keys}`` where the ``IN`` list goes) for ``keys``, in chunks."""
    records: list[sqlite3.Row] = []
    for start in range(0, len(keys), KEYS_PER_QUERY):
        chunk = keys[start : start + KEYS_PER_QUERY]
        records += await source.query(sql.format(keys=", ".join("?" * len(chunk))), chunk)
    return records


class ChangeLog:
    """The store's ``rtm_changes`` for some tables, read from a cursor.

    ``since`` answers, in the caller's snapshot, the keys logged per table after the cursor
    and moves the cursor; None when it cannot (no log in this file, a cursor older than the
    oldest kept entry, a file replaced under us, too many entries to be worth following),
    and the caller reads the table whole. ``start`` sets the cursor for a full read made in
    the same snapshot.
    """

    def __init__(self, source: SqliteSource, tables: Sequence[str]) -> None:
        self.source = source
        self.tables = tuple(tables)
        self.cursor: int | None = None
        self._inode: tuple[int, int] | None = None
        self._schema: int | None = None
        # ((file, schema version), whether the log is there): a schema change (a table
        # dropped with its triggers, a column added) is seen before the next read.
        self._present: tuple[tuple[tuple[int, int] | None, int], bool] | None = None

    async def present(self, schema: int | None = None) -> bool:
        """True when this file has the log and a trigger for each of our tables (checked
        again whenever the schema version moves)."""
        if schema is None:
            records = await self.source.query("PRAGMA schema_version")
            schema = int(records[0][0]) if records else -1
        key = (self.source.inode, schema)
        if self._present is None or self._present[0] != key:
            wanted = {f"rtm_{t}_{op}" for t in self.tables for op in ("insert", "update", "delete")}
            records = await self.source.query(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'rtm_%'"
                " UNION ALL SELECT name FROM sqlite_master WHERE name = 'rtm_changes'"
            )
            names = {r[0] for r in records}
            found = bool(self.tables) and "rtm_changes" in names and wanted <= names
            if self._present is not None and self._present[1] and not found:
                log.warning(
                    "%s: rtm's change log or its triggers are gone from %s; reading it whole"
                    " after each change (rtm serve's start-up migration does not put them"
                    " back: restore the store, or recreate it)",
                    "/".join(self.tables),
                    self.source.path,
                )
            self._present = (key, found)
        return self._present[1]

    async def _status(self) -> tuple[int, int, int | None] | None:
        """(schema version, last seq, oldest kept seq) in one query; None without a log."""
        if not await self.present():
            return None
        records = await self.source.query(
            "SELECT (SELECT schema_version FROM pragma_schema_version),"
            " (SELECT seq FROM sqlite_sequence WHERE name = 'rtm_changes'),"
            " (SELECT min(seq) FROM rtm_changes)"
        )
        schema, last, first = records[0]
        if not await self.present(int(schema)):  # the schema moved since present() said yes
            return None
        return int(schema), int(last or 0), first

    async def start(self) -> None:
        """Inside a snapshot, before a full read: from now on follow what comes after it."""
        status = await self._status()
        if status is None:
            self.cursor = None
        else:
            self._schema, self.cursor, _ = status
            self._inode = self.source.inode

    async def since(self) -> dict[str, list[Any]] | None:
        """The keys logged per table since the cursor (deduplicated, in log order) and move
        the cursor; None when the caller must read whole.

        Needs no snapshot: entries up to the last seq seen are committed, and a row read
        after a later write is only newer (that write's entry names it again next time).
        """
        cursor = self.cursor
        if cursor is None or self._inode != self.source.inode:
            return None
        status = await self._status()
        if status is None or status[0] != self._schema:
            self.cursor = None  # no log, or the schema changed: what rows mean may have too
            return None
        _, last, first = status
        if last == cursor:
            return {}
        if last < cursor or first is None or first > cursor + 1 or last - cursor > MAX_CHANGES_READ:
            if last < cursor or (first is not None and first > cursor + 1):
                log.info(
                    "%s: change log moved past rtm's cursor (%d, now %s..%d): full read",
                    "/".join(self.tables),
                    cursor,
                    first,
                    last,
                )
            self.cursor = None
            return None
        marks = ", ".join("?" * len(self.tables))
        records = await self.source.query(
            f"SELECT tbl, key FROM rtm_changes WHERE seq > ? AND seq <= ? AND tbl IN ({marks})"
            " ORDER BY seq",
            (cursor, last, *self.tables),
        )
        keys: dict[str, dict[Any, None]] = {}
        for table, key in records:
            keys.setdefault(table, {})[key] = None
        self.cursor = last
        return {table: list(found) for table, found in keys.items()}


class LoggedCollector(feed.LoggedCollector[SqliteSource, ChangeLog]):
    """The ``ChangeFeed`` half every collector of an SQLite file shares (``feed.py``): full
    reads, asks of the change log, and the reconcile, all from its ``source`` and ``log``.
    A subclass says how to read everything (``_read_all``) and what the log's keys name
    (``_pending``)."""


class QueryCollector(feed.QueryCollector[SqliteSource, ChangeLog]):
    """A table that is one SQL query over an SQLite file, mapped record by record to rows.

    A ``ChangeFeed``: in rtm's store the change log names the rows that changed, which are
    read again by ``keyed_sql`` (its ``{keys}`` is the ``IN`` list of log keys, which are
    row ids here); a key it no longer returns is a deleted row. A file without the log
    (Kamailio's own, for msilo) is read whole, and only after it changed: an unchanged file
    costs one stat and one pragma.
    """

    def __init__(
        self,
        table: str,
        path: str,
        sql: str,
        to_row: Callable[[dict[str, Any]], Row],
        scheme: str = "sqlite",
        *,
        logged: Sequence[str] = (),
        keyed_sql: str = "",
    ) -> None:
        self.table = table
        self.source = SqliteSource(path, scheme)
        self.log = ChangeLog(self.source, logged if keyed_sql else ())
        self._sql = sql
        self._keyed_sql = keyed_sql
        self._to_row = to_row

    async def _read_keys(self, keys: list[Any]) -> list[sqlite3.Row]:
        return await query_keys(self.source, self._keyed_sql, keys)

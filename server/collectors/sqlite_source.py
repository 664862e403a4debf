"""A read-only aiosqlite connection that knows whether the file changed since last asked."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

import aiosqlite

from ..rows import Row, Rows


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


class SqliteSource:
    """One persistent read connection; ``changed()`` uses ``PRAGMA data_version``.

    data_version moves when any *other* connection commits, so an unchanged store costs one
    stat and one pragma per cycle. The stat notices a file that was removed or replaced (an
    open connection would go on reading the old one). After an error the connection is
    dropped and the next call reopens it.
    """

    def __init__(self, path: str, scheme: str = "sqlite") -> None:
        self.path = path
        self.scheme = scheme  # the source URL's, for the error that names the right URL
        # Read-only: rtm never writes a source's file (and cannot corrupt Kamailio's).
        self._uri = f"file:{quote(os.path.abspath(path))}?mode=ro"
        self._conn: aiosqlite.Connection | None = None
        self._version: int | None = None
        self._inode: tuple[int, int] | None = None

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
        try:
            conn = await self._connection()
            async with conn.execute("PRAGMA data_version") as cursor:
                row = await cursor.fetchone()
        except Exception:
            await self.close()
            raise
        version = int(row[0]) if row else -1
        if version == self._version:
            return False
        self._version = version
        return True

    async def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            conn = await self._connection()
            async with conn.execute(sql, tuple(params)) as cursor:
                return list(await cursor.fetchall())
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


class QueryCollector:
    """A table that is one SQL query over an SQLite file, mapped record by record to rows.

    Returns None (nothing to do) while the file is unchanged.
    """

    cheap_unchanged = True  # an unchanged file costs one stat and one pragma

    def __init__(
        self,
        table: str,
        path: str,
        sql: str,
        to_row: Callable[[dict[str, Any]], Row],
        scheme: str = "sqlite",
    ) -> None:
        self.table = table
        self.source = SqliteSource(path, scheme)
        self._sql = sql
        self._to_row = to_row

    async def fetch(self) -> Rows | None:
        if not await self.source.changed():
            return None
        rows = (self._to_row(dict(record)) for record in await self.source.query(self._sql))
        return {row["id"]: row for row in rows}

    async def close(self) -> None:
        await self.source.close()

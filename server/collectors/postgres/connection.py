"""One read connection to PostgreSQL (psycopg 3, async, autocommit) that reconnects by
itself after a failure and bounds every statement."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row

from ..base import YIELD_EVERY

# Seconds a statement may run, and a connection attempt may take. A full read of a million
# contacts takes ~3 s; a statement that runs longer is a database in trouble.
STATEMENT_TIMEOUT = 30.0
CONNECT_TIMEOUT = 5

# Every connection made, numbered: a change log's cursor is only good on the connection
# generation it was read on (after a reconnect a full read tells what was missed).
_generations = itertools.count(1)


def conninfo(url: str) -> str:
    """libpq's URL: ``postgres://`` and ``postgresql://`` alike (libpq takes both)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"{url!r}: not a postgresql:// URL")
    return urlunsplit(parts)


def redacted(url: str) -> str:
    """The URL without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresSource:
    """A lazily opened ``psycopg.AsyncConnection``, autocommit, read only.

    Any failed query drops the connection (a broken socket, a restarted server, a statement
    cancelled by its timeout); the next query opens a new one, and ``generation`` moves so
    that a change log knows its cursor may have missed something.
    """

    def __init__(self, url: str, statement_timeout: float = STATEMENT_TIMEOUT) -> None:
        self.url = conninfo(url)
        self.name = redacted(url)
        self.statement_timeout = statement_timeout
        self.generation = 0
        self._conn: psycopg.AsyncConnection[dict[str, Any]] | None = None
        self._in_snapshot = False

    async def _connection(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        if self._conn is None or self._conn.closed:
            milliseconds = int(self.statement_timeout * 1000)
            self._conn = await psycopg.AsyncConnection.connect(
                self.url,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=CONNECT_TIMEOUT,
                application_name="rtm",
                options=f"-c statement_timeout={milliseconds} -c default_transaction_read_only=on",
            )
            self.generation = next(_generations)
        return self._conn

    @property
    def in_snapshot(self) -> bool:
        """Whether queries now see one state (inside ``snapshot``)."""
        return self._in_snapshot

    async def changed(self) -> bool:
        """Always True: PostgreSQL has no cheap "anything committed?"; the log's query is it."""
        return True

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[None]:
        """Queries inside see one state (REPEATABLE READ, read only: it takes no xid, so it
        holds back no other reader's ``pg_snapshot_xmin``)."""
        conn = await self._connection()
        try:
            await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        except Exception:
            await self.close()
            raise
        self._in_snapshot = True
        try:
            yield
        finally:
            self._in_snapshot = False
            if self._conn is conn:  # a failed query closed it, and its transaction with it
                try:
                    await conn.execute("COMMIT")
                except Exception:  # noqa: BLE001 - read only: nothing to lose; reopen next time
                    await self.close()

    async def query(
        self, sql: Any, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[dict[str, Any]]:
        """Every record of ``sql``, as dicts; a failure drops the connection and raises."""
        try:
            conn = await self._connection()
            cursor = await conn.execute(sql, params)
            if not cursor.description:
                return []
            # Made into dicts a batch at a time, the loop running between: a million
            # records converted at once would hold it for seconds.
            records: list[dict[str, Any]] = []
            while batch := await cursor.fetchmany(YIELD_EVERY):
                records += batch
                await asyncio.sleep(0)
            return records
        except BaseException:
            # Cancelled too (the runner's timeout): a change log's cursor may have moved past
            # entries whose rows this query was reading, and only a new generation tells it.
            await self.close()
            raise

    async def write(self, sql: Any, params: Sequence[Any] | dict[str, Any] = ()) -> None:
        """One statement in its own read-write transaction (the log's pruning only)."""
        conn = await self._connection()
        try:
            async with conn.transaction():
                await conn.execute("SET TRANSACTION READ WRITE")
                await conn.execute(sql, params)
        except psycopg.errors.InsufficientPrivilege:
            raise
        except Exception:
            await self.close()
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        self._in_snapshot = False
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                pass

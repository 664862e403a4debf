"""One synchronous seam over rtm's store, a SQLite file or PostgreSQL (``RTM_DB``).

The auth layer, the CLI, the API's detail views and the demo write one SQL for both: ``?``
placeholders (translated for psycopg), ``ON CONFLICT`` upserts, rows as tuples, and
``write()`` for a transaction that must not interleave with another writer's (SQLite's
``BEGIN IMMEDIATE``; on PostgreSQL one advisory lock that every such transaction takes).
Outside ``write()`` each statement commits by itself, on both.

PostgreSQL connections come from a small per-URL pool: the auth layer looks up a session on
every request, and a new backend per request would cost milliseconds and a process each.
"""

from __future__ import annotations

import abc
import functools
import select
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import Any, Protocol

import psycopg
from psycopg import pq

from . import postgres, store
from .config import is_postgres, redacted_url

# Catch these instead of sqlite3's or psycopg's own.
IntegrityError = (sqlite3.IntegrityError, psycopg.IntegrityError)
DatabaseError = (sqlite3.Error, psycopg.Error)
# Held by every write() transaction on PostgreSQL ("rtm" 2).
WRITE_LOCK = 0x72746D02
# Idle connections kept per PostgreSQL URL; more are closed when given back.
POOL_IDLE = 8


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Database(abc.ABC):
    """A connection to the store; ``with open_db(db) as conn:`` closes (or pools) it."""

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        """Run one statement (committed at once outside ``write()``)."""

    @abc.abstractmethod
    def write(self) -> AbstractContextManager[None]:
        """One write transaction, never interleaved with another writer's."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection, or give it back to its pool."""

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SqliteDatabase(Database):
    """store.connect's autocommit connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(sql, params)

    @contextmanager
    def write(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


@functools.lru_cache(maxsize=256)
def _placeholders(sql: str) -> str:
    # rtm's SQL has no ? or % inside string literals, so a plain replace is exact.
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresDatabase(Database):
    """A pooled autocommit psycopg connection taking ``?`` placeholders."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.conn = pool.get()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(_placeholders(sql), tuple(params))

    @contextmanager
    def write(self) -> Iterator[None]:
        with self.conn.transaction():
            # One writer at a time, as on SQLite: a check and the insert that depends on it
            # (the first admin, a failure count) cannot interleave with another's.
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield

    def close(self) -> None:
        self.pool.put(self.conn)


class _Pool:
    def __init__(self, url: str) -> None:
        self.url = url
        self.idle: list[psycopg.Connection] = []
        self.lock = threading.Lock()

    def get(self) -> psycopg.Connection:
        with self.lock:
            while self.idle:
                conn = self.idle.pop()
                if _usable(conn):
                    return conn
                conn.close()
        return postgres.connect(self.url)

    def put(self, conn: psycopg.Connection) -> None:
        if _usable(conn) and conn.info.transaction_status == pq.TransactionStatus.IDLE:
            with self.lock:
                if len(self.idle) < POOL_IDLE:
                    self.idle.append(conn)
                    return
        conn.close()

    def close(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()


def _usable(conn: psycopg.Connection) -> bool:
    """False for a connection the server has closed (a restart) or sent anything on: an
    idle connection's socket is readable only then, so this costs no round trip."""
    if conn.closed or conn.broken:
        return False
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    return not readable


_POOLS: dict[str, _Pool] = {}
_POOLS_LOCK = threading.Lock()


def _pool(url: str) -> _Pool:
    with _POOLS_LOCK:
        return _POOLS.setdefault(url, _Pool(url))


def close_pools() -> None:
    """Close every idle PostgreSQL connection (tests, before their server stops)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
    for pool in pools:
        pool.close()


def open_db(db: str) -> Database:
    """A connection to the store ``db`` names: a SQLite path or a PostgreSQL URL."""
    if is_postgres(db):
        return PostgresDatabase(_pool(db))
    return SqliteDatabase(store.connect(db))


def read_setting(db: str, name: str) -> str | None:
    """A value of the store's ``settings`` table, or None."""
    with open_db(db) as conn:
        row = conn.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return str(row[0]) if row else None


def write_setting(db: str, name: str, value: str) -> None:
    with open_db(db) as conn:
        conn.execute(
            "INSERT INTO settings (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )


def write_problem(db: str) -> str | None:
    """None when the store takes writes (sessions and logins need them), else why not."""
    try:
        if is_postgres(db):
            with open_db(db) as conn:
                if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    return "store is a read-only PostgreSQL standby"
            return None
        sqlite = sqlite3.connect(db, timeout=2, isolation_level=None)
        try:
            sqlite.execute("BEGIN IMMEDIATE")
            sqlite.execute("ROLLBACK")
        finally:
            sqlite.close()
    except DatabaseError as exc:
        return f"store {redacted_url(db)} not writable: {exc}"
    return None

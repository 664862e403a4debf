"""Demo traffic: a simulated PBX writing into the store's tables, as a real SIP stack would.

``run_demo`` is what ``make run`` (``RTM_DEMO=1``) starts in the app's lifespan, and
``rtm demo`` runs it alone against any store. It writes ``location`` (as Kamailio's usrloc
does in db_mode 2), ``accounts``, ``trunks``, ``trunk_status`` and ``messages``, so the
collectors read demo traffic exactly as they would read production.

Writes are transactions on a WAL store with a busy timeout: the start-up's replacement of
an earlier run's rows is one (no reader ever sees them half replaced), then a small one per
tick every half second. Under WAL, collectors reading concurrently never wait for either.
On a PostgreSQL store (``RTM_DB=postgresql://…``) the same transactions run there, and
``location``'s times are TIMESTAMPs in local time, as Kamailio's db_postgres writes them.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import logging
import random
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from ..config import ConfigError, db_scheme, from_env, is_postgres, redacted_url
from ..database import Database, DatabaseError, SqliteDatabase, open_db
from ..store import migrate
from .traffic import DemoTraffic, Statement

log = logging.getLogger("rtm.demo")
T = TypeVar("T")
TICK_SECONDS = 0.5
BUSY_TIMEOUT_MS = 2000


def _connect(db_path: str) -> Database:
    """The demo's one connection: pooled psycopg for PostgreSQL, else _open's."""
    return open_db(db_path) if is_postgres(db_path) else SqliteDatabase(_open(db_path))


def _open(db_path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # WAL is a property of the file (migrate sets it); synchronous is per connection, and
    # NORMAL is safe under WAL and keeps demo writes cheap.
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def local_timestamp(unix: float) -> datetime:
    """A TIMESTAMP WITHOUT TIME ZONE in local time, as Kamailio's db_postgres writes one."""
    return datetime.fromtimestamp(unix)


def signed_bitmap(bits: int) -> int:
    """A 32-bit bitmap (location.methods) as the signed INTEGER PostgreSQL's column holds."""
    return bits - (1 << 32) if bits >= 1 << 31 else bits


def write_statements(conn: Database | sqlite3.Connection, statements: Sequence[Statement]) -> None:
    """Run ``statements`` in one short write transaction."""
    if not statements:
        return
    db = SqliteDatabase(conn) if isinstance(conn, sqlite3.Connection) else conn
    with db.write():
        for sql, params in statements:
            db.execute(sql, params)


async def run_demo(
    db_path: str,
    *,
    seed: int | None = None,
    accounts: int = 300,
    stop: asyncio.Event | None = None,
    tick: float = TICK_SECONDS,
) -> None:
    """Write demo traffic into the store at ``db_path`` until ``stop`` is set or cancelled.

    The store must be migrated already (``rtm serve`` and ``rtm demo`` do it). Replaces the
    demo's own rows from an earlier run, then writes a few changes every ``tick`` seconds.
    The same ``seed`` replays the same choices.
    """
    if accounts < 2:
        raise ValueError(f"demo needs at least 2 accounts, got {accounts}")
    stop = stop or asyncio.Event()
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    # One thread owns the connection, so writes stay ordered and close waits for the last.
    executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rtm-demo")
    loop = asyncio.get_running_loop()

    def in_thread(function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return loop.run_in_executor(executor, function, *args)

    conn: Database | None = None
    try:
        conn = await in_thread(_connect, db_path)
        traffic = DemoTraffic(random.Random(seed), accounts, time.time())
        if is_postgres(db_path):
            traffic.stamp, traffic.bitmap = local_timestamp, signed_bitmap
        log.info(
            "demo traffic: %d accounts, seed %d, store %s", accounts, seed, redacted_url(db_path)
        )
        # One transaction: in WAL readers never wait for it, and a poll can no more land
        # between clearing the old contacts and writing the new ones (a wall would read a
        # complete, committed, empty table: "0 registered users").
        setup = [statement for batch in traffic.setup(time.time()) for statement in batch]
        await in_thread(write_statements, conn, setup)
        while not stop.is_set():
            statements = traffic.tick(time.time())
            try:
                await in_thread(write_statements, conn, statements)
            except DatabaseError as exc:
                # A writer holding the store past our busy timeout (or a vanished table)
                # costs one tick, not the demo; the message never carries row values.
                log.warning("demo tick skipped: %s", exc)
            log.debug("demo tick: %d statements", len(statements))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick)
    finally:
        if conn is not None:
            await asyncio.shield(in_thread(conn.close))
        executor.shutdown(wait=False)


def _accounts(text: str) -> int:
    value = int(text)
    if not 2 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"{value} is out of 2..100000")
    return value


def register(subparsers: Any) -> None:
    """Add ``rtm demo``: run the demo traffic generator alone against a store."""
    parser = subparsers.add_parser(
        "demo",
        help="write simulated SIP traffic into a store",
        description="Write demo registrations, trunk states and queued messages into the "
        "store's tables until interrupted (creates the schema if needed).",
    )
    parser.add_argument(
        "--db", help="store path or postgresql:// URL (default: RTM_DB or var/rtm.db)"
    )
    parser.add_argument("--seed", type=int, default=None, help="replay the same traffic")
    parser.add_argument("--accounts", type=_accounts, default=300, help="accounts (default 300)")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Run the generator in the foreground; SIGINT or SIGTERM stops it cleanly."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        db = args.db or from_env().db
        db_scheme(db)  # an unknown URL scheme fails here, not as a folder
        migrate(db)
    except (ConfigError, RuntimeError, OSError, *DatabaseError) as exc:
        print(f"rtm: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run_demo(db, seed=args.seed, accounts=args.accounts, stop=stop)

    asyncio.run(run())
    return 0

"""rtm's change log in PostgreSQL (``rtm_changes``, installed by server/postgres.py), read
from a cursor, and pruned by its readers.

``seq`` is not commit-ordered: a transaction takes its seqs when it writes and may commit
after one that took later seqs. Every transaction with a txid below the snapshot's
``pg_snapshot_xmin`` has ended, so the entries below it are all there is of them: a reader
takes entries with ``cursor <= txid < xmin`` and moves its cursor to that xmin. A
transaction committing late is read when it ends, never skipped. The cost: while some
writer holds a transaction open, entries of later transactions wait for it (Kamailio's
writes are single autocommit statements).

Inside a snapshot (the reconcile) the bound is not needed: the snapshot shows what it
shows, so every entry it sees from the cursor on is taken, and the rows read in the same
snapshot agree with them exactly. Entries at or above xmin are read again on the next ask:
re-reading a row is harmless.

Pruning keeps the newest ``CHANGES_KEPT`` entries. Whoever prunes below txid P also
writes, in the same transaction, a marker entry (``tbl = 'rtm_changes'``, ``key = P``): a
reader whose cursor is below some marker's P may have lost entries and reads whole. The
latest marker always survives (the next prune writes its own), so no loss goes unseen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import psycopg

from .connection import PostgresSource

log = logging.getLogger("rtm.collectors.postgres")

# Entries kept by pruning, and how often a reader prunes (100,000 entries: over three
# minutes of a 500/s churn; a reader that stops for longer reads whole when it is back).
CHANGES_KEPT = 100_000
PRUNE_EVERY = 10.0
# More entries than this since the cursor and a full read is as cheap as following them.
MAX_CHANGES_READ = 50_000
# How often the triggers are looked for again (a table dropped with its trigger, or the
# log installed meanwhile).
RECHECK_EVERY = 10.0
MARKER = "rtm_changes"
# A position (``ChangeLog.position``) is this, the xid8 cursor, ":", when the server started,
# "@" and the database's URL (its password left out): a prefix says what kind of cursor it
# is, the URL which database's, so that one from another source is never taken for ours,
# and the start a server's: a restarted or promoted one (a replica that may have lost the
# last transactions, and numbers on from before them) is read whole, as a reader of our
# own does after any reconnect.
POSITION = "pg-xid8:"

FOLLOW_SQL = """
SELECT s.xmin::text AS xmin, c.tbl, c.key
FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) s
LEFT JOIN LATERAL (
    SELECT tbl, key FROM rtm_changes
    WHERE txid >= %(cursor)s::xid8 AND (%(snapshot)s OR txid < s.xmin)
      AND tbl = ANY(%(tables)s)
    ORDER BY txid, seq LIMIT %(limit)s
) c ON true
"""
XMIN_SQL = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin"
PRESENT_SQL = """
SELECT to_regclass('rtm_changes') IS NOT NULL AS log,
       extract(epoch FROM pg_postmaster_start_time())::text AS started,
       (SELECT count(*) FROM unnest(%(tables)s::text[]) AS wanted(name)
        WHERE EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass(wanted.name)
                      AND tgname = 'rtm_' || wanted.name || '_change'
                      AND tgenabled <> 'D')) AS triggers
"""
# One statement, so the delete and its marker commit together.
PRUNE_SQL = """
WITH cut AS (
    SELECT least(t.txid, pg_snapshot_xmin(pg_current_snapshot())) AS txid
    FROM (SELECT txid FROM rtm_changes ORDER BY seq DESC OFFSET %(kept)s LIMIT 1) t
), gone AS (
    DELETE FROM rtm_changes c USING cut WHERE c.txid < cut.txid RETURNING 1
)
INSERT INTO rtm_changes (tbl, key, op)
SELECT 'rtm_changes', cut.txid::text, 'D' FROM cut WHERE EXISTS (SELECT 1 FROM gone)
"""


class ChangeLog:
    """``rtm_changes`` for some tables, read from an xid8 cursor (see the module docstring).

    ``since`` answers the keys logged per table after the cursor and moves it; None when it
    cannot (no log or a trigger missing, a reconnect since the cursor was set, a prune past
    the cursor, too many entries to be worth following): the caller reads whole. ``start``
    sets the cursor for a full read made in the same snapshot.
    """

    def __init__(
        self, source: PostgresSource, tables: Sequence[str], kept: int = CHANGES_KEPT
    ) -> None:
        self.source = source
        self.tables = list(tables)
        self.kept = kept
        self.cursor: int | None = None
        self._generation = -1
        self._present: tuple[int, float, bool] | None = None  # (generation, when, found)
        self._started = ""  # the server's start (PRESENT_SQL), for positions
        self._pruned = time.monotonic()
        self._prune_denied = False

    def follow(self, tables: Sequence[str]) -> None:
        """Follow these tables from the next full read on (the cursor is dropped)."""
        if list(tables) != self.tables:
            self.tables, self.cursor, self._present = list(tables), None, None

    async def present(self) -> bool:
        """True when the database has the log and an enabled trigger on each of our tables
        (asked again after a reconnect and every ``RECHECK_EVERY`` seconds)."""
        now, known = time.monotonic(), self._present
        if (
            known is not None
            and known[0] == self.source.generation
            and now - known[1] < RECHECK_EVERY
        ):
            return known[2]
        records = await self.source.query(PRESENT_SQL, {"tables": self.tables})
        found = (
            bool(self.tables)
            and bool(records[0]["log"])
            and records[0]["triggers"] == len(self.tables)
        )
        if known is not None and known[2] and not found:
            log.warning(
                "%s: rtm's change log or a trigger is gone from %s; reading it whole after"
                " each poll (rtm db install-triggers puts them back)",
                "/".join(self.tables),
                self.source.name,
            )
        self._present = (self.source.generation, now, found)
        self._started = str(records[0]["started"])
        return found

    async def start(self) -> None:
        """Inside a snapshot, before a full read: from now on follow what comes after it."""
        if not await self.present():
            self.cursor = None
            return
        self._follow_from(await self._xmin())

    async def _xmin(self) -> int:
        """The database's present: every transaction below it has ended."""
        records = await self.source.query(XMIN_SQL)
        return int(records[0]["xmin"])

    def _follow_from(self, cursor: int) -> None:
        self.cursor, self._generation = cursor, self.source.generation

    def position(self) -> str | None:
        """The cursor as text another reader of this database may continue from (``resume``);
        None when there is none to trust (no log, or a reconnect since it was set)."""
        if self.cursor is None or self._generation != self.source.generation:
            return None
        return f"{POSITION}{self.cursor}:{self._started}@{self.source.name}"

    async def resume(self, position: str) -> bool:
        """Continue from another reader's ``position`` (a cluster's last leader); False when
        it cannot be continued here, and the caller reads whole.

        An xid8 is the database's own, the same from any connection and across restarts,
        and the log's entries commit with the changes they name, so the entries from it on
        are every change after it. A cursor ahead of this database's present is another
        database's (restored from a backup, say): refused. One pruned past is found by the
        next ``since`` (its marker), as for a cursor of our own."""
        head, _, database = position.removeprefix(POSITION).partition("@")
        cursor_text, _, started = head.partition(":")
        if not position.startswith(POSITION) or not cursor_text.isdigit():
            return False
        if database != self.source.name:
            log.info(
                "%s: a position in %s, not %s", "/".join(self.tables), database, self.source.name
            )
            return False
        cursor = int(cursor_text)
        if not await self.present():
            return False
        if started != self._started:
            log.info("%s: a position from before %s restarted", "/".join(self.tables), database)
            return False
        if cursor > await self._xmin():
            log.warning(
                "%s: a cursor ahead of %s (%d): another database's; reading it whole",
                "/".join(self.tables),
                self.source.name,
                cursor,
            )
            return False
        self._follow_from(cursor)
        return True

    async def since(self) -> dict[str, list[str]] | None:
        """The keys logged per table since the cursor (deduplicated, in log order) and move
        the cursor; None when the caller must read whole."""
        cursor = self.cursor
        if cursor is None or self._generation != self.source.generation:
            self.cursor = None
            return None
        if not await self.present() or self._generation != self.source.generation:
            self.cursor = None
            return None
        await self._prune()
        records = await self.source.query(
            FOLLOW_SQL,
            {
                "cursor": str(cursor),
                "snapshot": self.source.in_snapshot,
                "tables": [*self.tables, MARKER],
                "limit": MAX_CHANGES_READ + 1,
            },
        )
        if self._generation != self.source.generation:
            self.cursor = None
            return None
        return self._take(cursor, records)

    def _take(self, cursor: int, records: list[dict[str, object]]) -> dict[str, list[str]] | None:
        keys: dict[str, dict[str, None]] = {}
        for record in records:
            table, key = record["tbl"], record["key"]
            if table is None:
                continue  # the LEFT JOIN's one row of an empty answer
            if table == MARKER:
                if int(str(key)) > cursor:
                    log.info(
                        "%s: change log pruned past rtm's cursor: full read", "/".join(self.tables)
                    )
                    self.cursor = None
                    return None
                continue
            keys.setdefault(str(table), {})[str(key)] = None
        if len(records) > MAX_CHANGES_READ:
            self.cursor = None
            return None
        self.cursor = max(cursor, int(str(records[0]["xmin"])))
        return {table: list(found) for table, found in keys.items()}

    async def _prune(self) -> None:
        """Every ``PRUNE_EVERY`` seconds, drop all but the newest ``kept`` entries."""
        now = time.monotonic()
        if self._prune_denied or now - self._pruned < PRUNE_EVERY or self.source.in_snapshot:
            return
        self._pruned = now
        try:
            await self.source.write(PRUNE_SQL, {"kept": self.kept})
        except psycopg.errors.InsufficientPrivilege as exc:
            self._prune_denied = True
            log.warning(
                "rtm_changes in %s not pruned (%s): grant rtm DELETE and INSERT on it",
                self.source.name,
                exc,
            )

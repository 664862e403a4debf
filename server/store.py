"""The embedded store: one SQLite file, its schema and versioned migrations (or, when
``RTM_DB`` is a PostgreSQL URL, the same tables there: server/postgres.py).

``location`` is Kamailio's own usrloc table (same name, columns and ``version`` row as
Kamailio 5.x's db_sqlite schema), so a Kamailio writing this file (usrloc db_mode 2 or 3)
feeds rtm with nothing in between. Its ``expires`` and ``last_modified`` are REAL Julian
days in UTC, as Kamailio's db_sqlite writes them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from .config import ensure_parent, is_postgres

# The change log (migration 3): the tables whose writes it records, and the column that
# names a changed row in each. A reader re-reads the rows its keys name (``location`` by
# its id; the directory, trunks and their status by the name a row is found by).
LOGGED_TABLES = {
    "location": "id",
    "accounts": "username",
    "trunks": "name",
    "trunk_status": "trunk",
    "messages": "id",
}
# Entries kept: a reader whose cursor is older than the oldest falls back to a full read.
# 100,000 entries are ~4 MB and ten minutes of a 160/s churn.
CHANGES_KEPT = 100_000


def _change_log() -> str:
    """Migration 3's text: the log, its pruning, and three triggers per logged table.

    Triggers live in the file, so any writer feeds the log: a Kamailio on db_sqlite (usrloc
    db_mode 2 or 3), ``rtm demo``, the CLI, an operator's sqlite3 shell. An update that
    changes a row's key logs the old key and the new one.
    """
    script = f"""
    CREATE TABLE IF NOT EXISTS rtm_changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tbl TEXT NOT NULL,
        key NOT NULL,
        op TEXT NOT NULL CHECK (op IN ('I', 'U', 'D'))
    );
    -- Pruned in batches, every 1000th entry: one range delete on the primary key.
    CREATE TRIGGER IF NOT EXISTS rtm_changes_prune AFTER INSERT ON rtm_changes
    WHEN NEW.seq % 1000 = 0
    BEGIN
        DELETE FROM rtm_changes WHERE seq <= NEW.seq - {CHANGES_KEPT};
    END;
    """
    for table, key in LOGGED_TABLES.items():
        script += f"""
    CREATE TRIGGER IF NOT EXISTS rtm_{table}_insert AFTER INSERT ON {table}
    BEGIN
        INSERT INTO rtm_changes (tbl, key, op) VALUES ('{table}', NEW.{key}, 'I');
    END;
    CREATE TRIGGER IF NOT EXISTS rtm_{table}_update AFTER UPDATE ON {table}
    BEGIN
        INSERT INTO rtm_changes (tbl, key, op) VALUES ('{table}', OLD.{key}, 'U');
        INSERT INTO rtm_changes (tbl, key, op)
            SELECT '{table}', NEW.{key}, 'U' WHERE NEW.{key} IS NOT OLD.{key};
    END;
    CREATE TRIGGER IF NOT EXISTS rtm_{table}_delete AFTER DELETE ON {table}
    BEGIN
        INSERT INTO rtm_changes (tbl, key, op) VALUES ('{table}', OLD.{key}, 'D');
    END;
    """
    return script


# Each migration runs once, in order, inside one transaction; PRAGMA user_version records
# how many have run. Append only: never edit a migration that has shipped.
MIGRATIONS: Sequence[str] = (
    # 1: Kamailio's tables and rtm's directory, trunks and queue.
    """
    CREATE TABLE IF NOT EXISTS version (
        id INTEGER PRIMARY KEY NOT NULL,
        table_name VARCHAR(32) NOT NULL,
        table_version INTEGER DEFAULT 0 NOT NULL,
        CONSTRAINT version_table_name_idx UNIQUE (table_name)
    );
    CREATE TABLE IF NOT EXISTS location (
        id INTEGER PRIMARY KEY NOT NULL,
        ruid VARCHAR(64) DEFAULT '' NOT NULL,
        username VARCHAR(64) DEFAULT '' NOT NULL,
        domain VARCHAR(64) DEFAULT NULL,
        contact VARCHAR(512) DEFAULT '' NOT NULL,
        received VARCHAR(128) DEFAULT NULL,
        path VARCHAR(512) DEFAULT NULL,
        expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
        q REAL DEFAULT 1.0 NOT NULL,
        callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
        cseq INTEGER DEFAULT 1 NOT NULL,
        last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
        flags INTEGER DEFAULT 0 NOT NULL,
        cflags INTEGER DEFAULT 0 NOT NULL,
        user_agent VARCHAR(255) DEFAULT '' NOT NULL,
        socket VARCHAR(64) DEFAULT NULL,
        methods INTEGER DEFAULT NULL,
        instance VARCHAR(255) DEFAULT NULL,
        reg_id INTEGER DEFAULT 0 NOT NULL,
        server_id INTEGER DEFAULT 0 NOT NULL,
        connection_id INTEGER DEFAULT 0 NOT NULL,
        keepalive INTEGER DEFAULT 0 NOT NULL,
        partition INTEGER DEFAULT 0 NOT NULL,
        CONSTRAINT location_ruid_idx UNIQUE (ruid)
    );
    CREATE INDEX IF NOT EXISTS location_account_contact_idx
        ON location (username, domain, contact);
    CREATE INDEX IF NOT EXISTS location_expires_idx ON location (expires);
    CREATE INDEX IF NOT EXISTS location_tcpcon_idx ON location (connection_id);
    CREATE INDEX IF NOT EXISTS location_connection_idx ON location (server_id, connection_id);
    INSERT OR IGNORE INTO version (table_name, table_version) VALUES ('location', '9');

    CREATE TABLE IF NOT EXISTS accounts (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL,
        domain TEXT NOT NULL DEFAULT '',
        owner TEXT NOT NULL DEFAULT '',
        caller_id TEXT NOT NULL DEFAULT '',
        caller_id_2 TEXT NOT NULL DEFAULT '',
        "group" TEXT NOT NULL DEFAULT '',
        email TEXT NOT NULL DEFAULT '',
        enabled INTEGER NOT NULL DEFAULT 1,
        created INTEGER NOT NULL DEFAULT 0,
        notes TEXT NOT NULL DEFAULT '',
        UNIQUE (username, domain)
    );

    CREATE TABLE IF NOT EXISTS trunks (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        host TEXT NOT NULL,
        port INTEGER NOT NULL DEFAULT 5060,
        transport TEXT NOT NULL DEFAULT 'UDP' CHECK (transport IN ('UDP', 'TCP', 'TLS')),
        encryption INTEGER NOT NULL DEFAULT 0,
        virtual_number TEXT NOT NULL DEFAULT '',
        username TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE IF NOT EXISTS trunk_status (
        trunk TEXT PRIMARY KEY,
        status TEXT NOT NULL CHECK (status IN ('OK', 'FAILED', 'PENDING', 'DISABLED')),
        reason TEXT,
        since INTEGER NOT NULL,
        latency_ms REAL
    );

    CREATE TABLE IF NOT EXISTS messages (
        id TEXT PRIMARY KEY,
        uuid TEXT NOT NULL,
        api_version INTEGER NOT NULL DEFAULT 1,
        from_account TEXT NOT NULL DEFAULT '',
        to_account TEXT NOT NULL DEFAULT '',
        from_number TEXT NOT NULL DEFAULT '',
        to_number TEXT NOT NULL DEFAULT '',
        from_seq INTEGER NOT NULL DEFAULT 0,
        to_seq INTEGER NOT NULL DEFAULT 0,
        managed INTEGER NOT NULL DEFAULT 0,
        received INTEGER NOT NULL,
        sent INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'ENQUEUED',
        payload BLOB
    );
    CREATE INDEX IF NOT EXISTS messages_status_idx ON messages (status, received);
    """,
    # 2: access control (server/auth/): people, wall displays, their sessions, failed
    # logins and the persistent cookie-signing key. Tokens are stored only as SHA-256 hashes.
    """
    CREATE TABLE IF NOT EXISTS users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('admin', 'operator')),
        password_hash TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE IF NOT EXISTS displays (
        name TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        created REAL NOT NULL,
        last_seen REAL
    );
    CREATE TABLE IF NOT EXISTS sessions (
        id_hash TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('user', 'display')),
        name TEXT NOT NULL,
        created REAL NOT NULL,
        seen REAL NOT NULL
    );
    CREATE INDEX IF NOT EXISTS sessions_owner_idx ON sessions (kind, name);
    CREATE TABLE IF NOT EXISTS login_attempts (
        key TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        first_failure REAL NOT NULL,
        locked_until REAL NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 3: the change log that lets collectors read what changed instead of whole tables.
    _change_log(),
)


def connect(path: str) -> sqlite3.Connection:
    """Open the store for a short synchronous job (CLI, setup), creating it if needed."""
    ensure_parent(path)
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def migrate(path: str) -> int:
    """Create or upgrade the store's schema; return its version. Safe to run concurrently.

    ``path`` may be a PostgreSQL URL (``RTM_DB``): server/postgres.py keeps the same tables.
    """
    if is_postgres(path):
        from . import postgres  # psycopg loads only for a PostgreSQL store

        return postgres.migrate(path)
    conn = connect(path)
    try:
        # WAL lets collectors read while Kamailio or the demo writes.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            conn.execute("ROLLBACK")
            raise RuntimeError(
                f"{path}: schema version {version} is newer than this rtm ({len(MIGRATIONS)})"
            )
        for number in range(version, len(MIGRATIONS)):
            for statement in _statements(MIGRATIONS[number]):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        conn.execute("COMMIT")
        return len(MIGRATIONS)
    finally:
        conn.close()


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT our transaction; split on complete statements instead.
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer)
            buffer = ""
    return statements

"""rtm's own state in PostgreSQL (``RTM_DB=postgresql://…``), parallel to the SQLite store.

The same tables as store.py's migrations, typed for PostgreSQL, migrated on start from the
``rtm_migrations`` version table; Kamailio's standard ``location`` table, created as
Kamailio 5.6's ``utils/kamctl/postgres/usrloc-create.sql`` creates it unless ``kamdbctl``
made it already; and the change log that collectors (server/collectors/postgres/) follow.

The change log's contract, read by those collectors: ``rtm_changes (seq, txid, tbl, key,
op)``. ``seq`` values are not commit-ordered (a transaction may take a seq and commit after
a later one), so a reader trusts only entries with ``txid < pg_snapshot_xmin(
pg_current_snapshot())`` and keeps a ``(txid, seq)`` cursor: nothing committed late is
skipped. No NOTIFY per row (it takes a global lock at commit that serialises every
committing transaction): readers poll the ``(txid, seq)`` index. Readers prune the log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import psycopg
from psycopg import sql

from .store import LOGGED_TABLES

# What the driver raises (connection refused, permission denied, a failed statement).
DRIVER_ERRORS = (psycopg.Error,)
# Kamailio's tables that get triggers when they exist (msilo's queue, auth_db's accounts).
KAMAILIO_LOGGED_TABLES = {"silo": "id", "subscriber": "username"}

CHANGE_LOG = """
CREATE TABLE IF NOT EXISTS rtm_changes (
    seq BIGSERIAL PRIMARY KEY,
    txid XID8 NOT NULL DEFAULT pg_current_xact_id(),
    tbl TEXT NOT NULL,
    key TEXT NOT NULL,
    op CHAR(1) NOT NULL CHECK (op IN ('I', 'U', 'D'))
);
CREATE INDEX IF NOT EXISTS rtm_changes_txid_seq_idx ON rtm_changes (txid, seq);
"""
# One function for every logged table; the key column is the trigger's argument. A NULL
# key (a column an operator named that allows it) is not logged rather than failing the
# writer's statement: the reconcile still finds that row. SECURITY DEFINER, so the role
# Kamailio writes as needs no rights on rtm_changes; the pinned search_path makes that safe.
CHANGE_FUNCTION_BODY = """
DECLARE
    old_key TEXT;
    new_key TEXT;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        old_key := to_jsonb(OLD) ->> TG_ARGV[0];
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_key := to_jsonb(NEW) ->> TG_ARGV[0];
    END IF;
    IF old_key IS NOT NULL THEN
        INSERT INTO rtm_changes (tbl, key, op) VALUES (TG_TABLE_NAME, old_key, left(TG_OP, 1));
    END IF;
    IF new_key IS NOT NULL AND new_key IS DISTINCT FROM old_key THEN
        INSERT INTO rtm_changes (tbl, key, op) VALUES (TG_TABLE_NAME, new_key, left(TG_OP, 1));
    END IF;
    RETURN NULL;
END
"""
CHANGE_FUNCTION = (
    "CREATE OR REPLACE FUNCTION rtm_log_change() RETURNS trigger LANGUAGE plpgsql"
    " SECURITY DEFINER SET search_path = {schema}, pg_temp AS $rtm${body}$rtm$"
)
TRIGGER = (
    "CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE ON {table}"
    " FOR EACH ROW EXECUTE FUNCTION rtm_log_change({key})"
)


def _install_log(conn: psycopg.Connection) -> None:
    """rtm_changes and the trigger function, each unless already there as this rtm would
    make it: a role that owns neither (rtm serving a database install-triggers prepared as
    another role) may start all the same."""
    if not _existing(conn, "rtm_changes"):
        conn.execute(CHANGE_LOG)
    installed = conn.execute(
        "SELECT prosrc FROM pg_proc WHERE proname = 'rtm_log_change'"
        " AND pronamespace = current_schema()::regnamespace"
    ).fetchone()
    if installed is None or installed[0] != CHANGE_FUNCTION_BODY:
        schema_row = conn.execute("SELECT quote_ident(current_schema())").fetchone()
        assert schema_row is not None
        conn.execute(CHANGE_FUNCTION.format(schema=schema_row[0], body=CHANGE_FUNCTION_BODY))


def _trigger_name(table: str) -> str:
    return f"rtm_{table}_change"


def _existing(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def _has_trigger(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND tgname = %s",
        (table, _trigger_name(table)),
    ).fetchone()
    return row is not None


def install_change_log(
    conn: psycopg.Connection, tables: Mapping[str, str] | None = None
) -> list[str]:
    """Install rtm_changes, its function and a trigger on each of ``tables`` (table -> key
    column; default rtm's logged tables plus Kamailio's silo and subscriber) that exists.

    Idempotent: a table that has its trigger is not touched again (CREATE TRIGGER takes a
    lock a writing Kamailio would wait for, however briefly). Kamailio's tables get nothing
    but the trigger. Returns the tables covered, in order. Runs in one transaction.
    """
    wanted = dict(tables) if tables is not None else {**LOGGED_TABLES, **KAMAILIO_LOGGED_TABLES}
    covered: list[str] = []
    with conn.transaction():
        _install_log(conn)
        for table, key in wanted.items():
            if not _existing(conn, table):
                continue
            if not _has_trigger(conn, table):
                statement = sql.SQL(TRIGGER).format(
                    trigger=sql.Identifier(_trigger_name(table)),
                    table=sql.Identifier(table),
                    key=sql.Literal(key),
                )
                conn.execute(statement)
            covered.append(table)
    return covered


# Kamailio 5.6's utils/kamctl/postgres/standard-create.sql and usrloc-create.sql, verbatim
# but for ON CONFLICT on the version rows: created only where kamdbctl has not made them.
KAMAILIO_VERSION = """
CREATE TABLE version (
    id SERIAL PRIMARY KEY NOT NULL,
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name)
);

INSERT INTO version (table_name, table_version) values ('version','1')
    ON CONFLICT (table_name) DO NOTHING;
"""
KAMAILIO_LOCATION = """
CREATE TABLE location (
    id SERIAL PRIMARY KEY NOT NULL,
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

CREATE INDEX location_account_contact_idx ON location (username, domain, contact);
CREATE INDEX location_expires_idx ON location (expires);
CREATE INDEX location_tcpcon_idx ON location (connection_id);
CREATE INDEX location_connection_idx ON location (server_id, connection_id);

INSERT INTO version (table_name, table_version) values ('location','9')
    ON CONFLICT (table_name) DO NOTHING;
"""


def _kamailio_tables(conn: psycopg.Connection) -> None:
    """Kamailio's version and location tables, each only when absent (kamdbctl's stay)."""
    if not _existing(conn, "version"):
        conn.execute(KAMAILIO_VERSION)
    if not _existing(conn, "location"):
        conn.execute(KAMAILIO_LOCATION)


# rtm's tables of store.py's migrations 1 and 2, typed for PostgreSQL: epoch seconds that
# SQLite keeps as REAL are DOUBLE PRECISION here (REAL would be 4 bytes, wrong by minutes).
OWN_TABLES = """
CREATE TABLE IF NOT EXISTS accounts (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    username TEXT NOT NULL,
    domain TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL DEFAULT '',
    caller_id TEXT NOT NULL DEFAULT '',
    caller_id_2 TEXT NOT NULL DEFAULT '',
    "group" TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    enabled INTEGER NOT NULL DEFAULT 1,
    created BIGINT NOT NULL DEFAULT 0,
    notes TEXT NOT NULL DEFAULT '',
    UNIQUE (username, domain)
);
CREATE TABLE IF NOT EXISTS trunks (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
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
    since BIGINT NOT NULL,
    latency_ms DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    uuid TEXT NOT NULL,
    api_version INTEGER NOT NULL DEFAULT 1,
    from_account TEXT NOT NULL DEFAULT '',
    to_account TEXT NOT NULL DEFAULT '',
    from_number TEXT NOT NULL DEFAULT '',
    to_number TEXT NOT NULL DEFAULT '',
    from_seq BIGINT NOT NULL DEFAULT 0,
    to_seq BIGINT NOT NULL DEFAULT 0,
    managed INTEGER NOT NULL DEFAULT 0,
    received BIGINT NOT NULL,
    sent BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'ENQUEUED',
    payload BYTEA
);
CREATE INDEX IF NOT EXISTS messages_status_idx ON messages (status, received);
"""
ACCESS_TABLES = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator')),
    password_hash TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS displays (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'display')),
    name TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    seen DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_owner_idx ON sessions (kind, name);
CREATE TABLE IF NOT EXISTS login_attempts (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    first_failure DOUBLE PRECISION NOT NULL,
    locked_until DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
# Each runs once, in order, in the one transaction of migrate(); rtm_migrations records
# which have run. Append only: never edit a migration that has shipped.
Migration = Callable[[psycopg.Connection], object]
MIGRATIONS: Sequence[Migration] = (
    _kamailio_tables,
    lambda conn: conn.execute(OWN_TABLES),
    lambda conn: conn.execute(ACCESS_TABLES),
)
# Held for the migration's transaction, so rtm processes starting together migrate once.
MIGRATION_LOCK = 0x72746D01  # "rtm" 1


def migrate(url: str) -> int:
    """Create or upgrade rtm's tables and change log; return the schema version.

    The change log's triggers are (re)checked on every start, so a table Kamailio creates
    later (msilo's silo) is followed from rtm's next start.
    """
    with connect(url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS rtm_migrations (version INTEGER PRIMARY KEY,"
            " applied TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM rtm_migrations").fetchone()
        version = int(row[0]) if row else 0
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"RTM_DB: schema version {version} is newer than this rtm ({len(MIGRATIONS)})"
            )
        for number in range(version, len(MIGRATIONS)):
            MIGRATIONS[number](conn)
            conn.execute("INSERT INTO rtm_migrations (version) VALUES (%s)", (number + 1,))
        install_change_log(conn)
    return len(MIGRATIONS)


def connect(url: str) -> psycopg.Connection:
    """A synchronous autocommit connection (the CLI, migrations, the auth layer)."""
    return psycopg.connect(url, autocommit=True, connect_timeout=10)


def install_triggers(url: str, tables: Mapping[str, str] | None = None) -> list[str]:
    """``rtm db install-triggers``: the change log on a database rtm only reads (a Kamailio
    cluster's); nothing but rtm_changes, its function and the triggers is created."""
    with connect(url) as conn:
        return install_change_log(conn, tables)

"""rtm's store in a real PostgreSQL 15: migrations, Kamailio's location, the change log."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from server import database, store
from server import postgres as pg_store
from server.demo import run as demo

from .conftest import StartRtm
from .live_server import UNIT
from .services import PostgresServer
from .waiting import eventually, until

REPO = Path(__file__).resolve().parent.parent
# Kamailio 5.6's own files (kamailio/kamailio, tag 5.6.6, identical at master 38711a3):
# utils/kamctl/postgres/standard-create.sql, the location table of usrloc-create.sql, and
# msilo-create.sql and auth_db-create.sql's tables, verbatim, as kamdbctl runs them.
KAMAILIO_SCHEMA = """
CREATE TABLE version (
    id SERIAL PRIMARY KEY NOT NULL,
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name)
);

INSERT INTO version (table_name, table_version) values ('version','1');

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

INSERT INTO version (table_name, table_version) values ('location','9');

CREATE TABLE silo (
    id SERIAL PRIMARY KEY NOT NULL,
    src_addr VARCHAR(255) DEFAULT '' NOT NULL,
    dst_addr VARCHAR(255) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT '' NOT NULL,
    inc_time INTEGER DEFAULT 0 NOT NULL,
    exp_time INTEGER DEFAULT 0 NOT NULL,
    snd_time INTEGER DEFAULT 0 NOT NULL,
    ctype VARCHAR(32) DEFAULT 'text/plain' NOT NULL,
    body BYTEA,
    extra_hdrs TEXT,
    callid VARCHAR(128) DEFAULT '' NOT NULL,
    status INTEGER DEFAULT 0 NOT NULL
);

CREATE INDEX silo_account_idx ON silo (username, domain);

INSERT INTO version (table_name, table_version) values ('silo','8');

CREATE TABLE subscriber (
    id SERIAL PRIMARY KEY NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT '' NOT NULL,
    password VARCHAR(64) DEFAULT '' NOT NULL,
    ha1 VARCHAR(128) DEFAULT '' NOT NULL,
    ha1b VARCHAR(128) DEFAULT '' NOT NULL,
    CONSTRAINT subscriber_account_idx UNIQUE (username, domain)
);

CREATE INDEX subscriber_username_idx ON subscriber (username);

INSERT INTO version (table_name, table_version) values ('subscriber','7');
"""
# location as that file makes it: name, type, default, NOT NULL (PostgreSQL's catalog words).
LOCATION_COLUMNS = [
    ("id", "integer", "nextval('location_id_seq'::regclass)", True),
    ("ruid", "character varying(64)", "''::character varying", True),
    ("username", "character varying(64)", "''::character varying", True),
    ("domain", "character varying(64)", "NULL::character varying", False),
    ("contact", "character varying(512)", "''::character varying", True),
    ("received", "character varying(128)", "NULL::character varying", False),
    ("path", "character varying(512)", "NULL::character varying", False),
    ("expires", "timestamp without time zone",
     "'2030-05-28 21:32:15'::timestamp without time zone", True),
    ("q", "real", "1.0", True),
    ("callid", "character varying(255)", "'Default-Call-ID'::character varying", True),
    ("cseq", "integer", "1", True),
    ("last_modified", "timestamp without time zone",
     "'2000-01-01 00:00:01'::timestamp without time zone", True),
    ("flags", "integer", "0", True),
    ("cflags", "integer", "0", True),
    ("user_agent", "character varying(255)", "''::character varying", True),
    ("socket", "character varying(64)", "NULL::character varying", False),
    ("methods", "integer", None, False),
    ("instance", "character varying(255)", "NULL::character varying", False),
    ("reg_id", "integer", "0", True),
    ("server_id", "integer", "0", True),
    ("connection_id", "integer", "0", True),
    ("keepalive", "integer", "0", True),
    ("partition", "integer", "0", True),
]  # fmt: skip
LOCATION_INDEXES = [
    "CREATE INDEX location_account_contact_idx ON public.location"
    " USING btree (username, domain, contact)",
    "CREATE INDEX location_connection_idx ON public.location"
    " USING btree (server_id, connection_id)",
    "CREATE INDEX location_expires_idx ON public.location USING btree (expires)",
    "CREATE UNIQUE INDEX location_pkey ON public.location USING btree (id)",
    "CREATE UNIQUE INDEX location_ruid_idx ON public.location USING btree (ruid)",
    "CREATE INDEX location_tcpcon_idx ON public.location USING btree (connection_id)",
]


@pytest.fixture(autouse=True)
def _no_pooled_connections() -> Iterator[None]:
    yield
    database.close_pools()  # before the test's PostgreSQL goes


def sql(url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, params or None)
        return cursor.fetchall() if cursor.description else []


def columns(url: str, table: str) -> list[tuple[object, ...]]:
    return sql(
        url,
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod),
                  pg_get_expr(d.adbin, d.adrelid), a.attnotnull
           FROM pg_attribute a LEFT JOIN pg_attrdef d
                ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
           ORDER BY a.attnum""",
        table,
    )


def indexes(url: str, table: str) -> list[object]:
    query = "SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname"
    rows = sql(url, query, table)
    return [row[0] for row in rows]


def catalog(url: str) -> list[tuple[object, ...]]:
    """Every table, column, index, trigger and function of the database, for comparing."""
    return sql(
        url,
        """SELECT 'column', table_name || '.' || column_name || ' ' || data_type
             FROM information_schema.columns WHERE table_schema = 'public'
           UNION ALL SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public'
           UNION ALL SELECT 'trigger', tgrelid::regclass || ' ' || tgname
             FROM pg_trigger WHERE NOT tgisinternal
           UNION ALL SELECT 'function', proname || ' ' || md5(prosrc)
             FROM pg_proc WHERE pronamespace = 'public'::regnamespace
           ORDER BY 1, 2""",
    )


def test_migrating_twice_is_a_no_op(postgres: PostgresServer) -> None:
    url = postgres.database("rtm")
    assert store.migrate(url) == len(postgres_migrations())
    before = catalog(url)
    assert store.migrate(url) == len(postgres_migrations())
    assert catalog(url) == before
    versions = sql(url, "SELECT version FROM rtm_migrations ORDER BY version")
    assert [v for (v,) in versions] == list(range(1, len(postgres_migrations()) + 1))
    tables = {t for (t,) in sql(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"users", "sessions", "displays", "login_attempts", "settings", "accounts"} <= tables
    assert {"trunks", "trunk_status", "messages", "location", "version", "rtm_changes"} <= tables


def postgres_migrations() -> tuple[object, ...]:
    return tuple(pg_store.MIGRATIONS)


def test_two_rtms_starting_at_once_migrate_once(postgres: PostgresServer) -> None:
    url = postgres.database("rtm")
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", f"from server import store; store.migrate({url!r})"], cwd=REPO
        )
        for _ in range(3)
    ]
    assert [p.wait(60 * UNIT) for p in processes] == [0, 0, 0]
    assert sql(url, "SELECT count(*) FROM rtm_migrations") == [(len(pg_store.MIGRATIONS),)]


def test_a_schema_from_a_newer_rtm_is_refused(postgres: PostgresServer) -> None:
    url = postgres.database("rtm")
    store.migrate(url)
    sql(url, "INSERT INTO rtm_migrations (version) VALUES (%s)", len(pg_store.MIGRATIONS) + 1)
    with pytest.raises(RuntimeError, match="newer than this rtm"):
        store.migrate(url)


def test_location_is_kamailios_own_column_for_column(postgres: PostgresServer) -> None:
    url = postgres.database("rtm")
    store.migrate(url)
    assert columns(url, "location") == LOCATION_COLUMNS
    assert indexes(url, "location") == LOCATION_INDEXES
    assert sql(url, "SELECT table_name, table_version FROM version ORDER BY id") == [
        ("version", 1),
        ("location", 9),
    ]
    # ... and exactly what Kamailio's own file makes.
    kamailio = postgres.database("kamailio")
    sql(kamailio, KAMAILIO_SCHEMA)
    for table in ("location", "version"):
        assert columns(url, table) == columns(kamailio, table)
        assert indexes(url, table) == indexes(kamailio, table)


def test_a_location_kamdbctl_made_is_used_as_it_is(postgres: PostgresServer) -> None:
    url = postgres.database("kamailio")
    sql(url, KAMAILIO_SCHEMA)
    # An operator's own index and a contact already registered stay as they are.
    sql(url, "CREATE INDEX location_ops_idx ON location (user_agent)")
    sql(url, "INSERT INTO location (ruid, username, contact) VALUES ('r1', 'alice', 'sip:a@x')")
    kamailio_columns = {t: columns(url, t) for t in ("location", "version", "silo", "subscriber")}
    kamailio_indexes = {t: indexes(url, t) for t in kamailio_columns}
    versions = sql(url, "SELECT * FROM version ORDER BY id")
    store.migrate(url)
    assert {t: columns(url, t) for t in kamailio_columns} == kamailio_columns
    assert {t: indexes(url, t) for t in kamailio_columns} == kamailio_indexes
    assert sql(url, "SELECT * FROM version ORDER BY id") == versions
    assert sql(url, "SELECT ruid, username FROM location") == [("r1", "alice")]
    triggers = sql(url, "SELECT tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal")
    assert {t for (t,) in triggers} == set(store.LOGGED_TABLES) | {"silo", "subscriber"}


def test_the_change_log_has_the_contracts_columns_and_index(postgres: PostgresServer) -> None:
    url = postgres.database("rtm")
    store.migrate(url)
    assert columns(url, "rtm_changes") == [
        ("seq", "bigint", "nextval('rtm_changes_seq_seq'::regclass)", True),
        ("txid", "xid8", "pg_current_xact_id()", True),
        ("tbl", "text", None, True),
        ("key", "text", None, True),
        ("op", "character(1)", None, True),
    ]
    assert "USING btree (txid, seq)" in " ".join(map(str, indexes(url, "rtm_changes")))
    # No NOTIFY per row: it would serialise every committing transaction on its lock.
    (source,) = sql(url, "SELECT prosrc FROM pg_proc WHERE proname = 'rtm_log_change'")[0]
    assert "notify" not in str(source).lower()


def changes(url: str) -> list[tuple[object, ...]]:
    return sql(url, "SELECT tbl, key, op FROM rtm_changes ORDER BY txid, seq")


@pytest.mark.parametrize(
    ("table", "insert", "update", "rekey", "delete"),
    [
        (
            "location",
            "INSERT INTO location (id, ruid, username, contact) VALUES (7, 'r', 'a', 'sip:a@x')",
            "UPDATE location SET cseq = 2 WHERE id = 7",
            "UPDATE location SET id = 8 WHERE id = 7",
            "DELETE FROM location WHERE id = 8",
        ),
        (
            "accounts",
            "INSERT INTO accounts (username, owner) VALUES ('7', 'Ann')",
            "UPDATE accounts SET owner = 'Anne' WHERE username = '7'",
            "UPDATE accounts SET username = '8' WHERE username = '7'",
            "DELETE FROM accounts WHERE username = '8'",
        ),
        (
            "trunks",
            "INSERT INTO trunks (name, host) VALUES ('7', 'h')",
            "UPDATE trunks SET port = 5070 WHERE name = '7'",
            "UPDATE trunks SET name = '8' WHERE name = '7'",
            "DELETE FROM trunks WHERE name = '8'",
        ),
        (
            "trunk_status",
            "INSERT INTO trunk_status (trunk, status, since) VALUES ('7', 'OK', 1)",
            "UPDATE trunk_status SET status = 'FAILED' WHERE trunk = '7'",
            "UPDATE trunk_status SET trunk = '8' WHERE trunk = '7'",
            "DELETE FROM trunk_status WHERE trunk = '8'",
        ),
        (
            "messages",
            "INSERT INTO messages (id, uuid, received) VALUES ('7', 'u', 1)",
            "UPDATE messages SET status = 'SENT' WHERE id = '7'",
            "UPDATE messages SET id = '8' WHERE id = '7'",
            "DELETE FROM messages WHERE id = '8'",
        ),
    ],
)
def test_every_write_is_logged_by_key(
    postgres: PostgresServer, table: str, insert: str, update: str, rekey: str, delete: str
) -> None:
    url = postgres.database("rtm")
    store.migrate(url)
    for statement in (insert, update, rekey, delete):
        sql(url, statement)
    assert changes(url) == [
        (table, "7", "I"),
        (table, "7", "U"),
        (table, "7", "U"),  # a key change logs the old key and the new one
        (table, "8", "U"),
        (table, "8", "D"),
    ]


def test_an_entry_committed_late_is_behind_the_readers_horizon(postgres: PostgresServer) -> None:
    # seq is taken at insert, not at commit: a reader that trusted seq alone would pass
    # seq 1 while its transaction was open, and never see it.
    url = postgres.database("rtm")
    store.migrate(url)
    trusted = (
        "SELECT key FROM rtm_changes"
        " WHERE txid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY txid, seq"
    )
    with psycopg.connect(url) as slow:  # one open transaction
        slow.execute("INSERT INTO accounts (username) VALUES ('slow')")
        sql(url, "INSERT INTO accounts (username) VALUES ('fast')")
        seqs = sql(url, "SELECT key, seq FROM rtm_changes ORDER BY seq")
        assert [k for k, _ in seqs] == ["fast"]  # slow's entry is not visible yet...
        assert sql(url, trusted) == []  # ... so fast's, committed, is not trusted yet either
        slow.commit()
    assert [k for (k,) in sql(url, trusted)] == ["slow", "fast"]
    slow_seq, fast_seq = (
        int(str(s)) for (s,) in sql(url, "SELECT seq FROM rtm_changes ORDER BY txid")
    )
    assert slow_seq < fast_seq  # (txid, seq) order is commit-safe: the cursor passes neither


def test_install_triggers_adds_only_the_log_to_a_database_rtm_reads(
    postgres: PostgresServer,
) -> None:
    url = postgres.database("kamailio")
    sql(url, KAMAILIO_SCHEMA)
    before = [row for row in catalog(url) if row[0] in ("column", "index")]
    for _ in range(2):  # idempotent
        done = rtm("db", "install-triggers", url)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "change log on: location, silo, subscriber"
    after = catalog(url)
    added = [row for row in after if row[0] in ("column", "index") and row not in before]
    assert all("rtm_changes" in str(row[1]) for row in added)
    assert [row for row in before if row not in after] == []
    assert sql(url, "SELECT to_regclass('users'), to_regclass('accounts')") == [(None, None)]
    # Kamailio writes as a role of its own with rights on its tables only, and notices nothing.
    sql(url, "CREATE ROLE kamailio LOGIN; GRANT ALL ON location, location_id_seq TO kamailio")
    kamailio_url = url.replace("postgres@", "kamailio@")
    sql(kamailio_url, "INSERT INTO location (ruid, username, contact) VALUES ('r', 'a', 'c')")
    sql(kamailio_url, "DELETE FROM location")
    assert [(t, o) for t, _, o in changes(url)] == [("location", "I"), ("location", "D")]


def test_rtm_migrates_a_database_prepared_by_another_role(postgres: PostgresServer) -> None:
    # install-triggers ran as the owner of Kamailio's tables; rtm then serves that database
    # as a role of its own, which owns neither the log nor its function: it starts all the same.
    url = postgres.database("kamailio")
    sql(url, KAMAILIO_SCHEMA)
    assert rtm("db", "install-triggers", url).returncode == 0
    sql(url, "CREATE ROLE rtm LOGIN; GRANT CREATE ON SCHEMA public TO rtm")
    rtm_url = url.replace("postgres@", "rtm@")
    assert store.migrate(rtm_url) == store.migrate(rtm_url) == len(pg_store.MIGRATIONS)
    sql(rtm_url, "INSERT INTO accounts (username) VALUES ('alice')")
    assert changes(url) == [("accounts", "alice", "I")]


def test_install_triggers_refuses_what_is_not_postgresql(tmp_path: Path) -> None:
    done = rtm("db", "install-triggers", str(tmp_path / "x.db"))
    assert done.returncode == 1 and "is not a postgresql:// URL" in done.stderr
    done = rtm("db", "install-triggers", "postgresql://nobody@127.0.0.1:1/x")
    assert done.returncode == 1 and "Traceback" not in done.stderr


def rtm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        capture_output=True,
        text=True,
        timeout=60 * UNIT,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def test_the_demo_writes_postgresql_as_kamailio_would(postgres: PostgresServer) -> None:
    url = postgres.database("rtm")
    store.migrate(url)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(demo.run_demo(url, seed=5, accounts=40, stop=stop, tick=0.05))
        try:
            await eventually(lambda: len(changes(url)) > 60, 20 * UNIT, "demo writes")
        finally:
            stop.set()
            await asyncio.wait_for(task, 10 * UNIT)

    started = datetime.now()
    asyncio.run(scenario())
    assert sql(url, "SELECT count(*) FROM accounts") == [(40,)]
    # Local-time TIMESTAMPs, as Kamailio's db_postgres writes them (db_time2str: localtime).
    ((modified,),) = sql(url, "SELECT max(last_modified) FROM location")
    assert isinstance(modified, datetime) and abs(modified - started) < timedelta(minutes=1)
    logged = {tbl for tbl, _, _ in changes(url)}
    assert {"accounts", "location", "trunks", "trunk_status"} <= logged


def test_rtm_demo_runs_against_postgresql(postgres: PostgresServer) -> None:
    url = postgres.database("rtm")
    command = [sys.executable, "-m", "server.cli", "demo", "--db", url, "--accounts", "20"]
    proc = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        until(lambda: proc.poll() is not None or _count(url, "location") > 0, 30 * UNIT, "demo")
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20 * UNIT)
    assert proc.returncode == 0, stderr
    assert _count(url, "accounts") == 20


def _count(url: str, table: str) -> int:
    try:
        return int(str(sql(url, f"SELECT count(*) FROM {table}")[0][0]))
    except psycopg.errors.UndefinedTable:
        return 0


def test_a_serving_rtm_reads_details_and_readiness_from_postgresql(
    postgres: PostgresServer, start_rtm: StartRtm
) -> None:
    url = postgres.database("rtm")
    store.migrate(url)
    sql(url, "INSERT INTO accounts (username, owner, enabled) VALUES ('alice', 'Alice', 1)")
    server = start_rtm(env={"RTM_DB": url})
    details = server.get("/api/accounts/alice")
    assert details.status_code == 200
    assert details.json()["directory"]["owner"] == "Alice"
    assert details.json()["directory"]["enabled"] is True
    nobody = server.get("/api/accounts/nobody")
    assert nobody.status_code == 200
    assert nobody.json() == {"username": "nobody", "directory": None, "contacts": []}
    ready = server.get("/readyz")
    assert ready.status_code == 200, ready.text

"""PostgreSQL databases as Kamailio and rtm make them, on the real server of tests/services.py.

``kamailio_db(name)`` creates a database with rtm's migration (rtm's tables, Kamailio's
``location``, the change log) plus Kamailio's own ``silo`` and ``subscriber`` (from the
Debian package's PostgreSQL schema), every table with its trigger, and returns its URL.
``pg_write(url, sql, params)`` runs one statement as another client would (autocommit).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from server import postgres as rtm_postgres

from ...services import PostgresServer

SCHEMA_DIR = Path("/usr/share/kamailio/postgres")
KAMAILIO_SCHEMAS = ("msilo", "auth_db", "uac")

MakeDatabase = Callable[..., str]


def load_kamailio_schema(url: str, names: Sequence[str] = KAMAILIO_SCHEMAS) -> None:
    """Kamailio's own CREATE scripts (kamdbctl's), for the tables rtm does not create."""
    with psycopg.connect(url, autocommit=True) as conn:
        for name in names:
            conn.execute((SCHEMA_DIR / f"{name}-create.sql").read_text())  # type: ignore[call-overload]


@pytest.fixture
def kamailio_db(postgres: PostgresServer) -> MakeDatabase:
    if not SCHEMA_DIR.is_dir():
        pytest.skip(f"no {SCHEMA_DIR} (Debian package kamailio; make test installs it)")

    def make(name: str | None = None, *, kamailio: bool = True) -> str:
        url = postgres.database(name or f"k{uuid.uuid4().hex[:10]}")
        rtm_postgres.migrate(url)
        if kamailio:
            load_kamailio_schema(url)
            with psycopg.connect(url, autocommit=True) as conn:
                rtm_postgres.install_change_log(conn)
        return url

    return make


def pg_write(url: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """One statement in its own transaction, by another connection; its rows if any."""
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql, params)  # type: ignore[call-overload]
        return cursor.fetchall() if cursor.description else []


def timestamp(seconds: float) -> datetime:
    """A ``location.expires`` as Kamailio writes it: a naive timestamp (the server is UTC)."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


CONTACT_SQL = """
INSERT INTO location (ruid, username, domain, contact, received, expires, callid, user_agent,
                      socket, server_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id
"""


def contact_values(
    username: str,
    expires_at: float,
    *,
    node: int = 1,
    ruid: str | None = None,
    domain: str | None = None,
) -> tuple[Any, ...]:
    return (
        ruid or f"uloc-{uuid.uuid4().hex[:12]}",
        username,
        domain,
        f"sip:{username}@192.0.2.10:5060;transport=udp",
        None,
        timestamp(expires_at),
        f"call-{uuid.uuid4().hex[:8]}",
        "sipp",
        "udp:127.0.0.1:5060",
        node,
    )


# Kamailio nodes on the database (tests/collectors/kamailio/conftest.py's fixtures).
from ..kamailio.conftest import kamailio_factory, require_lab, sipp  # noqa: E402, F401


def kamailio_url(url: str) -> str:
    """The same database as Kamailio's db_postgres names it (``postgres://``)."""
    return "postgres://" + url.split("://", 1)[1]


def node_defines(url: str, server_id: int, **extra: object) -> dict[str, object]:
    """lab/kamailio.cfg's defines for one cluster node writing ``location`` in ``url``."""
    return {
        "WITH_PGSQL": 1,
        "DBURL": kamailio_url(url),
        "SERVER_ID": server_id,
        "ULDBMODE": 3,
        "ULTIMER": 1,
        **extra,
    }

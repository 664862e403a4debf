"""Write rows into a store the way Kamailio and the PrivateServer do (tests' seeding helpers)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from server import store
from server.times import unix_to_julian


def write(db: str, sql: str, params: tuple[Any, ...] | list[tuple[Any, ...]] = ()) -> None:
    """Run one statement on the store file; a list of parameter tuples is one transaction."""
    conn = store.connect(db)
    try:
        if isinstance(params, list):
            conn.execute("BEGIN")
            conn.executemany(sql, params)
            conn.execute("COMMIT")
        else:
            conn.execute(sql, params)
    finally:
        conn.close()


def contact_params(
    username: str,
    expires_in: float = 3600,
    *,
    ip: str = "192.0.2.10",
    port: int = 5060,
    transport: str = "udp",
    user_agent: str = "PrivateGSM/4.0",
    domain: str | None = None,
    received: str | None = None,
    ruid: str | None = None,
) -> tuple[Any, ...]:
    now = time.time()
    return (
        ruid or f"uloc-{uuid.uuid4().hex[:12]}",
        username,
        domain,
        f"sip:{username}@{ip}:{port};transport={transport}",
        received,
        unix_to_julian(now + expires_in),
        f"call-{uuid.uuid4().hex[:8]}",
        unix_to_julian(now),
        user_agent,
        f"{transport}:127.0.0.1:5060",
    )


CONTACT_SQL = """
INSERT INTO location (ruid, username, domain, contact, received, expires, callid,
                      last_modified, user_agent, socket)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def add_contact(db: str, username: str, expires_in: float = 3600, **kwargs: Any) -> str:
    """Insert one usrloc contact as Kamailio's db_mode 2 writes it; return its ruid."""
    params = contact_params(username, expires_in, **kwargs)
    write(db, CONTACT_SQL, params)
    return str(params[0])


def add_contacts(db: str, params: list[tuple[Any, ...]]) -> None:
    write(db, CONTACT_SQL, params)


def delete_contact(db: str, ruid: str) -> None:
    write(db, "DELETE FROM location WHERE ruid = ?", (ruid,))


def add_account(db: str, username: str, **fields: Any) -> None:
    columns = ["username", *fields]
    quoted = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    write(db, f"INSERT INTO accounts ({quoted}) VALUES ({marks})", (username, *fields.values()))


def add_message(db: str, message_id: str, payload: bytes = b"", **fields: Any) -> None:
    row = {
        "id": message_id,
        "uuid": str(uuid.uuid4()).upper(),
        "received": int(time.time() * 1000),
        "status": "ENQUEUED",
        "payload": payload,
        **fields,
    }
    quoted = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    write(db, f"INSERT INTO messages ({quoted}) VALUES ({marks})", tuple(row.values()))


def set_message_status(db: str, message_id: str, status: str) -> None:
    write(db, "UPDATE messages SET status = ? WHERE id = ?", (status, message_id))


def add_trunk(db: str, name: str, host: str = "carrier.example", **fields: Any) -> None:
    row = {"name": name, "host": host, **fields}
    quoted = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    write(db, f"INSERT INTO trunks ({quoted}) VALUES ({marks})", tuple(row.values()))


def set_trunk_status(
    db: str, name: str, status: str, reason: str | None = None, latency_ms: float | None = None
) -> None:
    write(
        db,
        "INSERT OR REPLACE INTO trunk_status (trunk, status, reason, since, latency_ms)"
        " VALUES (?, ?, ?, ?, ?)",
        (name, status, reason, int(time.time()), latency_ms),
    )

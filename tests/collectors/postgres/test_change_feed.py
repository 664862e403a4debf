"""The PostgreSQL change log followed by the runner: the state a client builds from the
diffs equals a full read whenever no writer holds a transaction open, including writers
whose transactions commit out of ``seq`` (and txid) order; the reconcile then finds nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.collectors.postgres.registrations import PostgresRegistrations
from server.collectors.runner import CollectorRunner
from server.diff import Changes, apply
from server.hub import Hub
from server.rows import Rows
from server.times import parse_iso

from ...services import PostgresServer
from .conftest import CONTACT_SQL, MakeDatabase, contact_values, timestamp

USERS = ("alice", "bob", "carol")
DOMAINS = (None, "", "example.org")

write_op = st.one_of(
    st.tuples(
        st.just("register"),
        st.sampled_from(USERS),
        st.sampled_from(DOMAINS),
        st.sampled_from((3600, -100)),
        st.integers(1, 2),
    ),
    st.tuples(st.just("refresh"), st.integers(0, 20), st.sampled_from((7200, -50))),
    st.tuples(st.just("user_agent"), st.integers(0, 20), st.text(max_size=8)),
    st.tuples(st.just("new_ruid"), st.integers(0, 20)),
    st.tuples(st.just("unregister"), st.integers(0, 20)),
    st.tuples(
        st.just("owner"), st.sampled_from(USERS), st.sampled_from(DOMAINS[1:]), st.text(max_size=6)
    ),
    st.tuples(st.just("drop_account"), st.sampled_from(USERS)),
    st.tuples(st.just("rename_account"), st.sampled_from(USERS), st.sampled_from(USERS)),
)
# Two transactions at once: the first writes (or only takes its txid, when ``early``)
# before the second, which commits first; the runner may ask between the two commits.
concurrent_op = st.tuples(st.just("concurrent"), write_op, write_op, st.booleans(), st.booleans())
operation = st.one_of(write_op, concurrent_op, st.just(("step",)))


def perform(conn: psycopg.Connection, op: tuple[Any, ...]) -> None:
    """One write on ``conn`` (in its transaction, if one is open), as Kamailio makes them."""
    ids = [r[0] for r in conn.execute("SELECT id FROM location ORDER BY id")]

    def pick(n: int) -> int | None:
        return ids[n % len(ids)] if ids else None

    kind = op[0]
    if kind == "register":
        conn.execute(
            CONTACT_SQL, contact_values(op[1], time.time() + op[3], node=op[4], domain=op[2])
        )
    elif kind == "refresh" and (row := pick(op[1])) is not None:
        when = timestamp(time.time() + op[2])
        conn.execute("UPDATE location SET expires = %s, cseq = cseq + 1 WHERE id = %s", (when, row))
    elif kind == "user_agent" and (row := pick(op[1])) is not None:
        text = op[2].replace("\x00", "")
        conn.execute("UPDATE location SET user_agent = %s WHERE id = %s", (text, row))
    elif kind == "new_ruid" and (row := pick(op[1])) is not None:
        conn.execute("UPDATE location SET ruid = %s WHERE id = %s", (uuid.uuid4().hex, row))
    elif kind == "unregister" and (row := pick(op[1])) is not None:
        conn.execute("DELETE FROM location WHERE id = %s", (row,))
    elif kind == "owner":
        conn.execute(
            "INSERT INTO accounts (username, domain, owner) VALUES (%s, %s, %s)"
            " ON CONFLICT (username, domain) DO UPDATE SET owner = excluded.owner",
            (op[1], op[2], op[3].replace("\x00", "")),
        )
    elif kind == "drop_account":
        conn.execute("DELETE FROM accounts WHERE username = %s", (op[1],))
    elif kind == "rename_account":
        conn.execute(
            "UPDATE accounts a SET username = %s WHERE username = %s AND NOT EXISTS"
            " (SELECT 1 FROM accounts b WHERE b.username = %s AND b.domain = a.domain)",
            (op[2], op[1], op[2]),
        )


def visible(rows: Rows) -> Rows:
    """A full read as a client must see it: contacts whose expiry passed are gone."""
    now = time.time()
    return {
        key: row
        for key, row in rows.items()
        if not isinstance(row.get("expires"), str) or parse_iso(row["expires"]) > now
    }


def client_state(frames: list[str]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for text in frames:
        frame = json.loads(text)
        if frame.get("table") != "accounts":
            continue
        if frame["type"] == "snapshot":
            rows = {r["id"]: r for r in frame["rows"]}
        elif frame["type"] == "diff":
            rows = apply(rows, Changes(frame["upsert"], frame["delete"]))
    return rows


class Follower:
    """A runner and a client on one database, checked against a fresh full read."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.hub = Hub(["accounts"])
        self.client, self.frames = self.hub.connect(None)
        self.collector = PostgresRegistrations(url)
        self.runner = CollectorRunner(self.collector, self.hub, expires_field="expires")

    async def step(self, check: bool = True) -> None:
        await self.runner.follow_once(self.collector)
        if not check:
            return
        reader = PostgresRegistrations(self.url)
        try:
            expected = visible(await reader.fetch())
        finally:
            await reader.close()
        assert self.hub.tables["accounts"].rows == expected
        self.frames += self.client.take()
        assert client_state(self.frames) == {k: {**r} for k, r in expected.items()}


async def concurrently(follower: Follower, op: tuple[Any, ...]) -> None:
    _, first, second, early, step_between = op
    with (
        psycopg.connect(follower.url) as late,  # not autocommit: each holds a transaction
        psycopg.connect(follower.url) as soon,
    ):
        if early:
            late.execute("SELECT pg_current_xact_id()")  # the lower txid, the later seq
        else:
            perform(late, first)  # the lower txid and seq
        # The second must not wait for a row lock the first holds (one thread runs both).
        soon.execute("SET lock_timeout = '50ms'")
        try:
            perform(soon, second)
            soon.commit()
        except psycopg.errors.LockNotAvailable:
            soon.rollback()
        if step_between:
            await follower.step(check=False)  # soon's entries wait for late's txid
        if early:
            perform(late, first)
        late.commit()
    await follower.step()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=st.lists(operation, min_size=1, max_size=30))
def test_the_change_stream_equals_a_full_read(
    postgres: PostgresServer, kamailio_db: MakeDatabase, ops: list[tuple[Any, ...]]
) -> None:
    asyncio.run(_follow(kamailio_db(), ops))


async def _follow(url: str, ops: list[tuple[Any, ...]]) -> None:
    with psycopg.connect(url, autocommit=True) as writer:
        perform(writer, ("owner", "alice", "", "Alice"))
        perform(writer, ("register", "alice", None, 3600, 1))
        follower = Follower(url)
        try:
            await follower.runner.poll_once()
            for op in [*ops, ("step",)]:
                if op[0] == "step":
                    await follower.step()
                elif op[0] == "concurrent":
                    await concurrently(follower, op)
                else:
                    perform(writer, op)
            assert await follower.runner.reconcile_once()
            assert follower.hub.stats.reconcile_mismatches == {}
        finally:
            await follower.collector.close()

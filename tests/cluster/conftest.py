"""A real cluster: Redis, two (or more) ``rtm serve`` processes on one store, HAProxy."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from server.config import is_postgres

from ..conftest import StartRtm
from ..live_server import UNIT, RtmServer
from ..services import HAProxy, PostgresServer, RedisServer
from ..waiting import until


@dataclass
class Cluster:
    """Instances of one cluster: they share ``db`` (the store the sources read) and Redis."""

    db: str
    redis: RedisServer
    start: Callable[[], RtmServer]
    instances: list[RtmServer] = field(default_factory=list)

    def add(self) -> RtmServer:
        server = self.start()
        self.instances.append(server)
        return server

    def status(self, server: RtmServer) -> dict[str, Any]:
        answer: dict[str, Any] = server.get("/api/cluster").json()
        return answer

    def live(self) -> list[RtmServer]:
        return [s for s in self.instances if s.proc is not None and s.proc.poll() is None]

    def leaders(self) -> list[RtmServer]:
        return [s for s in self.live() if self.status(s)["role"] == "leader"]

    def leader(self, within: float = 10 * UNIT) -> RtmServer:
        """The one leader, once there is exactly one (and every live instance follows it):
        the one seen then. Asking again could find none: after Redis came back empty, an
        instance may lead under the old epoch for a moment and step down to lead anew."""

        def one() -> RtmServer | None:
            found = self.leaders()
            return found[0] if len(found) == 1 else None

        return until(one, within, "one leader")

    def store_ruids(self) -> set[str]:
        """The contacts the store holds that have not expired: what every client must hold."""
        if is_postgres(self.db):
            with psycopg.connect(self.db, autocommit=True) as pg:
                found = pg.execute("SELECT ruid FROM location WHERE expires > now()").fetchall()
            return {str(ruid) for (ruid,) in found}
        with sqlite3.connect(self.db) as conn:
            rows = conn.execute(
                "SELECT ruid FROM location WHERE expires > julianday('now')"
            ).fetchall()
        return {str(ruid) for (ruid,) in rows}


StartCluster = Callable[..., Cluster]


@pytest.fixture
def start_cluster(start_rtm: StartRtm, redis_server: RedisServer, tmp_path: Path) -> StartCluster:
    """``start_cluster(RTM_X=...)``: two rtm instances on one SQLite store and one Redis,
    with those settings too; more with ``cluster.add()``."""

    def start(**settings: str) -> Cluster:
        db = str(tmp_path / "shared.db")
        env = {"RTM_DB": db, "RTM_REDIS": redis_server.url, "RTM_CHANGES_INTERVAL": "0.05"}
        env.update(settings)
        made = Cluster(db, redis_server, lambda: start_rtm(env=env, name="node"))
        made.add()
        made.add()
        return made

    return start


@pytest.fixture
def cluster(start_cluster: StartCluster) -> Cluster:
    """Two rtm instances on one SQLite store and one Redis; more with ``cluster.add()``."""
    return start_cluster()


@pytest.fixture
def pg_cluster(start_rtm: StartRtm, redis_server: RedisServer, postgres: PostgresServer) -> Cluster:
    """Two rtm instances whose ``RTM_DB`` is one PostgreSQL database (their store, their
    sessions and the sources' ``location``), on one Redis."""
    db = postgres.database("rtm")
    env = {"RTM_DB": db, "RTM_REDIS": redis_server.url, "RTM_CHANGES_INTERVAL": "0.05"}
    made = Cluster(db, redis_server, lambda: start_rtm(env=env, name="node"))
    made.add()
    made.add()
    return made


@pytest.fixture
def balancer(cluster: Cluster, tmp_path: Path) -> HAProxy:
    workdir = tmp_path / "haproxy"
    workdir.mkdir()
    proxy = HAProxy(workdir, [f"127.0.0.1:{s.port}" for s in cluster.instances]).start()
    yield proxy  # type: ignore[misc]
    proxy.stop()

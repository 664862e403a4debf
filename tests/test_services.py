"""The tests' real servers start, answer and restart (tests/services.py), on ports of their own."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from . import live_server
from .live_server import free_port
from .services import HAProxy, PostgresServer, RedisServer


def test_postgres_keeps_its_data_over_a_restart(postgres: PostgresServer) -> None:
    postgres.database("probe")
    postgres.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (7)", "probe")
    postgres.restart()
    assert postgres.psql("SELECT x FROM t", "probe").strip() == "7"


def test_redis_answers(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.set("probe", "1")
    assert client.get("probe") == b"1"
    client.close()


def test_haproxy_listens(tmp_path: Path) -> None:
    proxy = HAProxy(tmp_path, ["127.0.0.1:1"]).start()
    proxy.stop()


def test_free_ports_are_never_drawn_twice_and_never_ephemeral(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    low, high = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    drawn = [free_port(udp=n % 2 == 0) for n in range(500)]
    assert len(set(drawn)) == len(drawn)
    assert not any(low <= port <= high for port in drawn)
    # Two xdist workers draw from slices that do not meet.
    slices = []
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
        slices.append(set(live_server._worker_ports()))
    assert slices[0] and slices[1] and not slices[0] & slices[1]

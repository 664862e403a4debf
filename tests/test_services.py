"""The cluster tests' real servers start, answer and restart (tests/services.py)."""

from __future__ import annotations

from pathlib import Path

import redis

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

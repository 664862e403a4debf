"""The lease's keep-alive against a real Redis: a leader whose event loop is busy past the
TTL (a first full read of a big table) keeps the lease; one whose loop is hung loses it."""

from __future__ import annotations

import redis

from server.cluster.keys import Keys
from server.cluster.lease import KeepAlive

from ..live_server import UNIT
from ..services import RedisServer
from ..waiting import until

TTL = 1.0


def take(client: redis.Redis, keys: Keys) -> str:
    value = "1:test-holder"
    assert client.set(keys.lease, value, nx=True, px=int(TTL * 1000))
    return value


def test_a_busy_loop_keeps_the_lease_a_hung_one_loses_it(redis_server: RedisServer) -> None:
    client, keys = redis.Redis.from_url(redis_server.url), Keys()
    keep = KeepAlive(redis_server.url, keys, take(client, keys), ttl=TTL, stall_limit=4 * TTL)
    keep.start()
    try:
        # No beat while the thread renews the lease for over three TTLs (a busy loop):
        # still held, by renewals alone.
        until(lambda: keep.renewals >= 10, 10 * UNIT, "renewed through three TTLs")
        assert client.get(keys.lease) == b"1:test-holder" and not keep.lost.is_set()
        # No beat past the stall limit: renewals stop and the key lapses by itself.
        until(lambda: client.get(keys.lease) is None, 10 * UNIT, "the lease lapsed")
        assert keep.lost.is_set()
    finally:
        keep.stop()
        client.close()


def test_a_lease_taken_by_another_is_lost(redis_server: RedisServer) -> None:
    client, keys = redis.Redis.from_url(redis_server.url), Keys()
    keep = KeepAlive(redis_server.url, keys, take(client, keys), ttl=TTL)
    keep.start()
    try:
        client.set(keys.lease, "2:someone-else")
        until(keep.lost.is_set, 5 * UNIT, "lost noticed")
        assert client.get(keys.lease) == b"2:someone-else"
    finally:
        keep.stop()
        client.close()

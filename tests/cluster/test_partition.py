"""A network partition: one instance cut off from Redis while the other keeps it. Its link
goes through a TCP relay (HAProxy) that is frozen: connections stay open and nothing comes
back, as behind a cut cable, not the refused connection of a Redis that is down.

The one cut off serves its last state marked stale and publishes nothing the cluster takes
(a leader cut off loses its lease; another leads within the TTL and a timeout, and
whatever it still sends, once the link heals, is fenced by the lease's token); the other
goes on live. Healed, it follows again by itself, and every client, on either side, ends
with the store's state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ..conftest import StartRtm
from ..live_server import UNIT
from ..services import HAProxy, RedisServer
from ..store_rows import add_contact
from ..waiting import eventually
from .clients import Follower, start_all, stop_all
from .conftest import Cluster
from .outages import UNAVAILABLE, alive, all_live, all_stale
from .test_failover import settled, writing

pytestmark = pytest.mark.asyncio

Partitioned = Callable[[bool], tuple[Cluster, HAProxy]]


@pytest.fixture
def partitioned(
    start_rtm: StartRtm, redis_server: RedisServer, tmp_path: Path
) -> Iterator[Partitioned]:
    """``partitioned(cut_leads)``: two instances on one store and Redis, the first (the
    one that can be cut off) reaching Redis through a relay; ``cut_leads`` says whether it
    is the leader (it starts first) or the follower (it starts once the other leads)."""
    (tmp_path / "relay").mkdir()
    relay = HAProxy(tmp_path / "relay", [f"127.0.0.1:{redis_server.port}"], tcp=True).start()
    db = str(tmp_path / "shared.db")
    settings = {"RTM_DB": db, "RTM_CHANGES_INTERVAL": "0.05"}

    def start(cut_leads: bool) -> tuple[Cluster, HAProxy]:
        cluster = Cluster(
            db, redis_server, lambda: start_rtm(env={**settings, "RTM_REDIS": redis_server.url})
        )
        relayed = {**settings, "RTM_REDIS": f"redis://127.0.0.1:{relay.port}/0"}
        if cut_leads:
            cluster.instances.append(start_rtm(env=relayed, name="cut"))
            cluster.leader()
            cluster.add()
        else:
            cluster.add()
            cluster.leader()
            cluster.instances.insert(0, start_rtm(env=relayed, name="cut"))
        return cluster, relay

    yield start
    relay.stop()


@pytest.mark.parametrize("cut_leads", [True, False], ids=["the leader cut off", "a follower"])
async def test_an_instance_cut_off_from_redis_goes_stale_and_comes_back_equal(
    partitioned: Partitioned, cut_leads: bool
) -> None:
    cluster, relay = partitioned(cut_leads)
    cut, other = cluster.instances
    assert cluster.leader() is (cut if cut_leads else other)
    for i in range(10):
        add_contact(cluster.db, f"before{i}")
    followers = [Follower(server.ws) for server in (cut, other) for _ in range(5)]
    cut_off, kept = followers[:5], followers[5:]
    await start_all(followers)
    try:
        async with writing(cluster, per_second=20):
            await eventually(lambda: len(kept[0].accounts()) > 15, 10 * UNIT, "writes")
            relay.partition()
            await eventually(
                lambda: cluster.status(other)["role"] == "leader", 15 * UNIT, "the other leads"
            )
            await eventually(
                lambda: all_stale(cut_off, lambda error: error.startswith(UNAVAILABLE)),
                20 * UNIT,
                "the cut-off instance's clients stale, with why",
            )
            status = cluster.status(cut)
            assert (status["role"], status["available"]) == ("follower", False)
            seq = cluster.status(other)["seq"]["accounts"]
            await eventually(
                lambda: cluster.status(other)["seq"]["accounts"] > seq + 10,
                10 * UNIT,
                "writes shown on the other side meanwhile",
            )
            assert all_live(kept)
            relay.heal()
            await eventually(lambda: cluster.status(cut)["available"], 20 * UNIT, "healed")
        await settled(cluster, followers)
        await eventually(lambda: all_live(followers), 10 * UNIT, "every client live again")
        assert [s for s in cluster.instances if cluster.status(s)["role"] == "leader"] == [other]
        assert all(f.reconnects == 0 for f in followers), "no socket closed through it"
        alive(cluster)
    finally:
        await stop_all(followers)

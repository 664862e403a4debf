"""Two real ``rtm serve`` instances on one Redis: one leader, one state, the cluster's epoch."""

from __future__ import annotations

import pytest

from ..live_server import UNIT
from ..mirror import Mirror
from ..store_rows import add_contact, delete_contact
from .conftest import Cluster

pytestmark = pytest.mark.asyncio


async def test_one_leader_and_one_state_on_every_instance(cluster: Cluster) -> None:
    leader = cluster.leader()
    follower = next(s for s in cluster.instances if s is not leader)
    assert cluster.status(follower)["role"] == "follower"
    async with leader.ws() as on_leader, follower.ws() as on_follower:
        mirrors = [await Mirror(on_leader).start(), await Mirror(on_follower).start()]
        assert mirrors[0].epoch == mirrors[1].epoch  # the cluster's, not the process's
        ruids = {add_contact(cluster.db, f"user{i}") for i in range(5)}
        delete_contact(cluster.db, ruids.pop())
        for mirror in mirrors:
            await mirror.until(lambda m: set(m.tables.get("accounts", {})) == ruids, 10 * UNIT)
        assert mirrors[0].tables == mirrors[1].tables
        assert mirrors[0].seq["accounts"] == mirrors[1].seq["accounts"]
    seqs = [cluster.status(s)["seq"] for s in cluster.instances]
    assert seqs[0] == seqs[1]
    assert cluster.status(follower)["redis_hop_ms"]["count"] > 0

"""Two real Kamailio nodes feeding one table of a two-instance cluster: the node killed makes
ITS rows stale on both instances (the leader's and the follower's clients alike, the node
and since when travelling through Redis), the other node stays live, and it recovers by
itself when the node is back."""

from __future__ import annotations

from typing import Any

import pytest

from ..collectors.kamailio.conftest import (  # noqa: F401 - fixtures used by name
    Kamailio,
    Sipp,
    StartKamailio,
    kamailio_factory,
    require_lab,
    sipp,
)
from ..live_server import UNIT
from ..mirror import Mirror, node_health, users_by_node
from .conftest import StartCluster

pytestmark = [pytest.mark.asyncio, pytest.mark.kamailio]


async def until_all(mirrors: list[Mirror], condition: Any, within: float) -> None:
    for mirror in mirrors:
        await mirror.until(condition, within)


async def test_a_killed_node_is_stale_alone_on_every_instance_and_recovers(
    start_cluster: StartCluster,
    kamailio_factory: StartKamailio,  # noqa: F811 - the fixture imported above
    sipp: Sipp,  # noqa: F811
) -> None:
    east: Kamailio = kamailio_factory()
    west: Kamailio = kamailio_factory()
    nodes = f"{east.source_url}?node=east {west.source_url}?node=west"
    cluster = start_cluster(RTM_REGISTRATIONS=nodes, RTM_POLL="0.3")
    leader = cluster.leader()
    follower = next(s for s in cluster.instances if s is not leader)
    async with leader.ws() as on_leader, follower.ws() as on_follower:
        mirrors = [await Mirror(on_leader).start(), await Mirror(on_follower).start()]
        sipp.run("register.xml", east, rows=[("alice", 300), ("bob", 300)])
        sipp.run("register.xml", west, rows=[("alice", 300), ("carol", 300)])
        both = {("east", "alice"), ("east", "bob"), ("west", "alice"), ("west", "carol")}
        await until_all(mirrors, lambda m: users_by_node(m) == both, 10 * UNIT)

        west.kill()
        await until_all(mirrors, lambda m: not m.sources["accounts"]["ok"], 10 * UNIT)
        for mirror in mirrors:
            health = node_health(mirror)
            assert health["east"]["ok"] is True and health["west"]["ok"] is False
            assert mirror.sources["accounts"]["error"].startswith("node west: ")
            assert mirror.sources["accounts"]["since"] == health["west"]["since"]
            assert users_by_node(mirror) == both  # west's last good rows stay, stale
        assert mirrors[0].sources["accounts"] == mirrors[1].sources["accounts"]
        sipp.run("register.xml", east, rows=[("dave", 300)])  # east stays live meanwhile
        await until_all(mirrors, lambda m: ("east", "dave") in users_by_node(m), 10 * UNIT)
        assert all(node_health(m)["west"]["ok"] is False for m in mirrors)

        west.start()  # a restarted Kamailio (db_mode 0) holds nothing until phones register
        sipp.run("register.xml", west, rows=[("erin", 300)])
        await until_all(
            mirrors,
            lambda m: (
                m.sources["accounts"]["ok"]
                and {u for n, u in users_by_node(m) if n == "west"} == {"erin"}
            ),
            15 * UNIT,
        )
        after = {("east", "alice"), ("east", "bob"), ("east", "dave"), ("west", "erin")}
        assert [users_by_node(m) for m in mirrors] == [after, after]
        assert mirrors[0].seq == mirrors[1].seq

"""Two real Kamailio 5.6 nodes (db_postgres, usrloc db_mode 3, server_id 1 and 2) on one
PostgreSQL database, sipp REGISTERing on both, a real rtm reading ``location`` from that
database, and a websockets client: one table with both nodes' rows, each with its node;
de-registrations and expiries on either node leave within 2 s."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from ...conftest import StartRtm
from ...live_server import UNIT
from ...mirror import Mirror
from ..kamailio.conftest import Sipp, StartKamailio, free_port
from .conftest import MakeDatabase, node_defines

pytestmark = [pytest.mark.asyncio, pytest.mark.kamailio]


def nodes_by_user(mirror: Mirror) -> dict[str, object]:
    return {str(r["username"]): r["node"] for r in mirror.tables.get("accounts", {}).values()}


def without(user: str) -> Callable[[Mirror], bool]:
    return lambda mirror: user not in nodes_by_user(mirror)


async def test_registrations_on_both_nodes_in_one_table(
    kamailio_db: MakeDatabase, kamailio_factory: StartKamailio, sipp: Sipp, start_rtm: StartRtm
) -> None:
    url = kamailio_db()
    one = kamailio_factory(defines=node_defines(url, 1))
    two = kamailio_factory(defines=node_defines(url, 2))
    server = start_rtm(env={"RTM_REGISTRATIONS": url, "RTM_CHANGES_INTERVAL": "0.05"})
    ports = {one: free_port(udp=True), two: free_port(udp=True)}
    async with server.ws() as ws:
        mirror = await Mirror(ws).start()
        sipp.run("register.xml", one, rows=[("ann", 300), ("amy", 300)], port=ports[one])
        sipp.run("register.xml", two, rows=[("bea", 300), ("bob", 300)], port=ports[two])
        sipp.run("register.xml", one, rows=[("brief1", 5)])
        sipp.run("register.xml", two, rows=[("brief2", 5)])
        registered = time.time()
        everyone = {"ann": 1, "amy": 1, "bea": 2, "bob": 2, "brief1": 1, "brief2": 2}
        await mirror.until(lambda m: nodes_by_user(m) == everyone, 5 * UNIT)

        for node, user in ((one, "ann"), (two, "bea")):
            sipp.run("register.xml", node, rows=[(user, 0)], port=ports[node])
            took = await mirror.until(without(user), 2 * UNIT)
            assert took < 2 * UNIT, f"{user}'s de-registration took {took:.2f} s"

        # The 5 s registrations leave at their expiry (rtm's own), whichever node has them.
        await mirror.until(lambda m: without("brief1")(m) and without("brief2")(m), 10 * UNIT)
        assert time.time() <= registered + 5 + 2 * UNIT
        assert nodes_by_user(mirror) == {"amy": 1, "bob": 2}

"""Several SIP nodes in one table: the setting's syntax, a runner per node feeding its part,
and two real Kamailio nodes behind one real rtm (one killed, then back)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from server.collectors.nodes import NodeURL, open_nodes, parse_sources
from server.collectors.runner import CollectorRunner
from server.config import Config, ConfigError
from server.hub import Hub
from server.rows import Rows
from server.times import iso

from ..conftest import StartRtm
from ..live_server import UNIT
from ..mirror import Mirror, node_health, users_by_node
from .kamailio.conftest import (  # noqa: F401 - fixtures used by name
    Kamailio,
    Sipp,
    StartKamailio,
    kamailio_factory,
    require_lab,
    sipp,
)

# --- the setting -------------------------------------------------------------------------


def test_one_url_without_a_node_is_the_single_source_as_before() -> None:
    url = "kamailio+http://127.0.0.1:8088/RPC"
    assert parse_sources("RTM_REGISTRATIONS", url) == [NodeURL(url, None)]


def test_several_urls_are_named_by_node_or_host_port_and_lose_rtms_parameters() -> None:
    value = (
        "  sqlite:////var/a.db?mode=ro&node=east\n"
        "kamailio+http://10.0.0.2:8088/RPC "
        "kamailio+http://10.0.0.3:8088/RPC?evapi=tcp://10.0.0.3:8448&node=west"
    )
    assert parse_sources("RTM_REGISTRATIONS", value) == [
        NodeURL("sqlite:////var/a.db?mode=ro", "east"),
        NodeURL("kamailio+http://10.0.0.2:8088/RPC", "10.0.0.2:8088"),
        NodeURL("kamailio+http://10.0.0.3:8088/RPC", "west", "tcp://10.0.0.3:8448"),
    ]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("  ", "no source URL"),
        ("kamailio+http://a:1/RPC kamailio+http://a:1/RPC", "node 'a:1' is named twice"),
        ("sqlite:///a.db?node=x sqlite:///b.db?node=x", "node 'x' is named twice"),
        ("sqlite:///a.db sqlite:///b.db?node=b", "has no host:port; name it with node=NAME"),
        ("kamailio+http://a:99999/RPC", "is not a URL"),
        ("/var/a.db", "is not a URL (no scheme://)"),
        ("kamailio+http://a:1/RPC?node=<b>", "node name '<b>'"),
    ],
)
def test_bad_settings_fail_naming_the_setting(value: str, says: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_sources("RTM_TRUNKS", value)
    assert str(error.value).startswith("RTM_TRUNKS: ")
    assert says in str(error.value)


def test_an_unknown_scheme_and_a_shared_evapi_fail_start_up(tmp_path: Any) -> None:
    config = Config(db=str(tmp_path / "rtm.db"), registrations="nosuch://a:1/ x://b:2/")
    with pytest.raises(ConfigError, match=r"^RTM_REGISTRATIONS: unknown source scheme"):
        open_nodes("accounts", config)
    two = "kamailio+http://a:1/RPC kamailio+http://b:1/RPC"
    config = Config(registrations=two, kamailio_evapi="tcp://a:8448")
    with pytest.raises(ConfigError, match=r"^RTM_KAMAILIO_EVAPI: .* evapi=tcp://HOST:PORT"):
        open_nodes("accounts", config)


# --- a runner per node ---------------------------------------------------------------------


class ListedSource:
    """Whatever the test puts in ``rows``, or raises ``failure``."""

    table = "accounts"

    def __init__(self, rows: dict[str, dict[str, Any]]) -> None:
        self.rows = rows
        self.failure: Exception | None = None

    async def fetch(self) -> Rows | None:
        if self.failure is not None:
            raise self.failure
        return dict(self.rows)

    async def close(self) -> None:
        pass


def contact(ruid: str, user: str, expires: float) -> dict[str, Any]:
    return {"id": ruid, "username": user, "expires": iso(expires), "node": 7}


@pytest.mark.asyncio
async def test_each_runner_stamps_its_node_prefixes_ids_and_goes_stale_alone() -> None:
    hub = Hub(["accounts"])
    later = time.time() + 3600
    a = ListedSource({"r1": contact("r1", "alice", later)})
    b = ListedSource({"r1": contact("r1", "alice", later), "r2": contact("r2", "bob", later)})
    runners = []
    for node, source in (("a", a), ("b", b)):
        hub.add_node("accounts", node)
        runner = CollectorRunner(source, hub, expires_field="expires", node=node, prefix=f"{node}:")
        runners.append(runner)
        await runner.poll_once()
    rows = hub.tables["accounts"].rows
    assert {key: (row["id"], row["node"]) for key, row in rows.items()} == {
        "a:r1": ("a:r1", "a"),
        "b:r1": ("b:r1", "b"),
        "b:r2": ("b:r2", "b"),
    }
    assert hub.polled("accounts") and hub.tables["accounts"].source.ok
    b.failure = OSError("connection refused")
    await runners[1].poll_once()
    source = hub.tables["accounts"].source
    assert (source.ok, source.error) == (False, "node b: connection refused")
    assert [(n.node, n.ok) for n in source.nodes] == [("a", True), ("b", False)]
    assert len(rows) == 3  # b's last good rows stay, stale
    # a goes on: a contact that expires leaves under its prefixed id
    a.rows = {"r1": contact("r1", "alice", time.time() - 1)}
    await runners[0].poll_once()
    assert set(rows) == {"b:r1", "b:r2"}
    b.failure = None
    await runners[1].poll_once()
    assert hub.tables["accounts"].source.ok


# --- two real Kamailio nodes behind one rtm ------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.kamailio
async def test_two_kamailio_nodes_one_table_one_killed_goes_stale_alone_and_recovers(
    kamailio_factory: StartKamailio,  # noqa: F811 - the fixture imported above
    sipp: Sipp,  # noqa: F811
    start_rtm: StartRtm,
) -> None:
    east: Kamailio = kamailio_factory()
    west: Kamailio = kamailio_factory()
    server = start_rtm(
        env={
            "RTM_REGISTRATIONS": f"{east.source_url}?node=east {west.source_url}?node=west",
            "RTM_POLL": "0.3",
        }
    )
    async with server.ws() as ws:
        mirror = await Mirror(ws).start()
        sipp.run("register.xml", east, rows=[("alice", 300), ("bob", 300)])
        sipp.run("register.xml", west, rows=[("alice", 300), ("carol", 300)])
        both = {("east", "alice"), ("east", "bob"), ("west", "alice"), ("west", "carol")}
        await mirror.until(lambda m: users_by_node(m) == both, 5 * UNIT)
        west_ids = {f"west:{c['Ruid']}" for c in west.contacts()}
        assert west_ids <= set(mirror.tables["accounts"])
        assert mirror.sources["accounts"]["ok"] is True

        west.kill()
        await mirror.until(lambda m: not m.sources["accounts"]["ok"], 5 * UNIT)
        frame = mirror.sources["accounts"]
        health = node_health(mirror)
        assert health["east"]["ok"] is True and health["west"]["ok"] is False
        assert frame["error"].startswith("node west: ")
        assert frame["since"] == health["west"]["since"]
        assert west_ids <= set(mirror.tables["accounts"])  # its last good rows stay, stale
        # east stays live meanwhile
        sipp.run("register.xml", east, rows=[("dave", 300)])
        await mirror.until(lambda m: ("east", "dave") in users_by_node(m), 5 * UNIT)
        assert node_health(mirror)["west"]["ok"] is False

        west.start()  # a restarted Kamailio (db_mode 0) holds nothing until phones register
        sipp.run("register.xml", west, rows=[("erin", 300)])
        await mirror.until(
            lambda m: (
                m.sources["accounts"]["ok"]
                and {u for n, u in users_by_node(m) if n == "west"} == {"erin"}
            ),
            10 * UNIT,
        )
    assert users_by_node(mirror) == {
        ("east", "alice"),
        ("east", "bob"),
        ("east", "dave"),
        ("west", "erin"),
    }


@pytest.mark.asyncio
async def test_each_kamailio_node_gets_its_own_evapi(tmp_path: Any) -> None:
    value = (
        "kamailio+http://127.0.0.1:1/RPC?node=east&evapi=tcp://127.0.0.1:2"
        " kamailio+http://127.0.0.1:3/RPC?node=west"
    )
    opened = open_nodes("accounts", Config(db=str(tmp_path / "rtm.db"), registrations=value))
    try:
        east, west = opened
        assert (east.node, east.prefix, west.node, west.prefix) == (
            "east",
            "east:",
            "west",
            "west:",
        )
        assert getattr(east.collector, "evapi_url", None) == "tcp://127.0.0.1:2"
        assert not hasattr(west.collector, "evapi_url")  # no hints: its dump is the poll
    finally:
        for node in opened:
            await node.collector.close()

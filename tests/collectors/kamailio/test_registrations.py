"""Registrations read from a real Kamailio (ul.dump over JSON-RPC), registered by real sipp."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from server import store
from server.collectors import open_source
from server.collectors.kamailio.hints import HintedKamailioRegistrationCollector
from server.collectors.kamailio.registrations import KamailioRegistrationCollector
from server.config import Config
from server.rows import Rows
from server.times import parse_iso

from ...store_rows import add_account
from .conftest import Kamailio, Sipp, free_port

pytestmark = [pytest.mark.asyncio, pytest.mark.kamailio]

# Markup, both quotes, an ampersand and a backslash, 2 KB long. sipp treats '[' as the start
# of a keyword and CSV splits on ';', so the scenario carries it literally (generated below).
HOSTILE_UA = ("<script>alert(\"x\")</script> 'quoted' & \\ <img src=x onerror=1> " * 40)[:2048]


def collector(kamailio: Kamailio, tmp_path: Path) -> KamailioRegistrationCollector:
    config = Config(db=str(tmp_path / "rtm.db"))
    source = open_source("accounts", kamailio.source_url, config)
    assert isinstance(source, KamailioRegistrationCollector)
    return source


async def fetch_once(kamailio: Kamailio, tmp_path: Path) -> Rows:
    """One fetch by a fresh collector, closed afterwards."""
    source = collector(kamailio, tmp_path)
    try:
        rows = await source.fetch()
    finally:
        await source.close()
    assert rows is not None  # a first fetch always has rows to say
    return rows


async def test_200_registrations_become_200_rows(
    kamailio: Kamailio, sipp: Sipp, tmp_path: Path
) -> None:
    db = str(tmp_path / "rtm.db")
    store.migrate(db)
    add_account(db, "user007", owner="Seven <b>", caller_id="+3906007", group="Sales")
    users = [(f"user{n:03d}", 60 + 17 * n) for n in range(200)]
    port = free_port(udp=True)
    sipp.run("register.xml", kamailio, rows=users, port=port)
    registered_at = time.time()
    rows = await fetch_once(kamailio, tmp_path)
    assert len(rows) == 200
    assert len({row["username"] for row in rows.values()}) == 200
    by_user = {row["username"]: row for row in rows.values()}
    for user, expires in users:
        row = by_user[user]
        assert (row["ip"], row["port"], row["transport"]) == ("127.0.0.1", port, "UDP")
        assert row["user_agent"] == f"sipp-lab/{user}"
        assert abs(parse_iso(row["expires"]) - (registered_at + expires)) <= 2
        assert row["node"] == 0
    assert by_user["user007"]["owner"] == "Seven <b>"
    assert by_user["user007"]["group"] == "Sales"
    assert by_user["user008"]["owner"] == ""


async def test_a_udp_and_a_tcp_contact_are_two_rows(
    kamailio: Kamailio, sipp: Sipp, tmp_path: Path
) -> None:
    sipp.run("register.xml", kamailio, rows=[("dual", 300)], transport="udp")
    sipp.run("register.xml", kamailio, rows=[("dual", 300)], transport="tcp")
    rows = await fetch_once(kamailio, tmp_path)
    assert sorted(r["transport"] for r in rows.values()) == ["TCP", "UDP"]
    assert {r["username"] for r in rows.values()} == {"dual"}


def hostile_scenario(tmp_path: Path, user_agent: str) -> Path:
    scenario = (Path(__file__).parents[3] / "lab/sipp/register.xml").read_text()
    scenario = scenario.replace("User-Agent: sipp-lab/[field0]", f"User-Agent: {user_agent}")
    path = tmp_path / f"register_ua{len(user_agent)}.xml"
    path.write_text(scenario)
    return path


async def test_a_hostile_user_agent_is_carried_literally(
    kamailio: Kamailio, sipp: Sipp, tmp_path: Path
) -> None:
    # Kamailio's registrar stores a User-Agent of 255 bytes or more as "n/a", so the longest
    # it keeps goes through literally and the 2 KB one arrives as whatever Kamailio says.
    short_ua = HOSTILE_UA[:254]
    sipp.run(hostile_scenario(tmp_path, short_ua), kamailio, rows=[("mallory", 300)])
    sipp.run(hostile_scenario(tmp_path, HOSTILE_UA), kamailio, rows=[("mallory2", 300)])
    stored = {c["AoR"]: c["User-Agent"] for c in kamailio.contacts()}
    rows = {row["username"]: row for row in (await fetch_once(kamailio, tmp_path)).values()}
    assert rows["mallory"]["user_agent"] == short_ua
    assert rows["mallory2"]["user_agent"] == stored["mallory2"]


async def test_expiry_is_steady_between_polls(
    kamailio: Kamailio, sipp: Sipp, tmp_path: Path
) -> None:
    sipp.run("register.xml", kamailio, rows=[(f"steady{n}", 600) for n in range(20)])
    config = Config(db=str(tmp_path / "rtm.db"), poll={"accounts": 0.05})
    source = open_source("accounts", kamailio.source_url, config)
    assert isinstance(source, KamailioRegistrationCollector)
    polls: list[Rows] = []
    try:
        while len(polls) < 20:  # each a new ul.dump, a few ms apart
            rows = await source.fetch()
            if rows is not None:
                polls.append(rows)
    finally:
        await source.close()
    assert source.dump.dumps >= 20
    assert len(polls[0]) == 20  # not vacuously steady: all 20 are there
    assert all(poll == polls[0] for poll in polls)


async def test_unreachable_kamailio_is_a_readable_error(tmp_path: Path) -> None:
    url = f"kamailio+http://127.0.0.1:{free_port()}/RPC"
    source = open_source("accounts", url, Config(db=str(tmp_path / "rtm.db")))
    try:
        with pytest.raises(Exception, match="connection refused"):
            await source.fetch()
    finally:
        await source.close()


async def test_lookup_of_one_aor_and_of_a_missing_one(
    kamailio: Kamailio, sipp: Sipp, tmp_path: Path
) -> None:
    sipp.run("register.xml", kamailio, rows=[("looked", 300), ("other", 300)])
    config = Config(db=str(tmp_path / "rtm.db"), kamailio_evapi=kamailio.evapi_url)
    source = open_source("accounts", kamailio.source_url, config)
    assert isinstance(source, HintedKamailioRegistrationCollector)
    try:
        rows = await source.lookup("looked")
        assert [row["username"] for row in rows.values()] == ["looked"]
        assert await source.lookup("nobody") == {}  # Kamailio: 500 "AOR not found"
    finally:
        await source.close()

"""The lab fixtures themselves: Kamailio answers JSON-RPC, sipp registers through it."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.kamailio


def test_kamailio_answers_and_sipp_registers(kamailio: Any, sipp: Any) -> None:
    assert kamailio.rpc("core.uptime")["uptime"] >= 0
    sipp.run("register.xml", kamailio, rows=[("fixture1", 60), ("fixture2", 60)])
    users = sorted(c["AoR"] for c in kamailio.contacts())
    assert users == ["fixture1", "fixture2"]


def test_kamailio_restarts_on_the_same_ports_after_a_crash(kamailio: Any) -> None:
    port = kamailio.http_port
    kamailio.kill()
    assert not kamailio.running
    kamailio.start()
    assert kamailio.http_port == port
    assert kamailio.rpc("core.uptime")["uptime"] >= 0

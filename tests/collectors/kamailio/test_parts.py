"""Parsing uac.reg_dump and dispatcher.list (shapes as Kamailio 5.6 sends them), and joining."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from server.collectors.kamailio.parts import (
    TrunkPart,
    dispatcher_parts,
    target_of,
    uac_parts,
)
from server.collectors.kamailio.trunks import group_trunks
from server.collectors.trunk_rows import ConfiguredTrunk
from server.sip.probes import Target

CANARY = "canary-pw-5b1e"

# A real uac.reg_dump result from the lab (Kamailio 5.6.3), one trunk registered (20), one
# with a refresh in flight (18).
REG_DUMP: list[dict[str, Any]] = [
    {
        "l_uuid": "carrier-a",
        "l_username": "trunka",
        "l_domain": "127.0.0.1",
        "r_username": "trunka",
        "r_domain": "127.0.0.1",
        "realm": "127.0.0.1",
        "auth_username": "trunka",
        "auth_password": CANARY,
        "auth_ha1": CANARY + "-ha1",
        "auth_proxy": "sip:127.0.0.1:25070",
        "expires": 10,
        "flags": 20,
        "diff_expires": 8,
        "timer_expires": 1795766921,
        "reg_init": 1795766911,
        "reg_delay": 0,
        "contact_addr": "127.0.0.1:25060",
        "socket": None,
    },
    {
        "l_uuid": "carrier-b",
        "r_username": "trunkb",
        "r_domain": "carrier-b.example:5080;transport=tcp",
        "auth_password": CANARY,
        "auth_proxy": "",
        "flags": 18,
    },
]

DISPATCHER_LIST = {
    "NRSETS": 1,
    "RECORDS": [
        {
            "SET": {
                "ID": 1,
                "TARGETS": [
                    {
                        "DEST": {
                            "URI": "sip:127.0.0.1:25072",
                            "FLAGS": "IP",
                            "PRIORITY": 0,
                            "ATTRS": {"BODY": "duid=carrier-b", "DUID": "carrier-b"},
                            "LATENCY": {"AVG": 0, "STD": 0, "EST": 0, "MAX": 0, "TIMEOUT": 2},
                        }
                    },
                    {
                        "DEST": {
                            "URI": "sips:gw.example",
                            "FLAGS": "AP",
                            "PRIORITY": 0,
                            "ATTRS": {"BODY": "", "DUID": None},
                        }
                    },
                ],
            }
        }
    ],
}


def test_uac_parts_keep_what_rtm_needs_and_drop_the_credentials() -> None:
    reply = copy.deepcopy(REG_DUMP)
    parts = uac_parts(reply)
    assert parts == [
        TrunkPart("uac", "carrier-a", 20, Target("127.0.0.1", 25070, "UDP"), "trunka"),
        TrunkPart("uac", "carrier-b", 18, Target("carrier-b.example", 5080, "TCP"), "trunkb"),
    ]
    assert CANARY not in repr(parts)
    assert CANARY not in repr(reply)  # gone from the reply itself, not just from our copy
    assert parts[0].key == "uac:carrier-a"


def test_dispatcher_parts_named_by_duid_else_uri() -> None:
    assert dispatcher_parts(DISPATCHER_LIST) == [
        TrunkPart("dispatcher", "carrier-b", "IP", Target("127.0.0.1", 25072, "UDP")),
        TrunkPart("dispatcher", "sips:gw.example", "AP", Target("gw.example", 5061, "TLS")),
    ]


@pytest.mark.parametrize(
    "hostile",
    [
        None,
        "error",
        42,
        [None, 1, "x", {"l_uuid": 5, "flags": 20}, {"l_uuid": "a", "flags": "20"}],
        [{"l_uuid": "a", "flags": True}],
        {"RECORDS": "x"},
        {"RECORDS": [{"SET": {"TARGETS": [{"DEST": {"URI": 1, "FLAGS": "AP"}}]}}]},
        {"RECORDS": [None, {"SET": None}, {"SET": {"TARGETS": [None, {"DEST": []}]}}]},
    ],
)
def test_hostile_replies_give_no_parts(hostile: Any) -> None:
    assert uac_parts(hostile) == []
    assert dispatcher_parts(hostile) == []


def test_unusable_addresses_give_no_target_but_keep_the_part() -> None:
    parts = uac_parts([{"l_uuid": "x", "flags": 16, "auth_proxy": "<>", "r_domain": ""}])
    assert parts == [TrunkPart("uac", "x", 16, None, "")]


@pytest.mark.parametrize(
    ("uri", "target"),
    [
        ("sip:10.0.0.1", Target("10.0.0.1", 5060, "UDP")),
        ("sip:10.0.0.1:5070;transport=TLS", Target("10.0.0.1", 5070, "TLS")),
        ("10.0.0.1:5080", Target("10.0.0.1", 5080, "UDP")),
        ("sip:[2001:db8::1]:5062;transport=tcp", Target("2001:db8::1", 5062, "TCP")),
        ("sip:gw;transport=sctp", Target("gw", 5060, "UDP")),
        ("", None),
        ("mailto:x@y", None),
        ("tel:+390612345", None),  # a number, no host to probe
    ],
)
def test_target_of(uri: str, target: Target | None) -> None:
    assert target_of(uri) == target


def test_parts_join_configured_trunks_by_name_then_by_address() -> None:
    configured = [
        ConfiguredTrunk("carrier-a", "127.0.0.1", 25070, "UDP", True, "+4930", "acme"),
        ConfiguredTrunk("Carrier B", "127.0.0.1", 25072, "UDP"),
        ConfiguredTrunk("spare", "127.0.0.1", 25099, "TCP"),
    ]
    parts = uac_parts(copy.deepcopy(REG_DUMP)) + dispatcher_parts(DISPATCHER_LIST)
    trunks = {trunk.name: trunk for trunk in group_trunks(configured, parts)}
    assert set(trunks) == {"carrier-a", "Carrier B", "spare", "carrier-b", "sips:gw.example"}
    assert [p.kind for p in trunks["carrier-a"].parts] == ["uac"]
    assert [p.name for p in trunks["Carrier B"].parts] == ["carrier-b"]  # by address
    assert trunks["spare"].parts == []
    # Kamailio's uac carrier-b (another address) stays its own row, shown as Kamailio knows it
    known_only = trunks["carrier-b"].as_configured()
    assert (known_only.host, known_only.port, known_only.transport) == (
        "carrier-b.example",
        5080,
        "TCP",
    )
    assert known_only.username == "trunkb" and known_only.virtual_number == ""
    assert trunks["sips:gw.example"].as_configured().encryption is True

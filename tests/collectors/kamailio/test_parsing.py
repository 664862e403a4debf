"""Pure parts of the Kamailio sources: evapi framing, ul.dump walking, expiry, silo rows."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from server.collectors.kamailio.contacts import (
    Held,
    contact_in_event,
    contact_row,
    contacts_in_dump,
    contacts_in_lookup,
    expires_at,
    is_gone,
)
from server.collectors.kamailio.dump import DumpSchedule
from server.collectors.kamailio.evapi import EvapiFramer, evapi_address
from server.collectors.kamailio.hints import HintedKamailioRegistrationCollector
from server.collectors.kamailio.rpc import http_url
from server.collectors.msilo import silo_row
from server.sip.uri import split_aor, user_of


def test_netstrings_split_anywhere_are_reassembled() -> None:
    stream = b'34:{"event":"registered","aor":"bob"},31:{"event":"expired","aor":"ann"},'
    framer = EvapiFramer()
    messages = [m for i in range(0, len(stream), 5) for m in framer.feed(stream[i : i + 5])]
    assert messages == [b'{"event":"registered","aor":"bob"}', b'{"event":"expired","aor":"ann"}']


def test_a_read_of_many_netstrings_yields_them_all_and_keeps_the_partial_one() -> None:
    event = b'{"event":"registered","aor":"u%05d"}'
    events = [event % n for n in range(500)]
    stream = b"".join(b"%d:%s," % (len(e), e) for e in events)
    framer = EvapiFramer()
    last = b'{"event":"expired","aor":"u00000"}'
    assert framer.feed(stream + b"%d:%s" % (len(last), last[:1])) == events
    assert framer.feed(last[1:] + b",") == [last]


def test_bare_json_with_bytes_that_are_not_utf8_keeps_the_stream_in_step() -> None:
    framer = EvapiFramer()
    assert framer.feed(b'{"aor":"\xff\xfe"}{"aor":"\xc3\xa9"}') == [
        b'{"aor":"\xff\xfe"}',
        b'{"aor":"\xc3\xa9"}',
    ]


def test_a_read_of_many_bare_json_objects_yields_them_all_and_keeps_the_partial_one() -> None:
    events = [b'{"event":"registered","aor":"u%05d"}' % n for n in range(300)]
    framer = EvapiFramer()
    assert framer.feed(b"\n".join(events) + b'\n{"event":"exp') == events
    assert framer.feed(b'ired","aor":"u00000"}') == [b'{"event":"expired","aor":"u00000"}']


def test_bare_json_objects_are_split_too() -> None:
    framer = EvapiFramer()
    assert framer.feed(b'{"aor":"a"}{"aor"') == [b'{"aor":"a"}']
    assert framer.feed(b':"b"}\n') == [b'{"aor":"b"}']


@pytest.mark.parametrize("garbage", [b"12x:abc,", b"3:abcX", b"99999999:", b"GET / HTTP/1.1\r\n"])
def test_garbage_on_the_event_socket_is_an_error_not_a_hang(garbage: bytes) -> None:
    with pytest.raises(ValueError):
        EvapiFramer().feed(garbage)


def test_urls() -> None:
    assert http_url("kamailio+http://127.0.0.1:8088/RPC") == "http://127.0.0.1:8088/RPC"
    assert evapi_address("tcp://127.0.0.1:8448") == ("127.0.0.1", 8448)
    with pytest.raises(ValueError):
        evapi_address("udp://127.0.0.1")


def contact(**fields: Any) -> dict[str, Any]:
    base = {
        "Address": "sip:alice@192.0.2.1:5062;transport=TCP",
        "Expires": 60,
        "Call-ID": "c1",
        "CSeq": 2,
        "User-Agent": "<b>UA</b>",
        "Received": "[not set]",
        "Socket": "tcp:127.0.0.1:5060",
        "Ruid": "uloc-1",
        "Server-Id": 3,
    }
    return {**base, **fields}


def test_dump_walk_skips_malformed_parts() -> None:
    dump = {
        "Domains": [
            {
                "Domain": {
                    "AoRs": [{"Info": {"AoR": "alice", "Contacts": [{"Contact": contact()}]}}]
                }
            },  # noqa: E501
            {"Domain": {"AoRs": "nonsense"}},
            "junk",
            {"Domain": {"AoRs": [{"Info": {"AoR": 5, "Contacts": []}}, {"Info": None}]}},
        ]
    }
    assert [aor for aor, _ in contacts_in_dump(dump)] == ["alice"]
    assert list(contacts_in_dump(["not", "a", "dump"])) == []


def test_contact_row_uses_received_and_socket_and_keeps_strings_literal() -> None:
    row = contact_row(
        "alice@example.com", contact(Received="sip:198.51.100.9:40000"), {"owner": "A"}, 100
    )
    assert (row["ip"], row["port"], row["transport"]) == ("198.51.100.9", 40000, "TCP")
    assert (row["username"], row["domain"], row["owner"]) == ("alice", "example.com", "A")
    assert row["user_agent"] == "<b>UA</b>"
    assert (row["id"], row["node"], row["expires"]) == ("uloc-1", 3, "1970-01-01T00:01:40Z")


def test_expiry_strings_and_jitter() -> None:
    assert is_gone(contact(Expires="expired")) and is_gone(contact(Expires="deleted"))
    assert is_gone(contact(Expires=True)) and is_gone(contact(Expires=None))
    assert not is_gone(contact(Expires="permanent")) and not is_gone(contact(Expires=0))
    assert expires_at(contact(Expires="permanent"), 1000.0, None) is None
    assert expires_at(contact(Expires=60), 1000.9, None) == 1060
    held = Held(1061, "c1", 2)
    assert expires_at(contact(Expires=60), 1000.0, held) == 1061  # same registration
    # a dump whose reply took seconds longer still says the same registration
    assert expires_at(contact(Expires=55), 1000.0, held) == 1061
    assert expires_at(contact(Expires=60, CSeq=3), 1000.0, held) == 1060  # refreshed
    assert expires_at(contact(Expires=600, CSeq=3), 1000.0, held) == 1600
    # an evapi event says the expiry outright (0: permanent, as in usrloc)
    assert expires_at({"Expires-At": 1234}, 1000.0, held) == 1234
    assert expires_at({"Expires-At": 0}, 1000.0, None) is None


def test_an_event_contact_needs_a_ruid_and_an_expiry() -> None:
    good = {"ruid": "r1", "address": "sip:a@h", "expires": 99, "cseq": 2, "received": ""}
    assert contact_in_event(good) == {
        "Ruid": "r1",
        "Address": "sip:a@h",
        "Received": "",
        "CSeq": 2,
        "Expires-At": 99,
    }
    for bad in ({**good, "ruid": 5}, {**good, "expires": "soon"}, {**good, "expires": True}):
        assert contact_in_event(bad) is None
    assert contact_in_event([good]) is None


def test_split_aor() -> None:
    assert split_aor("alice") == ("alice", "")
    assert split_aor("sip:alice@example.com") == ("alice", "example.com")


def test_silo_row_never_needs_the_body() -> None:
    record = {
        "id": 7,
        "src_addr": "sip:sender@127.0.0.1",
        "dst_addr": "sip:carol@127.0.0.1",
        "username": "carol",
        "inc_time": 1795766827,
        "snd_time": 0,
        "callid": "abc",
    }
    row = silo_row(record)
    assert row["id"] == "7" and row["uuid"] == "abc"
    assert (row["from_account"], row["to_account"]) == ("sender", "carol")
    assert row["received"] == "2026-11-27T08:07:07.000Z"
    assert (row["status"], row["sent"], row["managed"]) == ("ENQUEUED", 0, False)
    assert user_of('"Bob" <sip:bob@x;user=phone>') == "bob"
    assert user_of("garbage") == ""


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
hostile_contact = st.fixed_dictionaries(
    {},
    optional={
        name: json_values | st.text()
        for name in ("Address", "Expires", "Call-ID", "CSeq", "User-Agent", "Received")
        + ("Socket", "Ruid", "Server-Id")
    },
)


class NoDirectory:
    def account(self, username: str, domain: str) -> dict[str, str]:
        return {}


def hinted_source() -> HintedKamailioRegistrationCollector:
    schedule = DumpSchedule(every=300, duty=0.02)
    return HintedKamailioRegistrationCollector(
        None,  # type: ignore[arg-type]
        NoDirectory(),  # type: ignore[arg-type]
        schedule,
        1.0,
        "tcp://127.0.0.1:1",
    )


hostile_event_contact = st.fixed_dictionaries(
    {},
    optional={
        name: json_values | st.text()
        for name in ("ruid", "address", "received", "socket", "expires", "user_agent")
        + ("call_id", "cseq", "server_id")
    },
)


@given(
    events=st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "event": st.sampled_from(["registered", "expired", "refreshed"]) | json_values,
                "aor": st.sampled_from(["alice", "bob@example.com"]) | json_values | st.text(),
                "contacts": st.lists(hostile_event_contact | json_values, max_size=3) | json_values,
                "ruid": st.text() | json_values,
            },
        )
        | json_values,
        max_size=6,
    )
)
def test_hostile_events_give_changes_or_lookups_never_an_exception(events: list[Any]) -> None:
    source = hinted_source()
    changes, unnamed = source.take_events(events)
    assert not changes.upsert.keys() & changes.delete
    for row_id, row in changes.upsert.items():
        assert row_id == row["id"] and isinstance(row["user_agent"], str)
    assert all(isinstance(aor, str) and aor for aor in unnamed)


@given(
    aor=st.text(),
    contacts=st.lists(hostile_contact | json_values, max_size=5),
    noise=json_values,
)
@example(aor="", contacts=[], noise={"Domain": None})  # a domain that is not an object
def test_hostile_rpc_replies_give_rows_or_nothing_never_an_exception(
    aor: str, contacts: list[Any], noise: Any
) -> None:
    source = hinted_source()
    info = {"AoR": aor, "Contacts": [{"Contact": c} for c in contacts] + [noise]}
    dump = {"Domains": [{"Domain": {"AoRs": [{"Info": info}, noise]}}, noise]}
    for pairs in (contacts_in_dump(dump), contacts_in_lookup(info), contacts_in_dump(noise)):
        rows = source._take_dump(pairs, 1000.0, 0.0)
        for key, row in rows.items():
            assert key == row["id"] and isinstance(row["user_agent"], str)
            assert row["port"] is None or 0 < row["port"] < 65536

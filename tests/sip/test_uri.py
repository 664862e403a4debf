"""The one SIP URI parser: every form rtm meets, and hostile text that never breaks it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.sip.uri import (
    Address,
    SipUri,
    contact_address,
    parse,
    parse_socket,
    split_aor,
    user_of,
)


@pytest.mark.parametrize(
    ("text", "bare", "expected"),
    [
        ("sip:alice@example.com", False, SipUri("sip", "alice", "example.com", None, None)),
        ("SIP:alice@10.0.0.1:5062", False, SipUri("sip", "alice", "10.0.0.1", 5062, None)),
        ("sips:bob@host", False, SipUri("sips", "bob", "host", None, "TLS")),
        ("sip:a:secret@h;transport=tcp", False, SipUri("sip", "a", "h", None, "TCP")),
        ("sip:u@[2001:db8::1]:5070;lr", False, SipUri("sip", "u", "2001:db8::1", 5070, None)),
        ('"Bob" <sip:bob@x;user=phone>;tag=1', False, SipUri("sip", "bob", "x", None, None)),
        ("sip:h?subject=x;transport=tls", False, SipUri("sip", "", "h", None, None)),
        ("sip:u@h:0", False, SipUri("sip", "u", "h", None, None)),  # no port 0
        ("sip:u@h:99999", False, SipUri("sip", "u", "h", None, None)),
        ("sip:a@b@c", False, SipUri("sip", "a@b", "c", None, None)),  # host after the last @
        ("host", False, None),
        ("host", True, SipUri("sip", "", "host", None, None)),
        ("10.0.0.1:5080", True, SipUri("sip", "", "10.0.0.1", 5080, None)),
        ("[::1]:5060", True, SipUri("sip", "", "::1", 5060, None)),
        ("alice@example.com", True, SipUri("sip", "alice", "example.com", None, None)),
        ("mailto:x@y", True, None),
        ("tel:+390612345", False, None),
        ("sip:", False, None),
        ("<>", True, None),
        ("", True, None),
        (None, True, None),
    ],
)
def test_forms(text: str | None, bare: bool, expected: SipUri | None) -> None:
    assert parse(text, bare=bare) == expected


def test_what_collectors_read_from_uris() -> None:
    assert user_of('"Bob" <sip:bob:pw@x>') == "bob"  # never the password
    assert user_of("garbage") == ""
    assert split_aor("alice") == ("alice", "")
    assert split_aor("sip:alice@example.com") == ("alice", "example.com")
    assert split_aor("alice@[2001:db8::1]:5070") == ("alice", "[2001:db8::1]:5070")
    assert parse_socket("tcp:[::1]:5060") == Address("::1", 5060, "TCP")
    assert parse_socket("garbage") == Address(None, None, None)
    nat = contact_address("sip:a@10.0.0.5:5060", "sip:203.0.113.9:4512", "tls:1.2.3.4:5061")
    assert nat == Address("203.0.113.9", 4512, "TLS")
    assert contact_address("sip:a@h;transport=ws", None, None) == Address("h", 80, "WS")
    assert contact_address("nonsense", None, None) == Address(None, None, "UDP")


hosts = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
users = st.from_regex(r"[A-Za-z0-9_.!~*'()&=+$,-]{1,20}", fullmatch=True)
ports = st.integers(1, 65535)
transports = st.sampled_from(["udp", "tcp", "tls", "ws", "wss", "sctp"])


@given(
    user=users,
    host=hosts,
    port=st.none() | ports,
    transport=st.none() | transports,
    secure=st.booleans(),
    display=st.none() | st.text(alphabet=st.characters(blacklist_characters='<>"'), max_size=8),
)
def test_a_built_uri_parses_back_to_its_parts(
    user: str,
    host: str,
    port: int | None,
    transport: str | None,
    secure: bool,
    display: str | None,
) -> None:
    scheme = "sips" if secure else "sip"
    where = f"[{host}]" if ":" in host else host
    uri = f"{scheme}:{user}@{where}" + (f":{port}" if port else "")
    uri += f";transport={transport}" if transport else ""
    expected_transport = transport.upper() if transport else ("TLS" if secure else None)
    expected = SipUri(scheme, user, host, port, expected_transport)
    assert parse(uri) == expected
    # The same URI in a name-addr, with or without a display name, parses the same.
    name = f'"{display}" ' if display is not None else ""
    assert parse(f"{name}<{uri}>;tag=abc") == expected


@given(st.text(max_size=200))
def test_hostile_text_never_raises(text: str) -> None:
    for bare in (False, True):
        uri = parse(text, bare=bare)
        assert uri is None or (uri.host and (uri.port is None or 0 < uri.port < 65536))
    user_of(text)
    split_aor(text)
    parse_socket(text)
    contact_address(text, text, text)


@given(st.binary(max_size=100).map(lambda b: "sip:" + b.decode("latin-1")))
def test_hostile_bytes_after_the_scheme_never_raise(text: str) -> None:
    parse(text)
    contact_address(text, None, text)

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
        ("sip:h:123456", False, SipUri("sip", "", "h", None, None)),  # not port 12345
        (
            "sip:alice;day=tuesday@atlanta.com",
            False,
            SipUri("sip", "alice;day=tuesday", "atlanta.com", None, None),
        ),
        (
            "sip:+1-212-555-1212:1234@gw;user=phone",
            False,
            SipUri("sip", "+1-212-555-1212", "gw", None, None),
        ),
        ("sip:bob@h?Replaces=id@pc33;to-tag=1", False, SipUri("sip", "bob", "h", None, None)),
        ('"a<b>\\"c" <sip:x@h>;tag=1', False, SipUri("sip", "x", "h", None, None)),
        ('"unclosed <sip:x@h>', False, SipUri("sip", "x", "h", None, None)),
        ("host", False, None),
        ("host", True, SipUri("sip", "", "host", None, None)),
        ("10.0.0.1:5080", True, SipUri("sip", "", "10.0.0.1", 5080, None)),
        ("[::1]:5060", True, SipUri("sip", "", "::1", 5060, None)),
        ("alice@example.com", True, SipUri("sip", "alice", "example.com", None, None)),
        ("mailto:x@y", True, None),
        ("tel:+390612345", False, SipUri("tel", "+390612345", "", None, None)),
        ("<TEL:+39-06-1234;phone-context=x>", True, SipUri("tel", "+39-06-1234", "", None, None)),
        ("tel:7042;phone-context=example.com", False, SipUri("tel", "7042", "", None, None)),
        ("tel:not a number", False, None),
        ("tel:", True, None),
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
    assert user_of("tel:+390612345") == "+390612345"
    assert split_aor("alice") == ("alice", "")
    assert split_aor("alice;x") == ("alice;x", "")  # use_domain 0: all of it is the user
    assert split_aor("tel:+39") == ("tel:+39", "")
    assert split_aor("sip:alice@example.com") == ("alice", "example.com")
    assert split_aor("alice@[2001:db8::1]:5070") == ("alice", "[2001:db8::1]:5070")
    assert parse_socket("tcp:[::1]:5060") == Address("::1", 5060, "TCP")
    assert parse_socket("garbage") == Address(None, None, None)
    nat = contact_address("sip:a@10.0.0.5:5060", "sip:203.0.113.9:4512", "tls:1.2.3.4:5061")
    assert nat == Address("203.0.113.9", 4512, "TLS")
    assert contact_address("sip:a@h;transport=ws", None, None) == Address("h", 80, "WS")
    assert contact_address("nonsense", None, None) == Address(None, None, "UDP")
    assert contact_address("tel:+39", None, None) == Address(None, None, "UDP")  # no host


hosts = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
# RFC 3261 user: unreserved, escaped and user-unreserved characters (';' and '/' included)
users = st.from_regex(r"([A-Za-z0-9_.!~*'()&=+$,;/-]|%[0-9A-F]{2}){1,20}", fullmatch=True)
ports = st.integers(1, 65535)
transports = st.sampled_from(["udp", "tcp", "tls", "ws", "wss", "sctp"])
params = st.lists(st.sampled_from([";lr", ";ob", ";user=phone", ";maddr=10.0.0.1"]), max_size=2)
# Any display name, quoted with its '"' and '\\' escaped, or a token, or none.
displays = st.one_of(
    st.none(),
    st.text(max_size=12).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '" '),
    st.from_regex(r"[A-Za-z0-9]{1,8} ", fullmatch=True),
)


@given(
    user=st.none() | users,
    password=st.none() | st.from_regex(r"[A-Za-z0-9&=+$,-]{1,8}", fullmatch=True),
    host=hosts,
    port=st.none() | ports,
    transport=st.none() | transports,
    params=params,
    secure=st.booleans(),
    display=displays,
)
def test_a_built_uri_parses_back_to_its_parts(
    user: str | None,
    password: str | None,
    host: str,
    port: int | None,
    transport: str | None,
    params: list[str],
    secure: bool,
    display: str | None,
) -> None:
    scheme = "sips" if secure else "sip"
    where = f"[{host}]" if ":" in host else host
    userinfo = "" if user is None else user + (f":{password}" if password else "") + "@"
    hostport = where + (f":{port}" if port else "")
    tail = "".join(params) + (f";transport={transport}" if transport else "")
    expected_transport = transport.upper() if transport else ("TLS" if secure else None)
    expected = SipUri(scheme, user or "", host, port, expected_transport)
    uri = f"{scheme}:{userinfo}{hostport}{tail}"
    assert parse(uri) == expected
    # The same URI in a name-addr, with or without a display name, parses the same.
    assert parse(f"{display or ''}<{uri}>;tag=abc;expires=60") == expected
    # Bare, without its scheme, it is the same sip: URI ("alice:pw@h" reads as scheme alice:).
    if not secure and password is None:
        assert parse(f"{userinfo}{hostport}{tail}", bare=True) == expected


@given(number=st.from_regex(r"\+?[0-9][0-9().-]{0,14}", fullmatch=True), display=displays)
def test_a_tel_number_parses_back(number: str, display: str | None) -> None:
    expected = SipUri("tel", number, "", None, None)
    assert parse(f"tel:{number};phone-context=example.com") == expected
    assert parse(f"{display or ''}<tel:{number}>") == expected


@given(text=st.text(alphabet=st.characters(blacklist_characters='<>"'), max_size=60))
def test_a_name_addr_reads_as_the_uri_inside_it(text: str) -> None:
    for bare in (False, True):
        assert parse(f'"Bob" <{text}>;tag=1', bare=bare) == parse(text, bare=bare)


@given(st.text(max_size=200))
def test_hostile_text_never_raises(text: str) -> None:
    for bare in (False, True):
        uri = parse(text, bare=bare)
        if uri is not None:
            assert uri.host or (uri.scheme == "tel" and uri.user)
            assert uri.port is None or 0 < uri.port < 65536
    user_of(text)
    split_aor(text)
    parse_socket(text)
    contact_address(text, text, text)


@given(st.binary(max_size=100).map(lambda b: "sip:" + b.decode("latin-1")))
def test_hostile_bytes_after_the_scheme_never_raise(text: str) -> None:
    parse(text)
    contact_address(text, None, text)


def test_a_huge_port_is_no_port_not_an_error() -> None:
    # int() of more than 4300 digits raises; the parser must never get that far.
    assert parse("sip:h:" + "9" * 5000) == SipUri("sip", "", "h", None, None)

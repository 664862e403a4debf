"""Trunk status mapping: uac flags, dispatcher FLAGS and OPTIONS replies, table-driven."""

from __future__ import annotations

import pytest

from server.collectors.trunk_status import (
    DISABLED,
    FAILED,
    OK,
    PENDING,
    SinceTracker,
    combine,
    dispatcher_status,
    probe_status,
    uac_status,
)
from server.sip.options import ProbeResult
from server.times import iso


@pytest.mark.parametrize(
    ("flags", "previous", "expected"),
    [
        (0, None, PENDING),  # loaded, never tried
        (20, None, OK),  # INIT|ONLINE
        (20, FAILED, OK),
        (28, None, OK),  # INIT|ONLINE|AUTHSENT
        (16, None, FAILED),  # INIT: tried, not registered, nothing in flight
        (16, OK, FAILED),
        (24, OK, FAILED),  # INIT|AUTHSENT after a failed challenge
        (18, OK, OK),  # refresh in flight: a healthy trunk never flaps
        (18, FAILED, FAILED),  # retry in flight: still failed
        (18, None, PENDING),  # first attempt in flight
        (18, PENDING, PENDING),
        (18, DISABLED, PENDING),  # just re-enabled: not known yet
        (26, OK, OK),  # ONGOING|AUTHSENT|INIT
        (2, None, PENDING),
        (1, OK, DISABLED),
        (21, OK, DISABLED),  # disabled wins over registered
        (19, OK, DISABLED),
    ],
)
def test_uac_status(flags: int, previous: str | None, expected: str) -> None:
    assert uac_status(flags, previous) == expected


@pytest.mark.parametrize(
    ("flags", "previous", "expected"),
    [
        ("AP", None, OK),
        ("AX", FAILED, OK),
        ("IP", None, FAILED),
        ("IP", OK, FAILED),
        ("IX", OK, FAILED),
        ("DX", OK, DISABLED),
        ("DP", None, DISABLED),
        ("TP", OK, OK),  # trying: keep what we knew
        ("TP", FAILED, FAILED),
        ("TP", None, PENDING),
        ("TP", DISABLED, PENDING),
        ("", OK, OK),  # hostile / unknown: no verdict
        ("?!", None, PENDING),
        ("ap", None, OK),
    ],
)
def test_dispatcher_status(flags: str, previous: str | None, expected: str) -> None:
    assert dispatcher_status(flags, previous) == expected


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (None, (PENDING, None)),
        (ProbeResult(200, "OK", latency_ms=1.0), (OK, None)),
        (ProbeResult(202, "Accepted"), (OK, None)),
        (ProbeResult(404, "Not Here"), (OK, None)),  # it answered SIP: alive
        (ProbeResult(405, "Method Not Allowed"), (OK, None)),
        (ProbeResult(483, "Too Many Hops"), (OK, None)),
        (ProbeResult(408, "Request Timeout"), (FAILED, "408 Request Timeout")),
        (ProbeResult(503, "Service Unavailable"), (FAILED, "503 Service Unavailable")),
        (ProbeResult(603, "Decline"), (FAILED, "603 Decline")),
        (ProbeResult(500, ""), (FAILED, "500")),
        (ProbeResult(error="timeout after 2.0 s"), (FAILED, "timeout after 2.0 s")),
        (ProbeResult(error="connection refused"), (FAILED, "connection refused")),
        (
            ProbeResult(error="TLS: certificate has expired"),
            (FAILED, "TLS: certificate has expired"),
        ),
        (ProbeResult(), (FAILED, "no reply")),
    ],
)
def test_probe_status(result: ProbeResult | None, expected: tuple[str, str | None]) -> None:
    assert probe_status(result) == expected


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([], PENDING),
        ([OK], OK),
        ([OK, OK], OK),
        ([OK, FAILED], FAILED),
        ([FAILED, PENDING], FAILED),
        ([OK, PENDING], PENDING),
        ([DISABLED], DISABLED),
        ([DISABLED, OK], OK),  # a disabled half does not hide a live one
        ([DISABLED, FAILED], FAILED),
        ([DISABLED, DISABLED], DISABLED),
    ],
)
def test_combine(parts: list[str], expected: str) -> None:
    assert combine(parts) == expected


def test_since_changes_only_with_the_status() -> None:
    tracker = SinceTracker()
    t0 = 1_800_000_000.0
    assert tracker.update({"a": OK, "b": PENDING}, t0) == {"a": iso(t0), "b": iso(t0)}
    assert tracker.update({"a": OK, "b": OK}, t0 + 5) == {"a": iso(t0), "b": iso(t0 + 5)}
    assert tracker.previous("b") == OK
    assert tracker.update({"a": FAILED}, t0 + 9) == {"a": iso(t0 + 9)}
    assert tracker.previous("b") is None  # vanished trunks are forgotten
    assert tracker.update({"a": FAILED, "b": OK}, t0 + 10)["b"] == iso(t0 + 10)


def test_since_is_the_wire_time_to_the_second() -> None:
    assert iso(0) == "1970-01-01T00:00:00Z"
    assert iso(1_800_000_000.7) == "2027-01-15T08:00:00Z"

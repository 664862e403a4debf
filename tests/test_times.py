"""Time conversions: Kamailio's Julian days, the wire's ISO-8601, a zone's named spans."""

from __future__ import annotations

from datetime import UTC, datetime

from server.times import iso, julian_to_unix, parse_iso, unix_to_julian, zone_spans


def test_julian_days_round_trip_and_never_expires() -> None:
    moment = datetime(2026, 11, 27, 8, 0, tzinfo=UTC).timestamp()
    # A REAL Julian day holds about 20 us of precision at today's dates.
    assert abs((julian_to_unix(unix_to_julian(moment)) or 0) - moment) < 0.001
    assert julian_to_unix(0) is None and julian_to_unix(2440587.5) is None
    assert julian_to_unix("2030-05-28 21:32:15") == parse_iso("2030-05-28T21:32:15Z")
    assert iso(moment) == "2026-11-27T08:00:00Z"


def test_iso_writes_what_datetime_writes_on_its_fast_path() -> None:
    # The fast path (time.gmtime) must round as datetime does: a Julian day that lands a
    # hair before a second is that second, a fraction below half a microsecond is not.
    def by_datetime(seconds: float) -> str:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    edges = [0.0, 0.4999999, 0.9999994, 0.9999995, 1764753599.9999998, 253402300799.0]
    julian = [julian_to_unix(unix_to_julian(1764750000 + i)) or 0.0 for i in range(2000)]
    for seconds in edges + julian + [s + 0.9999996 for s in range(0, 4_000_000_000, 7_777_777)]:
        assert iso(seconds) == by_datetime(seconds), seconds
    assert iso(253402300800.0 - 1) == "9999-12-31T23:59:59Z"
    assert iso(1764753600.25, millis=True) == "2025-12-03T09:20:00.250Z"


def test_zone_spans_name_the_exact_switch_and_are_computed_once_a_day() -> None:
    now = datetime(2026, 11, 27, 8, 0, tzinfo=UTC).timestamp()
    spans = zone_spans("Europe/Rome", now)
    switch = int(datetime(2026, 10, 25, 1, 0, tzinfo=UTC).timestamp())  # 03:00 CEST -> 02:00 CET
    assert (switch, 3600, "CET") in spans
    assert any(offset == 7200 and name == "CEST" for _, offset, name in spans)
    assert zone_spans("Europe/Rome", now + 3600) is spans

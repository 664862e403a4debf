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


def test_zone_spans_name_the_exact_switch_and_are_computed_once_a_day() -> None:
    now = datetime(2026, 11, 27, 8, 0, tzinfo=UTC).timestamp()
    spans = zone_spans("Europe/Rome", now)
    switch = int(datetime(2026, 10, 25, 1, 0, tzinfo=UTC).timestamp())  # 03:00 CEST -> 02:00 CET
    assert (switch, 3600, "CET") in spans
    assert any(offset == 7200 and name == "CEST" for _, offset, name in spans)
    assert zone_spans("Europe/Rome", now + 3600) is spans

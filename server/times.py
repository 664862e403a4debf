"""Time in the forms rtm meets: Kamailio's Julian days, unix seconds, ISO-8601 on the wire."""

from __future__ import annotations

import functools
import math
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

UNIX_EPOCH_JULIAN = 2440587.5


def julian_to_unix(value: object) -> float | None:
    """Unix seconds from a usrloc ``expires`` as db_sqlite stores it.

    Kamailio writes a REAL Julian day; a text ``YYYY-MM-DD HH:MM:SS`` (the schema's default,
    or another writer) is read as UTC. Kamailio's 0 / pre-1970 means "never expires": None.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        if value <= UNIX_EPOCH_JULIAN:
            return None
        return (float(value) - UNIX_EPOCH_JULIAN) * 86400.0
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            try:
                return julian_to_unix(float(value))
            except ValueError:
                return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp()
        return seconds if seconds > 0 else None
    return None


def unix_to_julian(seconds: float) -> float:
    return seconds / 86400.0 + UNIX_EPOCH_JULIAN


# Years 1970-9999: where time.gmtime formats what datetime would (and 3.5x faster: a first
# read of 100k contacts formats 100k expiries).
_GMTIME_LIMIT = 253402300800.0


def iso(seconds: float | None, *, millis: bool = False) -> str | None:
    """Wire form: ``2026-11-27T08:00:00Z`` (``.123`` with millis), None stays None."""
    if seconds is None:
        return None
    if not millis and 0 <= seconds < _GMTIME_LIMIT:
        # datetime rounds to the microsecond first (a Julian day's 08:00:59.9999998 is
        # 08:01:00): so do we, then drop the fraction as its strftime does.
        fraction, whole = math.modf(seconds)
        if round(fraction * 1e6) >= 1_000_000:
            whole += 1
        return _iso_second(int(whole))
    moment = datetime.fromtimestamp(seconds, UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# Contacts registered in the same second expire in the same second: at 160 REGISTERs/s the
# evapi path formats the same few expiries again and again, and strftime was a tenth of the
# event loop's busy time there (py-spy, docs/benchmarks.md).
@functools.lru_cache(maxsize=16384)
def _iso_second(whole: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(whole))


@functools.lru_cache(maxsize=4096)
def parse_iso(text: str) -> float:
    """Unix seconds from a wire timestamp; ValueError when it is not one.

    Cached: contacts registered in the same second expire in the same second (``iso``), so
    the expiries of a million rows taken over by a cluster's new leader are a few thousand
    texts, each parsed once."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def now_iso() -> str:
    return iso(time.time()) or ""


def zone_spans(tz: str, now: float) -> list[tuple[int, int, str]]:
    """``zone_transitions`` of zone ``tz`` around today, computed once a day, not per client.

    Finding them takes ~15 ms; a wall of displays reconnecting after a restart would pay it
    once each on the event loop.
    """
    return _zone_spans_of_day(tz, int(now // 86400))


@functools.lru_cache(maxsize=8)
def _zone_spans_of_day(tz: str, day: int) -> list[tuple[int, int, str]]:
    return zone_transitions(ZoneInfo(tz), day * 86400 + 43200)


def zone_transitions(zone: ZoneInfo, around: float, days: int = 400) -> list[tuple[int, int, str]]:
    """``(unix_start, utc_offset_seconds, abbreviation)`` for ``days`` either side of ``around``.

    The browser has no reliable way to name a zone's abbreviation ("CEST"), so the server
    sends the zone's spans and the page formats with them. Found by hourly steps, refined to
    the exact second by bisection.
    """
    start = int(around) - days * 86400
    end = int(around) + days * 86400

    def state(t: int) -> tuple[int, str]:
        local = datetime.fromtimestamp(t, zone)
        offset = local.utcoffset() or timedelta(0)
        return int(offset.total_seconds()), local.tzname() or ""

    spans = [(start, *state(start))]
    previous = state(start)
    step = 3600
    t = start
    while t < end:
        current = state(t + step)
        if current != previous:
            low, high = t, t + step  # transition in (low, high]
            while high - low > 1:
                mid = (low + high) // 2
                if state(mid) == previous:
                    low = mid
                else:
                    high = mid
            spans.append((high, *current))
            previous = current
        t += step
    return spans

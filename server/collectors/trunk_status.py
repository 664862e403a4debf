"""Trunk status, pure: Kamailio's uac and dispatcher flags and OPTIONS replies → OK/FAILED/...

A trunk's status is one of ``STATUSES``. Kamailio clears a trunk's "registered" bit while a
refresh is in flight (uac flags 18), and marks a gateway "trying" between probes; both mean
"no news", so those states keep the previous status instead of flapping through PENDING.
``SinceTracker`` is the one stateful piece: it remembers when each trunk's status last changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..sip.options import ProbeResult
from ..times import iso

OK, FAILED, PENDING, DISABLED = "OK", "FAILED", "PENDING", "DISABLED"
STATUSES = (OK, FAILED, PENDING, DISABLED)

# uac.reg_dump "flags" bits (Kamailio modules/uac/uac_reg.c).
UAC_DISABLED = 1
UAC_ONGOING = 2
UAC_ONLINE = 4
UAC_AUTHSENT = 8
UAC_INIT = 16

# Statuses a "no news" state may hold on to; PENDING and DISABLED are not news to keep.
_HOLDABLE = (OK, FAILED)


def _held(previous: str | None) -> str:
    return previous if previous in _HOLDABLE else PENDING


def uac_status(flags: int, previous: str | None = None) -> str:
    """Status of a uac registration trunk from its ``flags``, given its previous status."""
    if flags & UAC_DISABLED:
        return DISABLED
    if flags & UAC_ONLINE:
        return OK
    if flags & UAC_ONGOING:  # a (re-)REGISTER in flight: the outcome is not known yet
        return _held(previous)
    if flags & UAC_INIT:  # tried, neither registered nor trying: the last attempt failed
        return FAILED
    return PENDING  # not tried yet


def dispatcher_status(flags: str, previous: str | None = None) -> str:
    """Status of a dispatcher gateway from ``FLAGS`` ("AP", "IP", "DX", "TP", ...)."""
    state = flags[:1].upper()
    if state == "A":
        return OK
    if state == "I":
        return FAILED
    if state == "D":
        return DISABLED
    return _held(previous)  # "T" (trying) or something new: no verdict yet


def probe_status(result: ProbeResult | None) -> tuple[str, str | None]:
    """``(status, reason)`` from an OPTIONS probe: any SIP reply but 408/5xx/6xx means alive."""
    if result is None:
        return PENDING, None
    if result.code is None:
        return FAILED, result.error or "no reply"
    if result.code == 408 or result.code >= 500:
        return FAILED, result.reply
    return OK, None


def combine(statuses: Iterable[str]) -> str:
    """One trunk's status from its parts (uac and dispatcher): the worst live one wins."""
    parts = list(statuses)
    for status in (FAILED, PENDING, OK):
        if status in parts:
            return status
    return DISABLED if parts else PENDING


class SinceTracker:
    """Remembers each trunk's status and when it last changed (the row's ``since``)."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, str]] = {}

    def previous(self, trunk_id: str) -> str | None:
        """The status last recorded for ``trunk_id``, None when it was never seen."""
        seen = self._seen.get(trunk_id)
        return seen[0] if seen else None

    def update(self, statuses: Mapping[str, str], now: float) -> dict[str, str]:
        """Record the current statuses; return each trunk's ``since``. Forgets vanished ones."""
        seen: dict[str, tuple[str, str]] = {}
        for trunk_id, status in statuses.items():
            old = self._seen.get(trunk_id)
            seen[trunk_id] = old if old and old[0] == status else (status, iso(now) or "")
        self._seen = seen
        return {trunk_id: since for trunk_id, (_, since) in seen.items()}

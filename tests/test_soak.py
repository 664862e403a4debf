"""``make soak`` in three minutes: restarts and freezes under 200 changes/s, and afterwards
both pages (desk and rotating kiosk) show the server's tables with no page error, and so
does the client of a second server on the same store that is never restarted. The
growth targets need the long run (``make soak``, docs/reliability.md)."""

from __future__ import annotations

import pytest

from bench.soak import soak

from .browser.conftest import require_chromium

pytestmark = pytest.mark.browser


# Three minutes of life plus the comparisons, next to the rest of the suite on two cores.
@pytest.mark.timeout(900)
def test_three_minutes_of_life_leave_the_pages_equal_to_the_server() -> None:
    require_chromium()
    seen: list[str] = []
    run = soak(minutes=3, say=seen.append)
    assert run.restarts >= 3 and run.freezes >= 1, run.plan.events
    assert len(run.comparisons) == run.restarts + 2  # start, each restart, the end
    unequal = [c for c in run.comparisons if c[2] != "equal"]
    assert not unequal, "\n".join(seen)
    assert not run.errors, run.errors
    # The never-restarted server's client followed every frame in order, without a drop.
    assert not run.follower.failure and run.follower.reconnects == 0
    assert run.follower.frames > 0
    assert len(run.samples) >= 3
    assert run.life.written > 0

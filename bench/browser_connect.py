"""Chromium connecting to 100k rows: the first rows painted, the whole table held.

A real ``rtm serve`` on a store of N contacts and real Chromium (Playwright) signed in on
the desk page. The page is opened the moment rtm listens (cold: rtm is still reading the
store, then builds its shared snapshot), at each of a few starts of rtm on the same store,
then reloaded (warm: the shared body is built).
A script in the page, there before the page's own, notes on each animation frame when the
first row of the accounts grid was first on screen (the frame after it appeared, so it was
painted) and when the headline first said all N registered users (the whole table held).
Times are from the navigation's start; cold ones also from rtm's first read being in (rtm
logs it), since no page can show rows that rtm has not read yet.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

from tests.browser.conftest import cookies_for, launch
from tests.live_server import RtmServer

from .churn import seeded_server
from .connect_one import ready_at, spread, timed_out
from .measure import Figure, seconds

QUICK = os.environ.get("BENCH_QUICK") == "1"
CONTACTS = 20_000 if QUICK else 100_000
COLD = 2 if QUICK else 3  # starts of rtm on the same store, a page opened as each begins
WARM = 2 if QUICK else 3  # reloads once warm; the best counts
TIMEOUT_MS = 120_000

# Before the page's scripts: performance.now() of the frame after the first accounts row
# appeared (it has been painted by then) and of the frame the headline counted every row.
WATCH_JS = """(() => {
  const seen = { painted: null, held: null };
  window.__rtm_connect = seen;
  let appeared = false;
  const whole = %r;
  const tick = (t) => {
    if (seen.painted === null) {
      if (appeared) seen.painted = t;
      else appeared = !!document.querySelector('#view-accounts tr.row');
    }
    if (seen.held === null) {
      const headline = document.querySelector('#accounts-title .headline');
      if (headline && headline.textContent.includes(whole)) seen.held = t;
    }
    if (seen.painted === null || seen.held === null) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();"""
DONE_JS = "() => window.__rtm_connect && window.__rtm_connect.held !== null"
SEEN_JS = "() => [window.__rtm_connect.painted, window.__rtm_connect.held, performance.timeOrigin]"


@dataclass(frozen=True)
class Load:
    """One navigation: seconds from its start to the first row painted and to every row held,
    and its start (``time.time()``); ``ready``: seconds from its start to rtm's first read in
    (cold loads only)."""

    painted: float
    held: float
    started: float
    ready: float = 0.0
    failed: int = 0  # source reads that failed since rtm started (cold loads only)


def navigate(page: Any, url: str) -> Load:
    """Open (or reload) the desk page and wait until every row is held."""
    page.goto(url, wait_until="commit")
    page.wait_for_function(DONE_JS, timeout=TIMEOUT_MS, polling=50)
    painted, held, origin = page.evaluate(SEEN_JS)
    return Load(painted / 1e3, held / 1e3, origin / 1e3)


def cold_load(page: Any, server: RtmServer, start: int) -> Load:
    """Open the page as rtm (re)starts: the first start's, or after restarting rtm."""
    if start:
        server.stop()
        server.start()
    listening = time.time()
    load = navigate(page, server.url + "/")
    ready = max(0.0, ready_at(server, listening) - load.started)
    return Load(load.painted, load.held, load.started, ready, timed_out(server, listening))


def measure() -> tuple[list[Load], list[Load]]:
    """COLD loads as rtm (re)starts on the same store, then WARM reloads."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)  # before rtm starts: its start-up is no load on rtm's
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            context.add_init_script(WATCH_JS % f"{CONTACTS:,} registered users")
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            with seeded_server(CONTACTS) as (server, _):
                context.add_cookies(cookies_for(server))  # type: ignore[arg-type]
                cold = [cold_load(page, server, start) for start in range(COLD)]
                warm = [navigate(page, server.url + "/") for _ in range(WARM)]
        finally:
            browser.close()
    if errors:
        raise RuntimeError(f"page errors: {errors}")
    return cold, warm


def run() -> list[Figure]:
    cold, warm = measure()
    painted = [load.painted - load.ready for load in cold]
    held = [load.held - load.ready for load in cold]
    best = min(warm, key=lambda load: load.held)
    rows = f"{CONTACTS:,} rows"
    starts = f"median of {COLD} starts of rtm"
    return [
        Figure("browser-connect", f"{rows}, cold: first rows painted, from rtm's first read in",
               seconds(statistics.median(painted)),
               f"target ≤ 1 s; {starts} ({spread(painted)}); from the navigation "
               f"{spread([load.painted for load in cold])}, rtm's first read in after "
               f"{spread([load.ready for load in cold])}"),
        Figure("browser-connect", f"{rows}, cold: whole table held, from rtm's first read in",
               seconds(statistics.median(held)),
               f"target ≤ 3 s; {starts} ({spread(held)}); from the navigation "
               f"{spread([load.held for load in cold])}; "
               f"{sum(load.failed for load in cold)} source reads failed meanwhile"),
        Figure("browser-connect", f"{rows}, warm: first rows painted", seconds(best.painted),
               f"target ≤ 1 s; best of {WARM} reloads, the shared body built "
               f"({spread([load.painted for load in warm])})"),
        Figure("browser-connect", f"{rows}, warm: whole table held", seconds(best.held),
               f"target ≤ 3 s; {spread([load.held for load in warm])}"),
    ]  # fmt: skip

"""Chromium on 100k rows taking 1,000 row changes/s as they arrive: frame times, DOM, heap.

A real ``rtm serve`` on a store of N contacts and real Chromium (Playwright) signed in on
the desk page. Once the headline shows all N, a thread refreshes random contacts at
``RATE``/s from its own connection (as Kamailio's db_sqlite would), each with a unique
User-Agent, and the server pushes them every ~50 ms. Meanwhile a requestAnimationFrame
loop in the page records the time between frames: the page keeps up when p95 stays within
one 60 Hz frame, and the DOM (only visible rows) and the heap end where they started.
Every ``ON_SCREEN``-th write goes to a row on screen, so after the churn each of those rows
must show the last value written to it. The same is measured on the quiet page for
``IDLE`` s first: the page's timer has 0.1 ms steps, so even a page doing nothing measures
some frames at 16.8 ms; frames dropped (over 1.5 frames) and the main thread's busy share
(Chromium's TaskDuration) say more than p95 about the headroom left.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server import store
from tests.browser.conftest import cookies_for, launch
from tests.live_server import RtmServer

from .churn import seeded_server
from .measure import Figure, compared, seconds, size

QUICK = os.environ.get("BENCH_QUICK") == "1"
CONTACTS = 20_000 if QUICK else 100_000
SECONDS = 8 if QUICK else 15
RATE = 1_000  # row changes per second
ON_SCREEN = 20
FRAME, A_FRAME = 1 / 60, "one 60 Hz frame"
IDLE = 3  # seconds of frames on the quiet page first: the jitter with nothing to do

# Frame start times from requestAnimationFrame into window.__rtm_run, until it is stopped
# (each run its own object, so a tick still pending from the last one cannot write here).
FRAMES_JS = """() => {
  const run = { frames: [], stop: false };
  window.__rtm_run = run;
  const tick = (t) => {
    run.frames.push(t);
    if (!run.stop) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""
STOP_JS = "() => { window.__rtm_run.stop = true; return window.__rtm_run.frames; }"
# Usernames of the rows wholly inside the grid's scroller (not the overscan).
ON_SCREEN_JS = """() => {
  const box = document.querySelector('#view-accounts .grid-scroll').getBoundingClientRect();
  return [...document.querySelectorAll('#view-accounts tr.row')]
    .filter((r) => { const b = r.getBoundingClientRect();
                     return b.top >= box.top && b.bottom <= box.bottom; })
    .map((r) => r.cells[0].textContent.trim());
}"""
# username -> the text of its row, for the rows in the DOM.
ROW_TEXTS_JS = """() => Object.fromEntries([...document.querySelectorAll('#view-accounts tr.row')]
  .map((r) => [r.cells[0].textContent.trim(), r.textContent]))"""


class Writer(threading.Thread):
    """Refreshes contacts at ``RATE``/s, every ``ON_SCREEN``-th one of ``shown``."""

    def __init__(self, db: str, ids: list[int], shown: list[int]) -> None:
        super().__init__(daemon=True)
        self.db, self.ids, self.shown = db, ids, shown
        self.count = RATE * SECONDS
        self.last: dict[int, str] = {}  # id of a shown contact -> the last agent written
        self.seconds = 0.0
        self.started = self.ended = 0.0  # time.monotonic() at the first and after the last

    def run(self) -> None:
        conn = store.connect(self.db)
        rng = random.Random(9)
        start, self.started = time.perf_counter(), time.monotonic()
        try:
            for n in range(self.count):
                time.sleep(max(0.0, start + n / RATE - time.perf_counter()))
                pool = self.shown if n % ON_SCREEN == 0 else self.ids
                agent, target = f"churn-{n}", rng.choice(pool)
                conn.execute(
                    "UPDATE location SET user_agent = ?, cseq = cseq + 1 WHERE id = ?",
                    (agent, target),
                )
                if pool is self.shown:
                    self.last[target] = agent
        finally:
            self.seconds = time.perf_counter() - start
            self.ended = time.monotonic()
            conn.close()


def metrics(cdp: Any) -> dict[str, float]:
    """Chromium's counters for the page (JSHeapUsedSize, TaskDuration in seconds, ...)."""
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def sample(page: Any, cdp: Any) -> tuple[int, float]:
    """(DOM elements, JS heap bytes after a full GC) of the page now."""
    cdp.send("HeapProfiler.collectGarbage")
    nodes: int = page.evaluate("document.getElementsByTagName('*').length")
    return nodes, metrics(cdp)["JSHeapUsedSize"]


def ids_of(db: str, usernames: list[str]) -> dict[int, str]:
    conn = store.connect(db)
    try:
        marks = ", ".join("?" for _ in usernames)
        sql = f"SELECT id, username FROM location WHERE username IN ({marks})"
        return dict(conn.execute(sql, usernames).fetchall())
    finally:
        conn.close()


def caught_up(page: Any, writer: Writer, names: dict[int, str], timeout: float = 5) -> float:
    """Seconds after the last write until every shown row shows its last agent."""
    deadline = time.monotonic() + timeout
    while True:
        texts = page.evaluate(ROW_TEXTS_JS)
        stale = [i for i, agent in writer.last.items() if agent not in texts.get(names[i], "")]
        if not stale:
            return time.monotonic() - writer.ended
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(stale)} rows on screen missed their last write")
        page.wait_for_timeout(20)


@dataclass(frozen=True)
class Result:
    """What one churn measured: frame times (s), DOM and heap before and after, the check."""

    idle: list[float]  # frame times (s) over IDLE seconds before the churn
    deltas: list[float]
    before: tuple[int, float]
    after: tuple[int, float]
    rate: float  # changes per second the writer reached
    pushes: float  # diff frames per second the page received meanwhile
    busy: tuple[float, float]  # the share of the time the page's main thread ran tasks:
    # during the churn, and on the quiet page before it
    checked: int  # rows on screen that were written to
    caught_up: float  # seconds after the last write until they all showed it


def churn(page: Any, cdp: Any, server: RtmServer, ids: list[int], diffs: list[float]) -> Result:
    """Frame times, DOM, heap and main thread over one churn; then the rows on screen checked.

    ``diffs`` fills with the arrival times of the page's diff frames.
    """
    names = ids_of(server.db, page.evaluate(ON_SCREEN_JS))
    writer = Writer(server.db, ids, list(names))
    task = metrics(cdp)["TaskDuration"]
    idle = frame_times(page, lambda: page.wait_for_timeout(IDLE * 1000))
    quiet = (metrics(cdp)["TaskDuration"] - task) / IDLE
    before = sample(page, cdp)
    task = metrics(cdp)["TaskDuration"]
    deltas = frame_times(page, lambda: write(page, writer))
    busy = (metrics(cdp)["TaskDuration"] - task) / writer.seconds
    late = caught_up(page, writer, names)
    pushes = sum(writer.started <= t <= writer.ended for t in diffs) / writer.seconds
    rate = writer.count / writer.seconds
    after = sample(page, cdp)
    shown = len(writer.last)
    return Result(idle, deltas, before, after, rate, pushes, (busy, quiet), shown, late)


def write(page: Any, writer: Writer) -> None:
    """Run the writer to its end, letting Playwright take the page's events meanwhile."""
    writer.start()
    while writer.is_alive():
        page.wait_for_timeout(100)


def frame_times(page: Any, during: Callable[[], object]) -> list[float]:
    """Seconds between animation frames in the page while ``during()`` runs."""
    page.evaluate(FRAMES_JS)
    during()
    frames: list[float] = page.evaluate(STOP_JS)
    return [(b - a) / 1e3 for a, b in itertools.pairwise(frames)]


def on_frame(payload: str | bytes, diffs: list[float]) -> None:
    if json.loads(payload).get("type") == "diff":
        diffs.append(time.monotonic())


def in_chromium(server: RtmServer, ids: list[int]) -> Result:
    from playwright.sync_api import expect, sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            context.add_cookies(cookies_for(server))  # type: ignore[arg-type]
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            diffs: list[float] = []
            page.on("websocket", lambda ws: ws.on("framereceived", lambda f: on_frame(f, diffs)))
            page.goto(server.url + "/")
            headline = page.locator("#accounts-title .headline")
            expect(headline).to_have_text(f" - {CONTACTS:,} registered users", timeout=120_000)
            cdp = context.new_cdp_session(page)
            cdp.send("Performance.enable")
            result = churn(page, cdp, server, ids, diffs)
        finally:
            browser.close()
    if errors:
        raise RuntimeError(f"page errors: {errors}")
    return result


def measure() -> Result:
    with seeded_server(CONTACTS) as (server, ids):
        return in_chromium(server, ids)


def dropped(deltas: list[float]) -> float:
    """The share of frames that took longer than one and a half 60 Hz frames."""
    return sum(d > 1.5 * FRAME for d in deltas) / len(deltas)


def frame_figure(what: str, value: float, quiet: float) -> Figure:
    """A frame time to the page timer's 0.1 ms, as a ratio to a 60 Hz frame to three places;
    the quiet page's figure alongside, since that timer's jitter alone makes some 16.8 ms."""
    ratio = f"{value / FRAME:.3f}× {A_FRAME}; quiet page {quiet * 1e3:.1f} ms"
    return Figure("browser", what, f"{value * 1e3:.1f} ms", ratio)


def run() -> list[Figure]:
    r = measure()
    load = f"{CONTACTS:,} rows, {r.rate:,.0f} changes/s"
    cuts = statistics.quantiles(r.deltas, n=100, method="inclusive")
    (nodes_before, heap_before), (nodes_after, heap_after) = r.before, r.after
    quiet = statistics.quantiles(r.idle, n=100, method="inclusive")
    frames = (("p95", cuts[94], quiet[94]), ("p50", cuts[49], quiet[49]))
    return [
        *(frame_figure(f"frame {n}, {load}", v, q) for n, v, q in frames),
        frame_figure(f"frame max, {load}", max(r.deltas), max(r.idle)),
        Figure(
            "browser", "diff frames the page received", f"{r.pushes:.1f}/s",
            f"{r.rate / r.pushes:.0f} changes each",
        ),
        Figure(
            "browser", "page main thread busy during the churn", f"{r.busy[0]:.1%}",
            f"{r.busy[1]:.1%} on the quiet page",
        ),
        Figure(
            "browser", f"frames dropped, {load}", f"{dropped(r.deltas):.1%}",
            f"{dropped(r.idle):.1%} on the quiet page",
        ),
        Figure(
            "browser", "DOM elements after the churn", f"{nodes_after:,}",
            f"{nodes_after / nodes_before:.3g}× at the start ({nodes_before:,})",
        ),
        compared(
            "browser", "JS heap after the churn (after a GC)", heap_after, heap_before,
            "at the start", unit=size,
        ),
        Figure(
            "browser", f"{r.checked} rows on screen written to", "all show their last write",
            f"{seconds(r.caught_up)} after it",
        ),
    ]  # fmt: skip

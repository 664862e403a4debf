"""``make soak``: weeks of a wall display compressed into ``SOAK_MINUTES`` (default 60).

A real ``rtm serve`` on 20,000 contacts taking 200 changes/s (bench/soak_life.py), real
Chromium on the desk page and on a kiosk page rotating its views. The server is restarted
every tenth of the run (10 minutes in an hour) and, now and then, frozen (SIGSTOP, then
SIGCONT: its sockets stop answering without closing). Every minute: each page's JS heap
after a collection (CDP ``Performance.getMetrics``), its DOM nodes and event listeners
(CDP ``Memory.getDOMCounters``), the server's RSS and open fds; printed as a table and
drawn to ``var/soak.png``. After every restart and at the end the writes are held and the
pages must show the server's table (bench/soak_compare.py). A second ``rtm serve`` on the
same store is never restarted nor frozen and has one WebSocket client: its RSS is the
server memory judged (the first one is a new process every ten minutes). Targets: heap,
DOM nodes and that RSS, averaged over the run's last tenth, grow ≤ 5% over their average
in its second tenth (minutes 10–20 against 50–60 of an hour: one restart period each);
0 page errors; the pages (and the steady server's client) equal their server.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import credentials
from tests.browser.conftest import cookies_for, launch
from tests.live_server import RtmServer

from . import soak_chart, soak_compare
from .soak_life import Life, seed

MINUTES = float(os.environ.get("SOAK_MINUTES", "60"))
SAMPLE_EVERY = float(os.environ.get("SOAK_SAMPLE_SECONDS", "60"))
GROWTH_LIMIT = 0.05
VAR = Path(__file__).resolve().parent.parent / "var"


@dataclass
class Plan:
    """When the server is restarted and frozen, scaled to the run's length."""

    minutes: float
    period: float = field(init=False)  # minutes between restarts
    freeze_seconds: float = field(init=False)
    events: list[tuple[float, str]] = field(init=False)  # (second of the run, what)

    def __post_init__(self) -> None:
        self.period = max(0.5, min(10.0, self.minutes / 6))
        self.freeze_seconds = min(30.0, self.period * 60 / 4)
        # Restarts half a period off the samples the growth is read from (same age both).
        events = [
            ((k + 0.5) * self.period * 60, "restart")
            for k in range(int(self.minutes / self.period))
        ]
        # A freeze every other period, a quarter of the way in.
        freezes = [
            ((k + 0.75) * self.period * 60, "freeze")
            for k in range(0, int(self.minutes / self.period), 2)
        ]
        end = self.minutes * 60
        self.events = sorted(e for e in events + freezes if e[0] + self.freeze_seconds < end)

    @property
    def growth_from(self) -> float:
        """The second from which growth is judged (minute 10 of an hour)."""
        return self.period * 60


@dataclass
class Sample:
    second: float
    pages: dict[str, dict[str, float]]  # page name -> heap, nodes, listeners
    rss: int
    fds: int
    steady_rss: int  # the server never restarted (a process's memory over the whole run)
    steady_fds: int
    writes: int  # contact changes written so far
    contacts: int  # contacts in the store (the table the pages hold)


class Soak:
    """The server, the writes, the two pages and what was seen."""

    def __init__(
        self, workdir: Path, minutes: float = MINUTES, say: Callable[[str], None] = print
    ) -> None:
        self.plan = Plan(minutes)
        self.say = say
        self.server = RtmServer(workdir, {"RTM_DEMO": "0", "PYTHONASYNCIODEBUG": ""})
        self.ids = seed(self.server.db)
        credentials.grant(self.server)
        # A second rtm on the same store, never restarted nor frozen, with one WebSocket
        # client: the restarts make the first one's RSS a new process's every ten minutes,
        # so memory growth over the hour is judged on this one.
        (workdir / "steady").mkdir()
        self.steady = RtmServer(
            workdir / "steady",
            {"RTM_DB": self.server.db, "RTM_DEMO": "0", "PYTHONASYNCIODEBUG": ""},
        )
        credentials.grant(self.steady)
        self.follower = soak_compare.Follower(self.steady)
        self.life = Life(
            self.server.db, self.ids, trunk_period=min(60.0, self.plan.period * 60 / 2)
        )
        self.samples: list[Sample] = []
        self.errors: list[str] = []
        self.comparisons: list[
            tuple[float, str, str]
        ] = []  # (second, when, "equal" or what differs)
        self.restarts = self.freezes = 0
        self.pages: dict[str, Any] = {}
        self.cdp: dict[str, Any] = {}

    def open_pages(self, browser: Any) -> None:
        for name, path, width, height in (
            ("desk", "/", 1440, 900),
            ("kiosk", f"/?kiosk=1&rotate={max(2, int(self.plan.period * 6))}", 1920, 1080),
        ):
            context = browser.new_context(
                viewport={"width": width, "height": height}, accept_downloads=True
            )
            context.add_cookies(cookies_for(self.server))
            page = context.new_page()
            self.watch(page, name)
            page.goto(self.server.url + path)
            cdp = context.new_cdp_session(page)
            cdp.send("Performance.enable")
            self.pages[name], self.cdp[name] = page, cdp

    def watch(self, page: Any, name: str) -> None:
        """Count the page's uncaught errors and dialogs (an injected script would open one)."""

        def on_error(error: Any) -> None:
            self.errors.append(f"{name}: {error}")

        def on_dialog(dialog: Any) -> None:
            self.errors.append(f"{name}: dialog {dialog.message!r}")
            dialog.dismiss()

        page.on("pageerror", on_error)
        page.on("dialog", on_dialog)

    def measure(self, second: float) -> Sample:
        pages = {}
        for name, cdp in self.cdp.items():
            cdp.send("HeapProfiler.collectGarbage")
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            counters = cdp.send("Memory.getDOMCounters")
            pages[name] = {
                "heap": metrics["JSHeapUsedSize"],
                "nodes": counters["nodes"],
                "listeners": counters["jsEventListeners"],
            }
        pid = self.server.proc.pid if self.server.proc else 0
        steady = self.steady.proc.pid if self.steady.proc else 0
        sample = Sample(
            second,
            pages,
            rss_of(pid),
            len(os.listdir(f"/proc/{pid}/fd")),
            rss_of(steady),
            len(os.listdir(f"/proc/{steady}/fd")),
            self.life.written,
            len(self.life.ids),
        )
        self.samples.append(sample)
        self.say(soak_chart.row(sample))
        return sample

    def restart(self) -> None:
        self.restarts += 1
        self.server.stop()
        self.server.start()

    def freeze(self, seconds: float, wait: Callable[[float], None]) -> None:
        self.freezes += 1
        assert self.server.proc is not None
        pid = self.server.proc.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            wait(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)

    def compare(self, second: float, when: str) -> None:
        """Hold the writes and check each page shows the server's tables."""
        self.life.pause()
        began, seen = time.monotonic(), list[str]()
        try:
            verdict = soak_compare.pages_equal_server(self.server, self.pages, seen, self.follower)
        finally:
            self.life.resume()
        self.comparisons.append((second, when, verdict))
        took = time.monotonic() - began
        self.say(f"{second / 60:5.1f}  page == server after {when}: {verdict} ({took:.1f} s)")
        for differs in dict.fromkeys(d[:40] for d in seen):  # what it waited for, once each
            self.say(f"         meanwhile: {differs}")

    def run(self, browser: Any) -> None:
        self.server.start()
        self.steady.start()
        self.follower.start()
        self.open_pages(browser)
        self.compare(0, "start")
        self.life.start()
        started = time.monotonic()

        def clock() -> float:
            return time.monotonic() - started

        def wait(seconds: float) -> None:  # sampling on while waiting
            until = clock() + seconds
            while clock() < until:
                if clock() >= next_sample[0]:
                    self.measure(next_sample[0])
                    next_sample[0] += SAMPLE_EVERY
                self.pages["desk"].wait_for_timeout(min(1000, max(1, (until - clock()) * 1000)))

        next_sample = [0.0]
        self.say(soak_chart.header())
        for at, what in self.plan.events:
            wait(at - clock())
            if what == "restart":
                self.restart()
                self.compare(clock(), "restart")
            else:
                self.freeze(self.plan.freeze_seconds, wait)
        wait(self.plan.minutes * 60 - clock() + 0.5)
        self.compare(clock(), "the end")
        self.life.stop()


def rss_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def soak(
    minutes: float = MINUTES, say: Callable[[str], None] = print, chart: Path | None = None
) -> Soak:
    """Run the soak (its chart drawn to ``chart``); returns what it saw."""
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory(prefix="rtm-soak-") as workdir,
        sync_playwright() as playwright,
    ):
        browser = launch(playwright)
        run = Soak(Path(workdir), minutes, say)
        try:
            run.run(browser)
            if chart is not None:
                soak_chart.draw(run.samples, chart, browser)
        finally:
            run.life.stop()
            run.follower.stop()
            run.server.stop()
            run.steady.stop()
            browser.close()
        return run


def main() -> int:
    VAR.mkdir(exist_ok=True)
    run = soak(chart=VAR / "soak.png")
    results = soak_chart.verdicts(
        run.samples, run.plan.growth_from, run.plan.period * 60, GROWTH_LIMIT
    )
    results.append(("0 page errors", not run.errors, f"{len(run.errors)}: {run.errors[:3]}"))
    unequal = [c for c in run.comparisons if c[2] != "equal"]
    results.append(
        (
            "page == server after every restart and at the end",
            not unequal,
            f"{len(run.comparisons)} comparisons, {len(unequal)} unequal {unequal[:2]}",
        )
    )
    print(
        f"\n{MINUTES:g} minutes; {run.restarts} restarts, {run.freezes} freezes of "
        f"{run.plan.freeze_seconds:.0f} s; {run.life.written:,} contact changes written"
        f" ({run.life.refused} refused while the store was busy, retried)"
    )
    for what, ok, detail in results:
        print(f"{'PASS' if ok else 'FAIL'}  {what}: {detail}")
    print(f"chart: {VAR / 'soak.png'}")
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Screenshots of the three views, desk (light) and kiosk (dark), from a demo rtm.

Run as ``python -m tests.browser.screenshots`` (``make screenshots``); writes PNGs into
docs/screenshots/. Starts its own rtm with demo traffic on a free port and a throw-away store.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import expect, sync_playwright

from server import store

from .. import credentials
from ..live_server import RtmServer
from .conftest import cookies_for, launch

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWS = ("accounts", "trunks", "queue")
DESK = {"width": 1440, "height": 900}
KIOSK = {"width": 1920, "height": 1080}


def wait_for_data(page: Any, view: str) -> None:
    """Wait until the view and the tiles show the demo's rows."""
    expect(page.locator(f"#view-{view}")).to_be_visible()
    expect(page.locator(f"#view-{view} tr.row").first).to_be_visible(timeout=30_000)
    for name in ("users", "trunks", "queue"):
        expect(page.locator(f'.tile[data-tile="{name}"] .tile-value')).not_to_have_text("–")


def shoot(
    browser: Any, server: RtmServer, name: str, query: str, viewport: dict[str, int], theme: str
) -> Path:
    """Open the page with `query` and save a screenshot as docs/screenshots/<name>.png."""
    context = browser.new_context(viewport=viewport, device_scale_factor=1)
    context.add_cookies(cookies_for(server))
    context.add_init_script(f"localStorage.setItem('rtm.theme', '{theme}')")
    page = context.new_page()
    page.goto(f"{server.url}/{query}")
    view = next((v for v in VIEWS if f"view={v}" in query), "accounts")
    wait_for_data(page, view)
    if name == "desk-details":
        page.locator("#view-accounts a.cell-link").first.click()
        expect(page.locator(".details dl").first).to_be_visible()
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path))
    context.close()
    return path


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rtm-shots-") as workdir:
        server = RtmServer(Path(workdir), {"RTM_DEMO": "1", "RTM_TZ": "Europe/Rome"})
        store.migrate(server.db)
        credentials.grant(server)
        server.start()
        try:
            with sync_playwright() as playwright:
                browser = launch(playwright)
                shots = [("desk-details", "?account=", DESK, "light")]
                for view in VIEWS:
                    query = "" if view == "accounts" else f"?view={view}"
                    shots.append((f"desk-{view}", query, DESK, "light"))
                    kiosk = f"?kiosk=1&view={view}" if view != "accounts" else "?kiosk=1"
                    shots.append((f"kiosk-{view}", kiosk, KIOSK, "dark"))
                for name, query, viewport, theme in shots:
                    if name == "desk-details":
                        query = ""
                    print(shoot(browser, server, name, query, viewport, theme))
                browser.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Screenshots of the three views, desk (light) and kiosk (dark), a laptop (1280×800) and a
phone (390×844), from a demo rtm.

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
# The small screens a NOC also has: a laptop, and a phone on call.
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def wait_for_data(page: Any, view: str) -> None:
    """Wait until the view and the tiles show the demo's rows."""
    expect(page.locator(f"#view-{view}")).to_be_visible()
    expect(page.locator(f"#view-{view} tr.row").first).to_be_visible(timeout=30_000)
    for name in ("users", "trunks", "queue"):
        expect(page.locator(f'.tile[data-tile="{name}"] .tile-value')).not_to_have_text("–")


def open_busiest_account(page: Any) -> None:
    """Open the details of an account shown with more than one contact (else the first)."""
    names = page.locator("#view-accounts a.cell-link").all_text_contents()
    name = next((n for n in names if names.count(n) > 1), names[0])
    page.locator("#view-accounts").get_by_role("link", name=name, exact=True).first.click()
    expect(page.locator(".details .contact-card").first).to_be_visible()
    page.mouse.move(0, 0)  # no hover underline in the picture


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
        open_busiest_account(page)
    path = OUT / f"{name}.png"
    # Finished flashes and fades, not a frame caught mid-animation.
    page.screenshot(path=str(path), animations="disabled")
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
                shots = []
                for view in VIEWS:
                    query = "" if view == "accounts" else f"?view={view}"
                    shots.append((f"desk-{view}", query, DESK, "light"))
                    kiosk = f"?kiosk=1&view={view}" if view != "accounts" else "?kiosk=1"
                    shots.append((f"kiosk-{view}", kiosk, KIOSK, "dark"))
                shots.append(("laptop-accounts", "", LAPTOP, "light"))
                shots.append(("laptop-trunks", "?view=trunks", LAPTOP, "light"))
                shots.append(("phone-accounts", "", PHONE, "dark"))
                shots.append(("phone-trunks", "?view=trunks", PHONE, "dark"))
                # Last: by then the demo has queued messages and re-registered phones.
                shots.append(("desk-details", "", DESK, "light"))
                for name, query, viewport, theme in shots:
                    print(shoot(browser, server, name, query, viewport, theme))
                browser.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

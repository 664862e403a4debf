"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright against a real rtm.

One browser per test module (see `browser`); each test gets fresh contexts, carrying
the server's session cookie, so nothing leaks between tests. Any JavaScript dialog or
uncaught page error fails the test: the page must never run an injected script.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..live_server import UNIT, RtmServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Playwright timeouts are in milliseconds; every wait is a multiple of the suite's unit.
MS = 1000 * UNIT

OpenPage = Callable[..., Any]


def launch(playwright: Any) -> Any:
    """Launch headless Debian Chromium with the flags every test and script uses."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def require_chromium() -> None:
    """Skip without Chromium on a developer box; in CI a missing browser is a failure."""
    if Path(CHROMIUM).exists():
        return
    message = f"{CHROMIUM} is missing (make test installs Debian's chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def cookies_for(server: RtmServer) -> list[dict[str, Any]]:
    """The server's credentials as Playwright cookies."""
    return [
        {"name": name, "value": value, "url": server.url, "httpOnly": True, "sameSite": "Strict"}
        for name, value in server.cookies.items()
    ]


# Module scope, not session: Playwright's sync API keeps its event loop running while it is
# open, and pytest-asyncio tests that land on the same xdist worker cannot start theirs then.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


# Init script for fresh_page (and pages that add it): records what the page would do if an
# injected string ever became markup.
WATCH = """
window.__rtm_csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__rtm_csp.push(e.violatedDirective + ' ' + e.blockedURI));
window.alert = (m) => { window.__rtm_pwned = String(m); };
"""


@pytest.fixture
def fresh_page(browser: Any) -> Iterator[Any]:
    """A browser context with no cookies, failing on dialogs and page errors like open_page."""
    context = browser.new_context()
    context.set_default_timeout(10 * MS)
    problems: list[str] = []
    page = context.new_page()
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message!r}"), d.dismiss()))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.add_init_script(WATCH)
    yield page
    context.close()
    assert not problems, problems


@pytest.fixture
def open_page(browser: Any) -> Iterator[OpenPage]:
    """``open_page(server, "/?view=trunks", width=1440, height=900, signed_in=True)`` → a Page.

    Each call gets its own browser context, with the server's cookies unless signed_in=False;
    ``prepare(page)`` runs before the navigation (e.g. to hold a request with ``page.route``).
    At teardown, any dialog or uncaught page error seen fails the test.
    """
    contexts: list[Any] = []
    problems: list[str] = []

    def open_(
        server: RtmServer,
        path: str = "/",
        width: int = 1440,
        height: int = 900,
        signed_in: bool = True,
        prepare: Callable[[Any], None] | None = None,
    ) -> Any:
        context = browser.new_context(
            viewport={"width": width, "height": height}, accept_downloads=True
        )
        context.set_default_timeout(10 * MS)
        contexts.append(context)
        if server.cookies and signed_in:
            context.add_cookies(cookies_for(server))
        if server.headers:
            context.set_extra_http_headers(server.headers)
        page = context.new_page()

        def on_dialog(dialog: Any) -> None:
            problems.append(f"dialog opened: {dialog.type} {dialog.message!r}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        if prepare is not None:
            prepare(page)
        page.goto(server.url + path)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not problems, problems

"""The page per role: people sign out (admins also reach /admin), a wall display is offered no
details, and the details panel says why when the API answers 401, 403 or 404."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pytest
from playwright.sync_api import expect

from server.auth import Auth
from server.auth.sessions import COOKIE_NAME
from server.config import Config

from ..live_server import RtmServer
from ..store_rows import add_contact, add_message
from .conftest import MS, OpenPage
from .page import row_with

pytestmark = pytest.mark.browser


def open_as(open_page: OpenPage, server: RtmServer, cookie: str, path: str = "/") -> Any:
    """A page signed in with `cookie` (a session of any role), opened at `path`."""
    page = open_page(server, "/login", signed_in=False)
    page.context.add_cookies(
        [{"name": COOKIE_NAME, "value": cookie, "url": server.url, "httpOnly": True}]
    )
    page.goto(server.url + path)
    return page


def operator_session(server: RtmServer, name: str = "olga") -> str:
    auth = Auth(Config(db=server.db))
    auth.users.add(name, "operator", "operator-password")
    return auth.sessions.start("user", name)


def test_operator_signs_out_and_the_session_is_gone(
    rtm_server: RtmServer, open_page: OpenPage
) -> None:
    cookie = operator_session(rtm_server)
    page = open_as(open_page, rtm_server, cookie)
    expect(page.locator(".link")).to_have_attribute("data-state", "live")
    expect(page.locator(".user")).to_have_text("olga · operator")
    expect(page.locator(".admin-link")).to_be_hidden()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    # The server ended the session: the old cookie opens nothing, in the browser or outside.
    page.goto(rtm_server.url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    rtm_server.cookies = {COOKIE_NAME: cookie}
    assert rtm_server.get("/api/trunks").status_code == 401


def test_admin_has_admin_link_and_kiosk_shows_no_account_controls(
    rtm_server: RtmServer, open_page: OpenPage
) -> None:
    page = open_page(rtm_server)
    expect(page.locator(".user")).to_have_text("admin · admin")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.get_by_role("link", name="Admin").click()
    expect(page).to_have_url(rtm_server.url + "/admin")
    kiosk = open_page(rtm_server, "/?kiosk=1", width=1920, height=1080)
    expect(kiosk.locator(".link")).to_have_attribute("data-state", "live")
    expect(kiosk.locator(".account")).to_be_hidden()
    expect(kiosk.get_by_role("button", name="Sign out")).to_be_hidden()
    expect(kiosk.get_by_role("link", name="Admin")).to_be_hidden()


def test_display_is_offered_no_details_and_a_details_url_shows_nothing(
    rtm_server: RtmServer, open_page: OpenPage
) -> None:
    add_contact(rtm_server.db, "on-the-wall")
    add_message(rtm_server.db, "m-wall", from_number="+390001", to_number="+390002")
    token = Auth(Config(db=rtm_server.db)).displays.add("wall-1")
    details_requests: list[str] = []
    page = open_page(rtm_server, "/login", width=1920, height=1080, signed_in=False)
    # Listening before the wall URL loads: a details fetch on the first load counts too.
    page.on(
        "request",
        lambda r: details_requests.append(r.url) if "/api/accounts/" in r.url else None,
    )
    # The wall's own URL, carrying a details link someone shared: the kiosk opens, no panel.
    page.goto(f"{rtm_server.url}/?display={token}&account=on-the-wall")
    expect(page.locator("body")).to_have_class("kiosk")
    expect(row_with(page, "on-the-wall")).to_be_visible()
    expect(page.locator(".link")).to_have_attribute("data-state", "live")
    expect(page.locator(".details")).to_be_hidden()
    # Not kiosk: the display's session cookie on a desk URL, with a details link.
    page.goto(rtm_server.url + "/?account=on-the-wall")
    expect(page.locator("body")).not_to_have_class("kiosk")
    expect(row_with(page, "on-the-wall")).to_be_visible()
    expect(page.locator(".link")).to_have_attribute("data-state", "live")
    expect(page.locator(".user")).to_have_text("wall-1 · display")
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    expect(page.get_by_role("link", name="Admin")).to_be_hidden()
    expect(page.locator(".details")).to_be_hidden()
    expect(page).not_to_have_url(re.compile("account="))
    # Usernames are text, not links; a click and Enter open nothing.
    username = row_with(page, "on-the-wall").locator("a.cell-link")
    expect(username).not_to_have_attribute("href", re.compile("."))
    expect(page.locator("#view-accounts a.cell-link[href]")).to_have_count(0)
    username.click()
    page.locator("#view-accounts table").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator(".details")).to_be_hidden()
    # The queue's Received is text too, and a message URL shows nothing either.
    page.goto(rtm_server.url + "/?view=queue&message=m-wall")
    expect(row_with(page, "+390001", "queue")).to_be_visible()
    expect(page.locator("#view-queue a.cell-link[href]")).to_have_count(0)
    expect(page.locator(".details")).to_be_hidden()
    assert details_requests == []


def test_details_say_no_longer_registered_and_left_the_queue(
    rtm_server: RtmServer, open_page: OpenPage
) -> None:
    page = open_as(open_page, rtm_server, operator_session(rtm_server), "/?account=ghost")
    details = page.locator(".details")
    expect(details).to_contain_text("ghost is no longer registered")
    page.goto(rtm_server.url + "/?view=queue&message=long-gone")
    expect(details).to_contain_text("This message has left the queue")


def test_details_answer_403_is_shown_inline_and_401_goes_to_login(
    rtm_server: RtmServer, open_page: OpenPage
) -> None:
    add_contact(rtm_server.db, "alice")
    page = open_page(rtm_server)
    # A role the server refuses (e.g. changed while the page was open): said in words.
    page.route("**/api/accounts/**", lambda route: route.fulfill(status=403, json={}))
    row_with(page, "alice").locator("a.cell-link").click()
    expect(page.locator(".details .notice-forbidden")).to_contain_text(
        "may not open account details"
    )
    page.keyboard.press("Escape")
    expect(page.locator(".details")).to_be_hidden()
    # The session ended: to the login page, coming back to this account afterwards.
    page.unroute("**/api/accounts/**")
    page.route("**/api/accounts/**", lambda route: route.fulfill(status=401, json={}))
    row_with(page, "alice").locator("a.cell-link").click()
    expect(page).to_have_url(re.compile(r"/login\?next="), timeout=5 * MS)
    nxt = unquote(parse_qs(urlparse(page.url).query)["next"][0])
    assert parse_qs(urlparse(nxt).query)["account"] == ["alice"]

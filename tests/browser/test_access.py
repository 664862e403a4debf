"""The page under access control: a display token opens the kiosk; a dead credential logs out."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from server.auth import Auth
from server.config import Config

from ..store_rows import add_contact
from .conftest import MS, OpenPage
from .page import row_with

pytestmark = pytest.mark.browser


def test_display_token_opens_live_kiosk_and_revocation_logs_it_out(
    rtm_server: Any, open_page: OpenPage
) -> None:
    auth = Auth(Config(db=rtm_server.db))
    token = auth.displays.add("wall-1")
    add_contact(rtm_server.db, "on-the-wall")
    page = open_page(rtm_server, f"/?display={token}", width=1920, height=1080, signed_in=False)
    expect(page.locator("body")).to_have_class("kiosk")
    expect(row_with(page, "on-the-wall")).to_be_visible()
    expect(page.locator(".link")).to_have_attribute("data-state", "live")
    assert token not in page.url
    auth.displays.revoke("wall-1")
    # The server closes the socket; the page finds it is logged out and goes to the login page.
    expect(page).to_have_url(re.compile(r"/login\?next="), timeout=10 * MS)


def test_unauthenticated_page_goes_to_login(rtm_server: Any, open_page: OpenPage) -> None:
    page = open_page(rtm_server, "/?view=trunks", signed_in=False)
    expect(page).to_have_url(re.compile(r"/login"), timeout=5 * MS)

"""Alarm handling: acknowledge per trunk until it recovers, the queue-age sound, reminders,
and opt-in notifications while the tab is in the background."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

from ..store_rows import add_message, add_trunk, set_trunk_status
from .conftest import MS, OpenPage
from .page import tile

pytestmark = pytest.mark.browser

# Records every oscillator the page starts (a beep is several), without touching its code.
RECORD_TONES = """
window.__tones = [];
const original = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  const oscillator = original.call(this);
  window.__tones.push(oscillator);
  return oscillator;
};
"""
SOUND_ON = "localStorage.setItem('rtm.sound', 'on');"


def tones(page: Any) -> list[int]:
    """The frequencies of every tone the page has started, in order."""
    return page.evaluate("window.__tones.map(o => Math.round(o.frequency.value))")


def seed_two_trunks(db: str) -> None:
    for name in ("carrier-a", "carrier-b"):
        add_trunk(db, name, host=f"sip.{name}.example")
        set_trunk_status(db, name, "OK")


def sound_on(page: Any, server: Any, path: str) -> None:
    """Reload with the sound on (remembered) and unlocked by a click, as a desk would be."""
    page.context.add_init_script(RECORD_TONES + SOUND_ON)
    page.goto(server.url + path)
    expect(page.locator("button.sound")).to_have_text("Sound on")
    page.locator(".tiles").click(position={"x": 2, "y": 2})  # a gesture: audio may start


def wait_ticks(page: Any, count: int) -> None:
    """Let the page's clock tick `count` times (its alarms are checked once a second)."""
    clock = page.locator(".clock")
    for _ in range(count):
        expect(clock).not_to_have_text(clock.text_content() or "", timeout=3 * MS)


def test_an_acknowledged_trunk_stays_shown_but_stops_calling_until_it_recovers(
    start_rtm: Any, open_page: OpenPage
) -> None:
    server = start_rtm(seed=seed_two_trunks)
    page = open_page(server, "/?view=trunks&alarm_repeat=1")
    sound_on(page, server, "/?view=trunks&alarm_repeat=1")
    trunks = tile(page, "trunks")
    expect(trunks).to_have_attribute("data-level", "ok")
    set_trunk_status(server.db, "carrier-b", "FAILED", reason="408 Request Timeout")
    alarm = page.locator('.alarm[data-alarm="trunk:carrier-b"]')
    expect(alarm).to_contain_text("carrier-b FAILED for")
    expect(alarm).to_contain_text("408 Request Timeout")
    expect(trunks).to_have_attribute("data-unacked", "")  # it pulses
    page.wait_for_function("() => window.__tones.length >= 6")  # the beep, then a reminder
    alarm.get_by_role("button", name="Acknowledge carrier-b").click()
    expect(alarm).to_have_attribute("data-acked", "true")
    expect(alarm).to_contain_text("acknowledged")
    expect(trunks).not_to_have_attribute("data-unacked", "")
    expect(trunks).to_have_attribute("data-level", "alarm")  # still red: still down
    heard = len(tones(page))
    wait_ticks(page, 3)
    assert len(tones(page)) == heard, "an acknowledged alarm kept beeping"
    # Remembered in this browser, for this failure.
    page.reload()
    expect(page.locator('.alarm[data-alarm="trunk:carrier-b"]')).to_have_attribute(
        "data-acked", "true"
    )
    # FAILED → PENDING is not a recovery: still acknowledged.
    set_trunk_status(server.db, "carrier-b", "PENDING")
    expect(alarm).to_contain_text("carrier-b PENDING", timeout=2 * MS)
    expect(alarm).to_have_attribute("data-acked", "true")
    # It recovers: the alarm and its acknowledgement go; the next failure calls again.
    set_trunk_status(server.db, "carrier-b", "OK")
    expect(alarm).to_have_count(0, timeout=2 * MS)
    assert "trunk:carrier-b" not in page.evaluate("localStorage.getItem('rtm.acks')")
    set_trunk_status(server.db, "carrier-b", "FAILED", reason="503")
    expect(alarm).to_have_attribute("data-acked", "false", timeout=2 * MS)
    expect(trunks).to_have_attribute("data-unacked", "")


def test_the_queue_age_alarm_sounds_its_own_tone_and_can_be_acknowledged(
    rtm_server: Any, open_page: OpenPage
) -> None:
    add_message(rtm_server.db, "m-1", received=int((time.time() - 1) * 1000))
    page = open_page(rtm_server, "/?view=queue&queue_alarm=4&alarm_repeat=0")
    sound_on(page, rtm_server, "/?view=queue&queue_alarm=4&alarm_repeat=0")
    oldest = tile(page, "oldest")
    expect(oldest).to_have_attribute("data-level", "ok")
    expect(oldest).to_have_attribute("data-level", "warn", timeout=6 * MS)
    page.wait_for_function("() => window.__tones.length >= 2")
    assert tones(page) == [440, 440]  # the queue's two low tones, not a trunk's three
    alarm = page.locator('.alarm[data-alarm="queue"]')
    expect(alarm).to_contain_text("Oldest queued message waiting")
    expect(oldest).to_have_attribute("data-unacked", "")
    alarm.get_by_role("button", name="Acknowledge the queue alarm").click()
    expect(oldest).not_to_have_attribute("data-unacked", "")
    expect(oldest).to_have_attribute("data-level", "warn")


# Notifications the page shows, and a tab the test can send to the background.
NOTIFICATIONS = """
window.__notes = [];
window.__hidden = false;
const Real = window.Notification;
window.Notification = class extends Real {
  constructor(title, options) {
    window.__notes.push(`${title} | ${options?.body ?? ''}`);
    super(title, options);
  }
};
Object.defineProperty(Document.prototype, 'visibilityState',
  { configurable: true, get: () => (window.__hidden ? 'hidden' : 'visible') });
"""


def test_notifications_are_opt_in_and_only_while_the_tab_is_in_the_background(
    start_rtm: Any, open_page: OpenPage
) -> None:
    server = start_rtm(seed=seed_two_trunks)
    page = open_page(server, "/?view=trunks")
    page.context.grant_permissions(["notifications"], origin=server.url)
    page.context.add_init_script(NOTIFICATIONS)
    page.reload()
    notify = page.get_by_role("button", name="Notify off")
    expect(tile(page, "trunks")).to_have_attribute("data-level", "ok")
    set_trunk_status(server.db, "carrier-a", "FAILED")  # not opted in: no notification
    expect(tile(page, "trunks")).to_have_attribute("data-level", "alarm", timeout=2 * MS)
    notify.click()
    expect(page.locator("button.notify")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("button.notify")).to_have_text("Notify on")
    set_trunk_status(server.db, "carrier-a", "OK")
    expect(tile(page, "trunks")).to_have_attribute("data-level", "ok", timeout=2 * MS)
    set_trunk_status(server.db, "carrier-a", "FAILED")  # opted in, but the tab is in front
    expect(tile(page, "trunks")).to_have_attribute("data-level", "alarm", timeout=2 * MS)
    page.evaluate("window.__hidden = true")
    set_trunk_status(server.db, "carrier-b", "FAILED", reason="408 Request Timeout")
    page.wait_for_function("() => window.__notes.length > 0")
    assert page.evaluate("window.__notes") == ["rtm: carrier-b FAILED | 408 Request Timeout"]
    page.reload()  # remembered
    expect(page.locator("button.notify")).to_have_text("Notify on")

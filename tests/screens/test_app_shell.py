"""The app shell through real Kivy rendering: header, roles, language, idle, lockdown."""

import time

import pytest

from tests.helpers import AppHarness, write_config


@pytest.fixture
def harness(tmp_path):
    h = AppHarness(write_config(tmp_path))
    yield h
    h.close()


def test_home_shows_a_tile_per_role_and_switches_language_live(harness):
    assert harness.app.sm.current == "home"
    harness.find("取号")
    harness.find("办件查询")
    harness.tap(harness.app.header.ids.lang)
    assert harness.app.lang == "en"
    harness.find("Take a ticket")
    assert not any("取号" in t for t in harness.texts(harness.app.sm.current_screen))
    assert harness.app.header.ids.lang.text == "中文"
    # Header texts built in Python follow at once, not at the next clock tick.
    assert "周" not in harness.app.clock_text
    assert harness.app.net_text and not any("\u4e00" <= ch <= "\u9fff" for ch in harness.app.net_text)


def test_idle_timeout_returns_home_and_resets_language(harness):
    app = harness.app
    app.go("lookup")
    app.toggle_language()
    assert app.sm.current == "lookup" and app.lang == "en"
    # Pretend the last touch was longer ago than the timeout.
    app.last_activity = time.monotonic() - app.rt.cfg.display.idle_timeout - 1
    harness.pump_for(1.3)
    assert app.sm.current == "home"
    assert app.lang == "zh"


def test_escape_and_window_close_are_ignored(harness):
    w = harness.Window
    assert w.dispatch("on_request_close") is True
    assert w.dispatch("on_keyboard", 27, 0, None, [], None) is True


def test_single_role_device_has_its_role_screen_as_home(tmp_path):
    h = AppHarness(write_config(tmp_path, {"device": {"roles": ["lookup"]}}))
    try:
        assert h.app.home_name == "lookup"
        assert h.app.sm.screen_names == ["lookup"]  # the technician screen is built when first opened
    finally:
        h.close()

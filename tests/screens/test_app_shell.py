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


def test_hall_notices_from_the_central_config_show_where_it_says_in_both_languages(harness):
    """Issue 15.9: messages of the central config under the header, per screen."""
    from kiosk.core import keys

    h = harness
    h.rt.cache.set(
        keys.CENTRAL_CONFIG,
        {
            "messages": [
                {"id": "n", "zh": "请携带身份证原件办理业务", "en": "Please bring your original ID card"},
                {"id": "d", "zh": "取号请排队", "en": "Queue [b]here[/b]", "where": ["dispenser"]},
                {"id": "bad", "zh": 5, "en": None},
            ]
        },
    )
    bar = h.app.notices
    h.app._notices_due = 0.0
    assert h.wait_until(lambda: bar.lines, timeout=10)
    text = lambda: bar.ids.notice_text.text
    assert "请携带身份证原件办理业务" in text() and "Please bring your original ID card" in text()
    assert "取号请排队" not in text()  # home is not where that one says
    assert bar.height > 0 and bar.opacity == 1
    h.app.go("dispenser")
    assert h.wait_until(lambda: "取号请排队" in text())
    assert "Queue &bl;b&br;here&bl;/b&br;" in text()  # the central's text is shown, never markup
    h.tap(h.app.header.ids.lang)  # English first, Chinese beneath
    assert h.wait_until(lambda: text().startswith("Please bring"))
    h.rt.cache.set(keys.CENTRAL_CONFIG, {"messages": []})
    h.app._notices_due = 0.0
    assert h.wait_until(lambda: not bar.lines, timeout=10)
    h.pump(2)
    assert bar.height == 0


def test_role_screens_are_built_on_first_use_and_a_scan_on_home_still_opens_the_lookup(harness):
    """Start-up builds only the home screen; a role's service event builds its screen and reaches it once."""
    app = harness.app
    assert app.sm.screen_names == ["home"]
    calls = []
    real = app.rt.lookup.service.lookup_scan
    app.rt.lookup.service.lookup_scan = lambda scan: calls.append(scan) or real(scan)
    app.rt.lookup.scanner.inject("https://zw.example.gov.cn/q?r=ZW2026000777&c=482913")
    assert harness.wait_until(lambda: app.sm.current == "lookup", 10)
    screen = app.screen("lookup")
    assert harness.wait_until(lambda: screen.mode in ("message", "result"), 10)
    assert len(calls) == 1  # routed by the app, not also by the screen
    assert sorted(app.sm.screen_names) == ["home", "lookup"]
    app.go_home()
    app.rt.lookup.scanner.inject("https://zw.example.gov.cn/q?r=ZW2026000778&c=482913")
    assert harness.wait_until(lambda: app.sm.current == "lookup" and len(calls) == 2, 10)
    harness.pump_for(0.3)
    assert len(calls) == 2  # the built screen gets each scan once
    app.go("pad")
    assert sorted(app.sm.screen_names) == ["home", "lookup", "pad"]


def test_no_stencil_pass_outside_a_scroll_view(harness):
    """A stencil is a mask pass plus a test on every pixel (bench/lookup_frame.py): the screen
    managers draw none; only a scroll view clips what scrolls (a small photo frame may)."""
    from kivy.graphics import StencilPush
    from kivy.uix.scrollview import ScrollView

    app = harness.app
    for name in ("dispenser", "lookup", "pad"):
        app.go(name)
    harness.pump(3)
    stack, found = [app.root], []
    while stack:
        w = stack.pop()
        stack.extend(w.children)
        for cv in (w.canvas.before, w.canvas, w.canvas.after):
            big = w.width * w.height > 0.25 * harness.Window.width * harness.Window.height
            if big and any(isinstance(i, StencilPush) for i in cv.children) and not isinstance(w, ScrollView):
                found.append(type(w).__name__)
    assert not found, found

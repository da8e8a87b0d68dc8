"""Every pad state fits the 7" 800x480 panel, in English with large text (the
tightest case): nothing drawn outside the window, no word broken or clipped."""

import re

import pytest
from kivy.core.text.markup import MarkupLabel
from kivy.uix.label import Label
from kivy.uix.scrollview import ScrollView

from screens.pad import FitText
from tests.helpers import AppHarness, refused_url, write_config


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("layout")
    h = AppHarness(
        write_config(
            tmp,
            {
                "device": {"roles": ["pad"]},
                "display": {"width": 800, "height": 480, "large_text": True},
                "central": {"url": refused_url(), "allow_http": True},
            },
        ),
        lang="en",
    )
    size = h.Window.size
    h.Window.size = (800, 480)
    h.pump(3)
    yield h
    h.close()
    h.Window.size = size  # the window is shared: later tests lay out at the usual size


def visible(h):
    return [w for w in h.walk(h.app.sm.current_screen) if isinstance(w, Label) and w.text and w.opacity > 0]


def in_scroll(w):
    """Inside a ScrollView a widget may sit beyond the view: it is scrolled to, not clipped."""
    p = w.parent
    while p is not None and p is not p.parent:
        if isinstance(p, ScrollView):
            return True
        p = p.parent
    return False


def problems(h):
    W, H = h.Window.size
    out = []
    for w in visible(h):
        x0, y0 = w.to_window(w.x, w.y)
        x1, y1 = w.to_window(w.right, w.top)
        if not in_scroll(w) and (x0 < -1 or y0 < -1 or x1 > W + 1 or y1 > H + 1):
            out.append(f"{w.text!r} drawn outside the window at {(x0, y0, x1, y1)}")
        if isinstance(w, FitText) and w.text_size[0]:
            box_w, box_h = w.text_size
            m = MarkupLabel(
                text=w.text, font_size=w.font_size, font_name=w.font_name, bold=w.bold, text_size=(box_w, None)
            )
            m.refresh()
            if m.content_size[1] > box_h + 1:
                out.append(f"{w.text!r} is taller than its button")
            for word in re.sub(r"\[[^\]]*\]", " ", w.text).split():
                if re.fullmatch(r"[A-Za-z'().,-]+", word):
                    one = MarkupLabel(text=word, font_size=w.font_size, font_name=w.font_name, bold=w.bold)
                    one.refresh()
                    if one.content_size[0] > box_w + 1:
                        out.append(f"{word!r} in {w.text!r} is broken across lines")
    return out


def test_every_state_fits_800x480_in_english_large_text(harness):
    h = harness
    screen, svc = h.app.screen("pad"), h.rt.pad.service
    svc.store_card({"staff_id": "S1", "name": "王丽华", "employee_no": "10201", "stars": 4}, None)
    seen = {}
    h.pump(4)
    seen["idle"] = problems(h)
    svc.on_window_session({"state": "paused"})
    assert h.wait_until(lambda: screen.mode == "paused")
    h.pump(3)
    seen["paused"] = problems(h)
    svc.on_window_session({"state": "idle"})
    svc.open_session("layout-1", origin="central")
    assert h.wait_until(lambda: screen.mode == "rate")
    h.pump(4)
    seen["rate"] = problems(h)
    screen.pick_level(1)
    h.pump(4)
    assert screen.mode == "reasons"
    seen["reasons"] = problems(h)
    screen.open_phone()
    for d in "13812345678":
        screen.press_key(d)
    h.pump(4)
    seen["phone"] = problems(h)
    screen.accept_phone()
    screen.toggle_reason(svc.reasons().items[0]["code"])
    screen.submit_reasons()
    assert h.wait_until(lambda: screen.mode == "thanks")
    h.pump(4)
    seen["thanks"] = problems(h)
    assert {k: v for k, v in seen.items() if v} == {}


def test_the_choice_on_screen_reaches_the_service_and_a_touch_extends_the_time(harness):
    """Issue 15.2: reasons ticked but not submitted are the service's to record."""
    from kivy.tests.common import UnitTestTouch

    h = harness
    screen, svc = h.app.screen("pad"), h.rt.pad.service
    svc.open_session("choice-1", origin="central")
    assert h.wait_until(lambda: screen.mode == "rate")
    screen.pick_level(2)
    assert h.wait_until(lambda: screen.mode == "reasons")
    code = svc.reasons().items[0]["code"]
    screen.toggle_reason(code)
    assert h.wait_until(lambda: svc.current() is not None and svc.current().reasons == (code,))
    before = svc.current().deadline
    h.pump(2)
    touch = UnitTestTouch(5, 5)
    touch.touch_down()
    touch.touch_up()
    assert svc.current().deadline > before
    svc.open_session("choice-2", origin="central")  # the next service ends before a submit
    body = svc.ledger.query("SELECT body FROM ratings WHERE session_id = 'choice-1'")[0]["body"]
    assert '"level":2' in body and code in body and '"auto_submitted":true' in body
    # No thank-you for a rating the citizen did not submit: the next invitation shows.
    assert h.wait_until(lambda: screen._session_id == "choice-2" and screen.mode == "rate")
    assert screen._thanks_ev is None
    svc.submit(5, session_id="choice-2")
    assert h.wait_until(lambda: screen.mode == "thanks")


def test_the_phone_number_shows_whole_while_typed_and_masked_once_accepted(harness):
    h = harness
    screen, svc = h.app.screen("pad"), h.rt.pad.service
    svc.open_session("phone-shown", origin="central")
    assert h.wait_until(lambda: screen.mode == "rate")
    screen.pick_level(1)
    assert h.wait_until(lambda: screen.mode == "reasons")
    screen.open_phone()
    for d in "13812345678":
        screen.press_key(d)
    h.pump(2)
    assert screen.ids.phone_display.text == "138 1234 5678"  # a typo can be seen and fixed
    screen.accept_phone()
    h.pump(2)
    assert "5678" in screen.ids.reasons_msg.text and "1234" not in screen.ids.reasons_msg.text
    screen.to_rest()

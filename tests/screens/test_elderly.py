"""Every screen state meets the 适老化 numbers, in Chinese and English, normal and large text.

Each state is rendered once per language and text mode on the real app, with
the samples the screenshot commands use (screens/states.py, the roles'
samples.py), and every visible label and button is measured (tests/screens/
elderly.py). One app per device kind is reused across its states: the
all-roles demo kiosk at its 1280x800 panel, the pad alone at its 7" 800x480
panel, and a device out of service.
"""

from __future__ import annotations

import pytest

from kiosk.central import seed
from kiosk.core import keys
from kiosk.roles.dispenser.samples import DISPENSER_STATES
from kiosk.roles.lookup.samples import LOOKUP_STATES
from kiosk.roles.pad.samples import PAD_STATES
from screens import theme
from tests.helpers import AppHarness, refused_url, write_config
from tests.screens.elderly import Where, screen_problems

COMBOS = [("zh", False), ("zh", True), ("en", False), ("en", True)]
COMBO_IDS = [f"{lang}-{'large' if large else 'normal'}" for lang, large in COMBOS]


class FakeClock:
    """The pad service's monotonic clock, so that a state's session can be ended at once."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _at_panel(h):
    """The window at the configured panel size (the window is shared by every test)."""
    if tuple(h.Window.size) != (h.cfg.display.width, h.cfg.display.height):
        h.Window.size = (h.cfg.display.width, h.cfg.display.height)
        h.pump(3)


def _pad_clock(rt):
    if rt.dispenser is not None and rt.cache is not None:
        # Queue figures as the central sends them: each service button gets its second line.
        figures = [{"category": c["code"], "waiting": 12, "est_wait_s": 1500} for c in seed.CATEGORIES]
        rt.cache.set(keys.QUEUE_STATUS, {"day": None, "categories": figures})
    if rt.pad is not None:
        rt.pad.service.clock = rt.pad_clock = FakeClock()


def _set_mode(h, lang, large):
    h.app.lang = lang
    h.app.font_scale = theme.LARGE_TEXT_SCALE if large else 1.0


def _back_home(h, lang, large):
    """Between states: what the idle timeout does, and the preview's changes undone."""
    rt = h.rt
    if rt.pad is not None:
        svc = rt.pad.service
        if svc.current() is not None:
            rt.pad_clock.t += svc.rating_seconds + 1
            svc.expire_due()
        svc.on_window_session({"state": "idle"})
    if rt.dispenser is not None:
        rt.dispenser.service.__dict__.pop("is_open", None)  # the "closed" preview's stand-in
        rt.dispenser.service.__dict__.pop("view", None)  # the appointment previews' stand-in
    h.app.go_home()
    h.pump(2)
    if rt.pad is not None:
        screen = h.app.screen("pad")
        h.wait_until(lambda: screen.mode == "idle", 3)
    _set_mode(h, lang, large)
    h.pump(2)


def _show(h, screen, state, large):
    from screens.states import show

    app = h.app
    app.go(screen)
    h.pump(1)
    if screen in ("dispenser", "lookup", "pad"):
        show(app, screen, state, large)
    if screen == "pad":
        pad = app.screen("pad")
        want = {"reasons": "reasons", "phone": "phone", "rate": "rate", "paused": "paused", "thanks": "thanks"}.get(
            state, "idle"
        )
        assert h.wait_until(lambda: pad.mode == want and (state != "phone" or pad.typed), 5), (
            f"pad state {state!r} did not show (mode {pad.mode!r})"
        )
        if want == "idle":
            assert h.wait_until(lambda: pad.staff_name, 3), "the sample staff card did not show"
    h.pump(4)  # layouts and the fitted fonts settle over a few frames


def _walk(h, plan, lang, large):
    problems, checked = [], 0
    mode = "large" if large else "normal"
    for screen, state in plan:
        _back_home(h, lang, large)
        _show(h, screen, state, large)
        where = Where(screen, state, lang, mode)
        found, n = screen_problems(h.app.root, where, large, h.Window.size)
        assert n > 0, f"{where}: nothing visible was measured"
        problems += found
        checked += n
    return problems, checked


def _open_kiosk(tmp):
    # The bench central's service names ("Social & medical insurance") and a long
    # hall name: the words the walkthrough saw clipped.
    cats = [{k: c[k] for k in ("code", "prefix", "name_zh", "name_en")} for c in seed.CATEGORIES]
    changes = {
        "central": {"url": refused_url(), "allow_http": True},
        "device": {"hall": "示范市人民政府政务服务中心（市民之家）"},
        "dispenser": {"categories": cats},
    }
    return AppHarness(write_config(tmp, changes), runtime_hook=_pad_clock)


def _open_pad(tmp):
    changes = {
        "device": {"roles": ["pad"]},
        "display": {"width": 800, "height": 480},
        "central": {"url": refused_url(), "allow_http": True},
    }
    return AppHarness(write_config(tmp, changes), runtime_hook=_pad_clock)


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    """One app at a time, kept for the tests of its kind that follow one another.

    Never two at once: kv's `app` is the first app started until it stops, so
    a second live app's widgets would follow the first one's language and text size."""
    current: dict = {}
    size = None

    def get(kind):
        nonlocal size
        if current.get("kind") != kind:
            if current:
                current.pop("h").close()
                current.clear()
            if kind is None:  # a test that starts its own app
                return None
            h = {"kiosk": _open_kiosk, "pad": _open_pad}[kind](tmp_path_factory.mktemp("elderly-" + kind))
            size = size or h.Window.size
            current.update(kind=kind, h=h)
        if kind is None:
            return None
        _at_panel(current["h"])
        return current["h"]

    yield get
    if current.get("h"):
        current["h"].close()
    if size is not None:
        from kivy.core.window import Window

        Window.size = size  # the window is shared: later tests lay out at the usual size


@pytest.fixture
def kiosk(device):
    return device("kiosk")


@pytest.fixture
def pad_panel(device):
    return device("pad")


KIOSK_PLAN = (
    [("home", "")]
    + [("dispenser", s) for s in DISPENSER_STATES]
    + [("lookup", s) for s in LOOKUP_STATES]
    + [("pad", s) for s in PAD_STATES]
    + [("service", "")]
)


@pytest.mark.parametrize(("lang", "large"), COMBOS, ids=COMBO_IDS)
def test_every_kiosk_state_meets_the_numbers(kiosk, lang, large):
    problems, checked = _walk(kiosk, KIOSK_PLAN, lang, large)
    assert checked > 300
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def _offered(h):
    btn = h.app.header.ids.more_time
    return btn.opacity > 0 and not btn.disabled and btn.text


def test_more_time_before_the_idle_clear(kiosk):
    from kiosk.roles.lookup.samples import sample_result

    h = kiosk
    _back_home(h, "en", True)
    h.app.go("lookup")
    h.app.screen("lookup").show_result(sample_result("reviewing"))
    h.pump(3)
    assert not _offered(h), "more time offered with the whole idle time left"
    h.app.last_activity -= h.cfg.display.idle_timeout - 10  # 10 s before the page clears
    assert h.wait_until(lambda: _offered(h), 10), "no 'more time' button before the idle clear"
    btn = h.app.header.ids.more_time
    found, _ = screen_problems(h.app.header, Where("header", "more time", "en", "large"), True, h.Window.size)
    assert not found, found
    h.tap(btn)
    assert h.app.idle_left == h.cfg.display.idle_timeout
    assert h.app.screen("lookup").mode == "result", "more time must not clear the page"
    assert h.wait_until(lambda: not _offered(h), 3)


@pytest.mark.parametrize(("lang", "large"), COMBOS, ids=COMBO_IDS)
def test_every_pad_state_meets_the_numbers_on_the_7_inch_panel(pad_panel, lang, large):
    problems, checked = _walk(pad_panel, [("pad", s) for s in PAD_STATES], lang, large)
    assert checked > 50
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def test_more_time_before_the_rating_window_closes(pad_panel):
    h = pad_panel
    _back_home(h, "zh", True)
    screen, svc = h.app.screen("pad"), h.rt.pad.service
    svc.open_session("more-time", origin="central")
    assert h.wait_until(lambda: screen.mode == "rate")
    for _ in range(svc.MAX_EXTENSIONS):
        h.rt.pad_clock.t += svc.rating_seconds - 10
        assert h.wait_until(lambda: _offered(h), 3), "no '延长时间' button before the rating times out"
        assert "延长时间" in h.app.header.ids.more_time.text
        h.tap(h.app.header.ids.more_time)
        assert h.wait_until(lambda: screen.seconds_left >= svc.rating_seconds - 1, 3), "the rating window did not grow"
        assert screen.mode == "rate" and svc.current() is not None
    # a rating keeps a time window: after the allowed extensions the pad says so
    h.rt.pad_clock.t += svc.rating_seconds - 10
    assert h.wait_until(lambda: _offered(h), 3)
    h.tap(h.app.header.ids.more_time)
    assert h.wait_until(lambda: screen.message == "pad.err.no_more_time", 3)
    _back_home(h, "zh", False)


@pytest.mark.parametrize(("lang", "large"), COMBOS, ids=COMBO_IDS)
def test_out_of_service_meets_the_numbers(device, tmp_path, monkeypatch, lang, large):
    import kiosk.wiring
    from kiosk.core.bootguard import OutOfServiceRuntime, Tripped
    from kiosk.core.config import load_config

    device(None)  # no other app alive (see device)
    path = write_config(tmp_path)
    oos = OutOfServiceRuntime(load_config(path), Tripped(3, 600, "FontMissing: no CJK font"), None)
    monkeypatch.setattr(kiosk.wiring, "build_runtime", lambda cfg: oos)
    h = AppHarness(path)
    monkeypatch.undo()
    size = h.Window.size
    try:
        _at_panel(h)
        assert h.app.sm.current == "outofservice"
        _set_mode(h, lang, large)
        h.pump(4)
        where = Where("outofservice", "", lang, "large" if large else "normal")
        problems, checked = screen_problems(h.app.root, where, large, h.Window.size)
        assert checked > 3
        assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
    finally:
        h.close()
        h.Window.size = size

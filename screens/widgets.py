"""Widgets every screen uses: buttons, labels, cards, the header.

Labels wrap and shrink instead of overflowing: a Chinese service name or an
English translation twice as long must still fit its button.
"""

from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from kivy.app import App
from kivy.clock import Clock
from kivy.core.text.markup import MarkupLabel
from kivy.lang import Builder
from kivy.metrics import dp, sp
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager

from screens import theme

log = logging.getLogger("screens")


class BackgroundPool:
    """The app's threads for screen work that may block or write.

    Network and printer calls, ledger and cache writes and file writes never
    run on the UI thread: a slow central system, a dead printer or an fsync
    must not freeze a frame. Results come back to the UI thread through the
    Kivy clock. The app owns one (KioskApp.pool) and shuts it down in on_stop,
    before the runtime closes the ledger: a rating or ticket being committed
    finishes, and no result is delivered to a stopped app.
    """

    def __init__(self, workers: int = 4):
        # A few threads are plenty for one citizen at a time.
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ui-bg")
        self._stopped = False

    @property
    def stopped(self) -> bool:
        return self._stopped

    def submit(self, fn, *args, done=None, failed=None) -> Future:
        """Run fn(*args) off the UI thread; done(result) / failed(exc) run on the UI thread."""

        def deliver(callback, value):
            if not self._stopped:
                callback(value)

        def finish(fut):
            if fut.cancelled():
                return
            exc = fut.exception()
            if exc is not None:
                log.error("background task failed: %s", type(exc).__name__)
                if failed:
                    Clock.schedule_once(lambda dt: deliver(failed, exc), 0)
            elif done:
                result = fut.result()
                Clock.schedule_once(lambda dt: deliver(done, result), 0)

        future = self._executor.submit(fn, *args)
        future.add_done_callback(finish)
        return future

    def shutdown(self) -> None:
        """Drop what has not started, wait for what runs (each call has its own timeout)."""
        self._stopped = True
        self._executor.shutdown(wait=True, cancel_futures=True)


class Mailbox:
    """A one-place mailbox from a device thread to the UI thread.

    post() may be called from any thread; deliver(item) runs on the UI thread
    through the Kivy clock. The newest item wins (as a second scan does on the
    screen anyway), and at most one callback waits in the clock for any number
    of posts: a scanner spewing lines cannot flood the UI thread."""

    def __init__(self, deliver):
        self._deliver = deliver
        self._item = None
        self._lock = threading.Lock()

    def post(self, item) -> None:
        with self._lock:
            waiting = self._item is not None
            self._item = item
        if not waiting:
            Clock.schedule_once(self.take, 0)

    def take(self, dt=None) -> None:
        with self._lock:
            item, self._item = self._item, None
        if item is not None:
            self._deliver(item)


def in_background(fn, *args, done=None, failed=None) -> Future:
    """Run fn(*args) on the running app's background pool (see BackgroundPool.submit)."""
    app = App.get_running_app()
    pool = getattr(app, "pool", None)
    if pool is None:
        raise RuntimeError("no running kiosk app with a background pool: screens run inside KioskApp")
    return pool.submit(fn, *args, done=done, failed=failed)


# ---- no lone last character ---------------------------------------------------------

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_PUNCT = "，。、；：！？）」』》”’,.;:!?)…·"


def lines_of(core) -> list[str]:
    """The lines a core label laid its text out in, as drawn."""
    return ["".join(getattr(w, "text", "") for w in line.words) for line in getattr(core, "_cached_lines", None) or []]


def lone_last_char(lines: list[str]) -> bool:
    """A wrapped text whose last line is one Chinese character (with at most its
    punctuation): "示范市政务服务中" / "心" reads as two words, "非常不满" / "意" as a typo."""
    if len(lines) < 2:
        return False
    last = lines[-1].strip().rstrip(_PUNCT)
    return len(last) == 1 and bool(_CJK.match(last)) and bool(lines[-2].strip())


def avoid_lone_last_char(label) -> None:
    """Every Label's wrap rule (widgets.kv binds it to on_texture): when the last
    line is a lone character, wrap a little narrower so that two or more go
    down together, up to a quarter of the width. A FitText does its own (it may
    shrink instead). The width kv gives is remembered, so a resize starts over."""
    if isinstance(label, FitText):
        return
    tw, th = label.text_size
    if not tw or tw <= 0:
        return
    full = getattr(label, "_wrap_full", None)
    if full is None or abs(tw - getattr(label, "_wrap_set", -1)) > 0.5:
        full = label._wrap_full = tw  # a width kv set, not one of ours
    if not lone_last_char(lines_of(label._label)):
        return
    step = max(label.font_size * 0.9, 1)
    narrower = tw - step
    if narrower < full * 0.75:
        return  # cannot balance it: the walker names it
    label._wrap_set = narrower
    label.text_size = (narrower, th)


class FitText:
    """Shrinks its font until the text fits its box: an English translation
    in large-text mode on a 7" panel must still be read whole, not clipped.

    ``want_size`` is the size asked for (kv binds it to the text scale);
    ``font_size`` is what fits, measured with a core label at that width."""

    MIN_SP = 12
    MIN_LARGE_DP = 18  # never below the 适老化 main-text size in large-text mode

    def __init__(self, **kw):
        self._refit = Clock.create_trigger(self._fit, -1)
        super().__init__(**kw)
        self.fbind("text", self._refit)
        self.fbind("text_size", self._refit)
        self.fbind("want_size", self._refit)
        self.fbind("font_size", self._refit)

    def _fit(self, *args):
        box_w, box_h = self.text_size
        if not self.text or not box_w or not box_h or box_w <= 0 or box_h <= 0 or self.want_size <= 0:
            return
        size = self.want_size
        # Kivy breaks a word that is too wide at any letter ("Dissatisf/ied"):
        # Latin words must each fit on one line. Chinese wraps anywhere, fine.
        words = [w for w in re.sub(r"\[[^\]]*\]", " ", self.text).split() if re.fullmatch(r"[A-Za-z'().,-]+", w)]
        longest = max(words, key=len, default="")
        app = App.get_running_app()
        floor = dp(self.MIN_LARGE_DP) if app is not None and app.font_scale > 1 else sp(self.MIN_SP)
        while size > floor:
            m = MarkupLabel(
                text=self.text,
                font_size=size,
                font_name=self.font_name,
                bold=self.bold,
                line_height=self.line_height,  # measured as drawn: the 1.3x line spacing takes room
                text_size=(box_w, None),
                halign=self.halign,
            )
            m.refresh()
            w, h = m.content_size
            if lone_last_char(lines_of(m)):
                # "非常不满" / "意": smaller, until the word goes on one line or splits evenly.
                # (A narrower wrap would also break the stars' line above it.)
                size *= 0.9
                continue
            word_w = 0
            if longest:
                one = MarkupLabel(text=longest, font_size=size, font_name=self.font_name, bold=self.bold)
                one.refresh()
                word_w = one.content_size[0]
            if w <= box_w + 1 and h <= box_h + 1 and word_w <= box_w:
                break
            size *= 0.9
        self.font_size = max(size, floor)


class KLabel(Label):
    """A wrapping label in the kiosk's colours; font size in sp before large-text scaling."""

    base_size = NumericProperty(24)


class BigButton(Button):
    bg = ListProperty(theme.PRIMARY)
    base_size = NumericProperty(30)
    subtitle = StringProperty("")


class FitButton(FitText, BigButton):
    """A BigButton whose words shrink to fit it whole (a service name from the central)."""

    want_size = NumericProperty(0)


class PlainScreens(ScreenManager):
    """A ScreenManager that draws nothing of its own.

    Kivy's draws a stencil around its screens (a mask pass before and after,
    and a stencil test on every pixel drawn inside), which only transitions
    that slide need. Ours switch without a transition, and with the lookup's
    scroll view nested inside, the two stencils made a result frame cost five
    times a frame of bare labels on a software renderer (bench/lookup_frame.py).
    widgets.kv drops the inherited rule."""

    def __init__(self, **kw):
        kw.setdefault("transition", NoTransition())
        super().__init__(**kw)


class Card(BoxLayout):
    bg = ListProperty(theme.PANEL)


class Header(BoxLayout):
    """The top bar; it also offers "more time" shortly before the screen clears itself.

    Each screen says how long it has left (KioskScreen.time_left) and what more
    time means for it (more_time); the bar asks twice a second, so a countdown
    of the idle timeout, a ticket confirmation or a rating window all get the
    same button in the same place (WCAG 2.2.1: warn before a timeout)."""

    more_time_left = NumericProperty(-1)  # seconds left while the button is offered, else -1

    def on_kv_post(self, base_widget):
        self._poll = Clock.schedule_interval(self._check, 0.5)
        App.get_running_app().bind(on_stop=lambda *a: self._poll.cancel())

    def _screen(self):
        app = App.get_running_app()
        sm = getattr(app, "sm", None)
        return sm.current_screen if sm is not None else None

    def _check(self, *args):
        screen = self._screen()
        left = screen.time_left() if isinstance(screen, KioskScreen) else None
        self.more_time_left = left if left is not None and 0 < left <= theme.MORE_TIME_S else -1

    def more_time(self):
        screen = self._screen()
        if isinstance(screen, KioskScreen):
            screen.more_time()
        self._check()


class KioskScreen(Screen):
    """Base of every screen: knows how to forget what it showed.

    ``reset`` runs when the idle timeout sends the device home, so that the
    next citizen never sees the previous one's ticket, case or rating.
    """

    is_busy = BooleanProperty(False)

    @property
    def app(self):
        return App.get_running_app()

    def reset(self) -> None:
        pass

    def time_left(self) -> float | None:
        """Seconds until this screen clears what it shows by itself, or None if it will not."""
        app = self.app
        if app is None or self.is_busy or not getattr(self, "has_content", False):
            return None
        return app.idle_left

    def more_time(self) -> None:
        """The citizen asked for more time: the idle countdown starts again."""
        self.app.touch_activity()


# ---- hall notices ---------------------------------------------------------------

MAX_NOTICES = 3  # a strip under the header, not a news ticker


def hall_notices(snapshot: object, where: str) -> list[tuple[str, str]]:
    """The central config's ``messages`` meant for screen ``where``, as (zh, en).

    A message without ``where`` is for every screen; with it, only for the
    screens it lists (dispenser, lookup, pad, home). Anything malformed is
    skipped, never shown raw: the text is plain, one line, bounded."""
    msgs = snapshot.get("messages") if isinstance(snapshot, dict) else None
    out: list[tuple[str, str]] = []
    for m in msgs if isinstance(msgs, list) else []:
        if not isinstance(m, dict) or not isinstance(m.get("zh"), str) or not isinstance(m.get("en"), str):
            continue
        places = m.get("where")
        if places is not None and not (isinstance(places, list) and where in places):
            continue
        zh, en = _one_line(m["zh"], 60), _one_line(m["en"], 120)
        if zh or en:
            out.append((zh or en, en or zh))
        if len(out) == MAX_NOTICES:
            break
    return out


def _one_line(text: str, limit: int) -> str:
    s = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


class NoticeBar(BoxLayout):
    """The hall's notices for the screen showing, in the chosen language and the
    other one beneath (a notice is for every citizen, whichever language is on).
    ``snapshot`` is set by the app from a background read of the cache."""

    snapshot = ObjectProperty(None, allownone=True)
    where = StringProperty("")
    lines = ListProperty([])  # [(primary, secondary)]

    def on_snapshot(self, *args):
        self.refresh()

    def on_where(self, *args):
        self.refresh()

    def refresh(self, *args):
        app = App.get_running_app()
        en_first = getattr(app, "lang", "zh") == "en"
        self.lines = [(en, zh) if en_first else (zh, en) for zh, en in hall_notices(self.snapshot, self.where)]


Builder.load_file(str(Path(__file__).with_name("widgets.kv")))


def routed(app, role: str) -> bool:
    """True when the app hands the role's service events to its screen (kiosk/app.py
    _route_until_built): the screen was built on first use and must not listen as well."""
    fn = getattr(app, "routes_events", None)
    return bool(fn(role)) if fn is not None else False

"""Widgets every screen uses: buttons, labels, cards, the header.

Labels wrap and shrink instead of overflowing: a Chinese service name or an
English translation twice as long must still fit its button.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from kivy.app import App
from kivy.clock import Clock
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.screenmanager import Screen

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


def in_background(fn, *args, done=None, failed=None) -> Future:
    """Run fn(*args) on the running app's background pool (see BackgroundPool.submit)."""
    app = App.get_running_app()
    pool = getattr(app, "pool", None)
    if pool is None:
        raise RuntimeError("no running kiosk app with a background pool: screens run inside KioskApp")
    return pool.submit(fn, *args, done=done, failed=failed)


class KLabel(Label):
    """A wrapping label in the kiosk's colours; font size in sp before large-text scaling."""

    base_size = NumericProperty(24)


class BigButton(Button):
    bg = ListProperty(theme.PRIMARY)
    base_size = NumericProperty(30)
    subtitle = StringProperty("")


class Card(BoxLayout):
    bg = ListProperty(theme.PANEL)


class Header(BoxLayout):
    pass


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

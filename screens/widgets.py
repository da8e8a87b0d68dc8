"""Widgets every screen uses: buttons, labels, cards, the header.

Labels wrap and shrink instead of overflowing: a Chinese service name or an
English translation twice as long must still fit its button.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kivy.app import App
from kivy.clock import Clock
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.screenmanager import Screen

from screens import theme

log = logging.getLogger("screens")

# Network and printer calls never run on the UI thread: a slow central system
# or a dead printer must not freeze a frame. A few threads are plenty for one
# citizen at a time.
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ui-bg")


def in_background(fn, *args, done=None, failed=None):
    """Run fn(*args) off the UI thread; done(result) / failed(exc) run on the UI thread."""
    def finish(fut):
        exc = fut.exception()
        if exc is not None:
            log.error("background task failed: %s", type(exc).__name__)
            if failed:
                Clock.schedule_once(lambda dt: failed(exc), 0)
        elif done:
            result = fut.result()
            Clock.schedule_once(lambda dt: done(result), 0)
    future = _pool.submit(fn, *args)
    future.add_done_callback(finish)
    return future


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


Builder.load_file(str(Path(__file__).with_name("widgets.kv")))

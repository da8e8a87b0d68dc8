"""Shared test helpers: configs in temporary folders, and a harness that
drives the real Kivy app (offscreen window, real touches, real frames)."""

from __future__ import annotations

import os
import re
import socket
import time
import tomllib
from datetime import datetime
from pathlib import Path

from tomli_w import dumps as dump_toml

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "demo.toml"
DEMO_PIN = "246810"  # the demo config's technician PIN


def printer_font() -> str:
    """The CJK font the device would hand to devices/ for raster text and previews
    (devices/ does not search for fonts itself)."""
    from kiosk.core.fonts import find_cjk_font

    return find_cjk_font(any_face=True)


# The moment tests put the dispenser's wall clock at: a Wednesday morning, inside
# every opening-hours rule the tests use, so that no test depends on the hour
# (or the day) it happens to run at. Tests about days and hours set their own.
SERVICE_TIME = datetime(2026, 3, 4, 10, 30)


def service_time() -> datetime:
    return SERVICE_TIME


def at_service_time(rt) -> None:
    """AppHarness runtime hook: the dispenser's clock stands at SERVICE_TIME."""
    if rt.dispenser is not None:
        rt.dispenser.service.now = service_time


def wait_until(cond, timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Wait for cond() to become true (checked every `interval`), at most `timeout` s.

    Returns whether it did, so that a test asserts on the condition it waited for
    rather than on a sleep having been long enough."""
    end = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(interval)


_refusing: socket.socket | None = None


def refused_url() -> str:
    """A loopback URL on which every connection is refused at once.

    The port is one this test run picked and keeps bound without listening,
    so no other process can take it for as long as the tests run (unlike the
    demo's 127.0.0.1:8765, where a technician's bench central may be up)."""
    global _refusing
    if _refusing is None:
        _refusing = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        _refusing.bind(("127.0.0.1", 0))
    return f"http://127.0.0.1:{_refusing.getsockname()[1]}"


def demo_data() -> dict:
    return tomllib.loads(DEMO.read_text(encoding="utf-8"))


def write_config(
    tmp_path: Path, changes: dict | None = None, *, name="kiosk.toml", token: str | None = "test-token"
) -> Path:
    """The demo config, storage under tmp_path, with `changes` merged in per section.

    A section given as None in changes is removed. The central URL is one that
    refuses connections (see refused_url) unless `changes` give another.
    """
    data = demo_data()
    data["central"]["url"] = refused_url()
    data["storage"]["dir"] = str(tmp_path / "data")
    data["central"]["token_file"] = str(tmp_path / "token")
    for section, values in (changes or {}).items():
        if values is None:
            data.pop(section, None)
        else:
            data.setdefault(section, {}).update(values)
    if token is not None:
        tok = Path(data["central"]["token_file"])
        tok.write_text(token)
        os.chmod(tok, 0o600)
    path = tmp_path / name
    path.write_text(dump_toml(data), encoding="utf-8")
    return path


class AppHarness:
    """The real KioskApp on the offscreen window, without App.run().

    Frames are pumped with EventLoop.idle(); touches are real touch events.
    """

    def __init__(self, config_path, lang=None, runtime_hook=None):
        from kiosk.app import build_app, prepare_kivy
        from kiosk.core.config import load_config
        from kiosk.wiring import build_runtime

        self.cfg = load_config(config_path)
        prepare_kivy(self.cfg, headless=True)
        from kivy.app import App
        from kivy.base import EventLoop
        from kivy.core.window import Window

        EventLoop.ensure_window()
        self.Window, self.EventLoop, self.App = Window, EventLoop, App
        self.rt = build_runtime(self.cfg)
        at_service_time(self.rt)  # a test about hours or days sets its own clock in its hook
        if runtime_hook:
            runtime_hook(self.rt)
        self.rt.start(without=["sync"])  # the roles' workers; a test starts sync itself when it wants it
        self.app = build_app(self.rt)
        App._running_app = self.app
        self.app.root = self.app.build()
        if lang:
            self.app.lang = lang
        Window.add_widget(self.app.root)
        self.app.dispatch("on_start")
        self.pump(3)

    def pump(self, frames: int = 2) -> None:
        for _ in range(frames):
            self.EventLoop.idle()

    def pump_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.EventLoop.idle()

    def wait_until(self, cond, timeout: float = 5.0) -> bool:
        """Like wait_until, pumping frames (the UI thread's work) while waiting."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.EventLoop.idle()
            if cond():
                return True
        return False

    def tap(self, widget) -> None:
        from kivy.tests.common import UnitTestTouch

        x, y = widget.to_window(*widget.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        self.pump(1)
        touch.touch_up()
        self.pump(2)

    def walk(self, root=None):
        root = root or self.app.root
        yield root
        for child in root.children:
            yield from self.walk(child)

    def texts(self, root=None) -> list[str]:
        return [w.text for w in self.walk(root) if isinstance(getattr(w, "text", None), str) and w.text]

    def find(self, pattern: str, root=None, cls=None):
        """The first widget whose text matches the regex, searched in the current screen."""
        root = root or self.app.sm.current_screen
        rx = re.compile(pattern)
        for w in self.walk(root):
            t = getattr(w, "text", None)
            if isinstance(t, str) and rx.search(t) and (cls is None or isinstance(w, cls)):
                return w
        raise LookupError(f"no widget with text matching {pattern!r}; texts: {self.texts(root)}")

    def close(self) -> None:
        # Let pending transitions and scheduled callbacks of this app run while
        # it is still the running app, so none fires into the next test's app.
        self.pump(3)
        self.app.dispatch("on_stop")
        self.Window.remove_widget(self.app.root)
        self.App._running_app = None
        self.pump(1)


# The scope of each device id the tests use, as its config has it: most tests
# run the demo device (every role, pad on window 01). A test about scope passes
# roles and window itself.
TEST_DEVICES = {
    "demo-kiosk": (("dispenser", "lookup", "pad"), "01"),
    "hall01-kiosk01": (("dispenser", "lookup", "pad"), "03"),
    "hall01-lookup01": (("lookup",), None),
    "hall01-pad01": (("pad",), "01"),
    "hall01-pad07": (("pad",), "07"),
}


def device_tokens(central):
    """central.issue_token with the device's usual scope when a test gives none."""
    issue = central.issue_token

    def issue_token(device_id, roles=None, window=None):
        if roles is None:
            roles, window = TEST_DEVICES.get(device_id, TEST_DEVICES["demo-kiosk"])
        return issue(device_id, roles, window)

    return issue_token

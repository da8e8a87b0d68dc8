"""The Kivy application and the composition root of the UI.

The only module of the core that imports Kivy. ``prepare_kivy`` must run
before any other Kivy import: Kivy reads its config when its modules load.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.core import keys
from kiosk.core.config import Config
from kiosk.core.fonts import FontMissing, find_cjk_font
from kiosk.core.time import hall_now
from kiosk.runtime import Runtime
from kiosk.wiring import build_runtime

if TYPE_CHECKING:  # imported at run time only where needed: the guard must load first
    from kiosk.core.bootguard import OutOfServiceRuntime

log = logging.getLogger("kiosk.app")

WEEKDAYS_ZH = "一二三四五六日"


def prepare_kivy(cfg: Config, *, headless: bool = False) -> None:
    """Environment and Kivy config for a locked-down kiosk (or a headless render)."""
    os.environ["KIVY_NO_ARGS"] = "1"  # our own argv must not reach Kivy's parser
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    if "KIVY_HOME" not in os.environ:
        # Kivy writes config.ini there; /home may be read-only under systemd hardening.
        os.environ["KIVY_HOME"] = str(Path(cfg.storage.dir) / keys.KIVY_HOME_DIR)
    Path(os.environ["KIVY_HOME"]).mkdir(parents=True, exist_ok=True)
    if headless:
        os.environ["SDL_VIDEODRIVER"] = "offscreen"
    elif not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        # A Pi without a desktop: draw straight to the panel through KMS/DRM.
        os.environ.setdefault("SDL_VIDEODRIVER", "kmsdrm")

    from kivy.config import Config as KivyConfig

    d = cfg.display
    KivyConfig.set("kivy", "exit_on_escape", "0")
    KivyConfig.set("kivy", "log_level", "info")
    KivyConfig.set("graphics", "width", str(d.width))
    KivyConfig.set("graphics", "height", str(d.height))
    KivyConfig.set("graphics", "rotation", str(d.rotation))
    KivyConfig.set("graphics", "resizable", "0")
    KivyConfig.set("graphics", "vsync", "1")
    KivyConfig.set("graphics", "fullscreen", "auto" if (d.fullscreen and not headless) else "0")
    KivyConfig.set("graphics", "show_cursor", "0" if (d.fullscreen and not headless) else "1")
    # Exactly one touch source: under KMSDRM SDL already turns touches into
    # mouse events, and probesysfs would report each touch a second time.
    for option in list(KivyConfig.options("input")) if KivyConfig.has_section("input") else []:
        if "probesysfs" in KivyConfig.get("input", option):
            KivyConfig.remove_option("input", option)
    KivyConfig.set("input", "mouse", "mouse,disable_multitouch")


def register_font(cfg: Config) -> str:
    """Make the CJK font Kivy's default, so that no label can miss it."""
    path = find_cjk_font(cfg.display.font)
    from kivy.core.text import DEFAULT_FONT, LabelBase

    LabelBase.register(DEFAULT_FONT, path, path, path, path)
    return path


def _build_app_class():
    # Kivy classes are defined inside a function so that importing this module
    # for its helpers does not drag Kivy in before prepare_kivy has run.
    from kivy.app import App
    from kivy.clock import Clock
    from kivy.core.window import Window
    from kivy.metrics import Metrics, dp
    from kivy.properties import NumericProperty, StringProperty
    from kivy.uix.boxlayout import BoxLayout
    from kivy.uix.button import Button

    from kiosk.core import i18n
    from screens import theme
    from screens.home import HomeScreen
    from screens.registry import screen_class
    from screens.widgets import BackgroundPool, Header, NoticeBar, PlainScreens

    class KioskApp(App):
        lang = StringProperty("zh")
        font_scale = NumericProperty(1.0)
        hall_name = StringProperty("")
        clock_text = StringProperty("")
        net_state = StringProperty("offline")
        net_text = StringProperty("")
        idle_left = NumericProperty(0)

        def __init__(
            self, rt: Runtime, *, demo: bool = False, start_screen: str | None = None, capture: str | None = None, **kw
        ):
            super().__init__(**kw)
            self.rt = rt
            # Sizes are in dp (1/160 in): at the panel's own density, 60 dp is the
            # same 9.5 mm on a 7" pad and a 21" kiosk (display.dpi). Set before any
            # widget is built; put back at stop (tests build several apps in turn).
            self._density_before = Metrics.density
            Metrics.density = rt.cfg.display.dpi / 160
            self.demo = demo
            self.start_screen = start_screen
            self.capture = capture
            self.title = "hall-kiosk"
            self.lang = rt.cfg.display.language
            self.font_scale = theme.LARGE_TEXT_SCALE if rt.cfg.display.large_text else 1.0
            self.hall_name = rt.cfg.device.hall
            self.roles = rt.roles
            self.last_activity = time.monotonic()
            self.first_frame_callbacks: list[Callable[[], None]] = []
            self._first_frame_seen = False
            self.pool = BackgroundPool()  # screens' blocking work and writes; shut down in on_stop

        # -- strings and modes ------------------------------------------------
        def speak(self, prompt: str, **values) -> None:
            """Say a prompt the screen is showing, in the language it shows (returns at once)."""
            if self.rt.voice is not None:
                self.rt.voice.say(prompt, self.lang, **values)

        def tr(self, key: str, lang: str | None = None, **values) -> str:
            return i18n.tr(key, lang or self.lang, **values)

        def toggle_language(self):
            self.lang = "en" if self.lang == "zh" else "zh"
            self.touch_activity()

        def toggle_large_text(self):
            self.font_scale = 1.0 if self.font_scale > 1 else theme.LARGE_TEXT_SCALE
            self.touch_activity()

        # -- building ---------------------------------------------------------
        def build(self):
            root = BoxLayout(orientation="vertical")
            self.header = Header()
            root.add_widget(self.header)
            self.notices = NoticeBar()  # the central's hall notices (messages) for the screen showing
            root.add_widget(self.notices)
            self.sm = PlainScreens()  # no stencil pass over every frame (screens/widgets.py)
            if self.rt.out_of_service:  # boot guard tripped (kiosk/core/bootguard.py)
                from screens.outofservice import OutOfServiceScreen

                self.sm.add_widget(OutOfServiceScreen(name="outofservice"))
                self.home_name = "outofservice"
            elif len(self.roles) > 1:
                self.sm.add_widget(HomeScreen(name="home"))
                self.home_name = "home"
            else:
                self.home_name = self.roles[0]
            # The home screen is built now, so the first frame is the finished home
            # screen; every other screen is built on first use (start-up time and
            # memory). A role screen listens to its service (an invitation, a scan,
            # a hardware button) even while another screen shows: until it exists,
            # the app listens for it and builds it when its service first speaks.
            # A keyboard-wedge scanner types into the lookup screen's key handler,
            # so that screen is built now on a device with one.
            self._routes: dict[str, Callable[..., None]] = {}
            for role in self.roles:
                wedge = role == "lookup" and self.rt.cfg.scanner.backend == "wedge"
                # A dispenser with a booking scanner: its screen takes the scans itself.
                booking = role == "dispenser" and getattr(self.rt.dispenser, "scans", None) is not None
                if role == self.home_name or wedge or booking:
                    self.sm.add_widget(screen_class(role)(name=role))
                else:
                    self._route_until_built(role)
            if self.rt.dispenser is not None and self.rt.dispenser.idcard is not None:
                from screens.idcard import IdCardScreen  # 刷身份证取号: listens for cards from the start

                self.sm.add_widget(IdCardScreen(name="idcard"))
            from screens.service import install_gesture

            install_gesture(self)
            self.sm.current = self.home_name
            self.sm.bind(current=lambda sm, name: setattr(self.notices, "where", name))
            self.notices.where = self.sm.current
            self.bind(lang=self.notices.refresh)
            root.add_widget(self.sm)
            if self.demo:
                self._add_demo_switcher()
            Window.bind(
                on_request_close=self._refuse_close,
                on_keyboard=self._on_keyboard,
                on_touch_down=self._on_input,
                on_key_down=self._on_input,
                on_flip=self._on_flip,
            )
            self._tick_event = Clock.schedule_interval(self._tick, 1.0)
            self._tick(0)
            return root

        def _add_demo_switcher(self):
            # Only the demo shows this: a real device never lets a citizen leave its roles.
            box = self.header.ids.demo_roles
            for name in ([self.home_name] if self.home_name == "home" else []) + self.roles:
                btn = Button(
                    size_hint=(None, None),
                    size=(dp(80), dp(64)),
                    pos_hint={"center_y": 0.5},
                    font_size=dp(18),
                    background_normal="",
                    background_color=theme.ACCENT,
                )
                btn.target = name
                btn.bind(
                    on_release=lambda b: self.go(b.target),
                    texture_size=lambda b, ts: setattr(b, "width", max(dp(80), ts[0] + dp(24))),
                )
                box.add_widget(btn)

            def label(*_):
                for b in box.children:
                    b.text = self.tr("demo." + b.target)

            self.bind(lang=label)
            label()

        def on_start(self):
            if self.start_screen:
                self.go(self.start_screen)

        # -- navigation and idle ------------------------------------------------
        def screen(self, name: str):
            self._ensure_screen(name)
            return self.sm.get_screen(name)

        def _ensure_screen(self, name: str) -> None:
            if self.sm.has_screen(name):
                return
            if name == "service":
                from screens.service import ServiceScreen  # loads its kv file on first use

                self.sm.add_widget(ServiceScreen(name="service"))
            elif name in self.roles:
                self.sm.add_widget(screen_class(name)(name=name))  # imports its module and kv file now

        def routes_events(self, role: str) -> bool:
            """True when the app hands this role's service events to its screen (the screen must not listen too)."""
            return role in getattr(self, "_routes", {})

        def _route_until_built(self, role: str) -> None:
            """Listen to a role's service for its screen, which is built by the first event.

            The app stays the screen's only listener, so no event is lost or
            delivered twice while the screen is being built; every event reaches
            the screen's UI-thread method through the clock, in order."""
            rt = self.rt

            def later(method: str, *args) -> None:
                Clock.schedule_once(lambda dt: getattr(self.screen(role), method)(*args), 0)

            if role == "dispenser" and rt.dispenser is not None:
                fn: Callable[..., None] = lambda name: later("hardware_press", name)
                rt.dispenser.service.button_listeners.append(fn)
            elif role == "lookup" and rt.lookup is not None:
                fn = lambda scan: later("handle_scan", scan)
                rt.lookup.service.scans.subscribe(fn)
            elif role == "pad" and rt.pad is not None:
                fn = lambda what, st: later("apply", what, st)
                rt.pad.service.subscribe(fn)
            else:
                return
            self._routes[role] = fn

        def _unroute(self) -> None:
            """No service event may reach a stopped app."""
            rt = self.rt
            for role, fn in getattr(self, "_routes", {}).items():
                if role == "dispenser" and rt.dispenser is not None and fn in rt.dispenser.service.button_listeners:
                    rt.dispenser.service.button_listeners.remove(fn)
                elif role == "lookup" and rt.lookup is not None:
                    rt.lookup.service.scans.unsubscribe(fn)
                elif role == "pad" and rt.pad is not None:
                    rt.pad.service.unsubscribe(fn)

        def go(self, name: str):
            if name == "home":
                name = self.home_name
            self._ensure_screen(name)
            self.sm.current = name
            self.touch_activity()

        def go_home(self):
            """Back to start, forgetting everything shown to the last citizen."""
            for screen in self.sm.screens:
                screen.reset()
            self.sm.current = self.home_name
            self.lang = self.rt.cfg.display.language
            self.font_scale = theme.LARGE_TEXT_SCALE if self.rt.cfg.display.large_text else 1.0

        def touch_activity(self):
            self.last_activity = time.monotonic()
            self.idle_left = self.rt.cfg.display.idle_timeout

        def _on_input(self, *args):
            self.touch_activity()
            return False  # never swallow the event

        def _update_clock(self, *_):
            now = hall_now()  # the hall's zone, not the host's
            wd = WEEKDAYS_ZH[now.weekday()]
            self.clock_text = (
                now.strftime("%m-%d %H:%M") + f" 周{wd}" if self.lang == "zh" else now.strftime("%a %d %b %H:%M")
            )

        def on_lang(self, *_):
            # Header texts built in Python follow a live language switch at once.
            self._update_clock()
            if hasattr(self, "sm"):
                self._update_net()

        def _tick(self, dt):
            self._update_clock()
            timeout = self.rt.cfg.display.idle_timeout
            idle = time.monotonic() - self.last_activity
            self.idle_left = max(0, round(timeout - idle))
            current = self.sm.get_screen(self.sm.current)
            if idle >= timeout and not current.is_busy:
                if self.sm.current != self.home_name or getattr(current, "has_content", False):
                    self.go_home()
                self.last_activity = time.monotonic()
            self._update_net()
            self._update_notices()

        def _update_notices(self):
            cache = getattr(self.rt, "cache", None)
            now = time.monotonic()
            if cache is None or self.pool is None or now < getattr(self, "_notices_due", 0.0):
                return
            self._notices_due = now + 10.0  # the sync worker refreshes the config far less often
            # The cache is read off the UI thread; the bar redraws only on a change.
            self.pool.submit(
                lambda: cache.get(keys.CENTRAL_CONFIG),
                done=lambda snap: setattr(self.notices, "snapshot", snap) if snap != self.notices.snapshot else None,
            )

        def _update_net(self):
            sync = self.rt.sync
            state = sync.state() if sync is not None else {"status": "offline", "pending": None}
            self.net_state = state.get("status", "offline")
            text = self.tr("net." + self.net_state) if i18n.has("net." + self.net_state) else self.net_state
            if state.get("pending"):
                text += " · " + self.tr("net.pending", n=state["pending"])
            self.net_text = text

        # -- lockdown -------------------------------------------------------------
        def _refuse_close(self, *args, **kw):
            return True  # a citizen cannot close the kiosk; systemd stops it

        def _on_keyboard(self, window, key, *args):
            return key == 27  # Esc (and Android back) do nothing

        # -- frames ---------------------------------------------------------------
        def _on_flip(self, *args):
            if not self._first_frame_seen:
                self._first_frame_seen = True
                for cb in self.first_frame_callbacks:
                    cb()
            if self.capture and not self._captured:
                # Frames are counted from when the state shows: its layout settles after that.
                self._capture_frames = self._capture_frames - 1 if self._capture_ok() else self.CAPTURE_FRAMES
                if time.monotonic() - self._capture_after > 0 and self._capture_frames <= 0:
                    self._captured = True
                    self._write_capture()

        _capture_after = float("inf")
        _captured = False
        _capture_frames = 0
        CAPTURE_FRAMES = 8  # layouts and fitted fonts settle over a few frames

        capture_ready: Callable[[], bool] | None = None  # the state shows (screens/states.show)
        _capture_deadline = float("inf")

        def _capture_ok(self) -> bool:
            if self.capture_ready is None or self.capture_ready():
                return True
            if time.monotonic() > self._capture_deadline:
                log.warning("screenshot: the state did not show within 20 s; capturing what is shown")
                return True
            return False

        def arm_capture(self, delay: float = 0.6):
            # Both a delay and a number of frames: on a loaded machine 0.6 s may
            # pass before the layout has had its frames (a black, half-laid-out shot).
            self._capture_after = time.monotonic() + delay
            self._capture_frames = self.CAPTURE_FRAMES
            self._capture_deadline = time.monotonic() + 20

            # Kivy draws only when something changed, and a still screen may
            # never change again: draw and flip ourselves after the delay,
            # frame after frame, until the capture is made.
            def draw(dt):
                # Kivy may run this a little before `delay` by the monotonic
                # clock (it counts from the frame's start): capture regardless.
                self._capture_after = 0.0
                if not self._captured:
                    Window.dispatch("on_draw")
                    Window.dispatch("on_flip")
                    Clock.schedule_once(draw, 0.02)

            Clock.schedule_once(draw, delay + 0.05)

        def _write_capture(self):
            # Window.screenshot appends a counter to the name; write into a
            # private folder and move the file to where it was asked for.
            tmp = tempfile.mkdtemp(prefix="kiosk-shot-")
            try:
                made = Window.screenshot(name=os.path.join(tmp, "shot.png"))
                shutil.move(made, self.capture)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            Clock.schedule_once(lambda dt: self.stop(), 0)

        def on_stop(self):
            self._tick_event.cancel()
            self._unroute()
            Window.unbind(
                on_request_close=self._refuse_close,
                on_keyboard=self._on_keyboard,
                on_touch_down=self._on_input,
                on_key_down=self._on_input,
                on_flip=self._on_flip,
            )
            self.pool.shutdown()  # before the ledger closes: a commit in flight finishes
            self.rt.stop()
            Metrics.density = self._density_before

    return KioskApp


def build_app(rt: Runtime | OutOfServiceRuntime, **kw):
    """Create the app for an already prepared Kivy (see prepare_kivy)."""
    try:
        register_font(rt.cfg)
    except FontMissing:
        if not rt.out_of_service:
            raise  # out of service, Kivy's own font still shows the English reason
    return _build_app_class()(rt, **kw)


_stop_requested = threading.Event()


def _on_sigterm(*_):
    _stop_requested.set()


def run(cfg: Config, *, demo: bool = False, runtime_hook=None) -> int:
    # Our SIGTERM handler goes in before SDL starts: SDL would otherwise turn
    # SIGTERM into a window-close request, which the kiosk lockdown refuses,
    # and systemd's stop would hang until its timeout.
    os.environ["SDL_NO_SIGNAL_HANDLERS"] = "1"
    signal.signal(signal.SIGTERM, _on_sigterm)
    from kiosk.core.config import check_storage

    # The boot guard keeps its count in the storage folder: a folder that cannot
    # be written is shown before the guard, not crashed on in a loop.
    problem = check_storage(cfg.storage.dir)
    if problem is not None:
        print(f"kiosk: {problem.line(cfg.path)}", file=sys.stderr)
        storage = cfg.storage.dir
        return run_unusable("storage", [problem.line(cfg.path)], cfg, fixed=lambda: check_storage(storage) is None)
    prepare_kivy(cfg)
    from kiosk.core.bootguard import BootGuard, OutOfServiceRuntime  # no boot loop (kiosk/core/bootguard.py)
    from kiosk.core.ledger import LedgerError

    guard = BootGuard(cfg.storage.dir)
    tripped = guard.begin()
    rt: Runtime | OutOfServiceRuntime
    if tripped:
        rt = OutOfServiceRuntime(cfg, tripped, guard)
        _keep_syncing(rt, guard)
    else:
        try:
            find_cjk_font(cfg.display.font)
        except FontMissing as e:
            guard.record_error(e)
            print(f"kiosk: {e}", file=sys.stderr)
            return 3
        try:
            rt = build_runtime(cfg, demo=demo)
            rt.boot_guard = guard
            if runtime_hook:
                runtime_hook(rt)
        except (OSError, sqlite3.Error, LedgerError) as e:
            # The storage passed the write check but its files do not open (a damaged
            # ledger, a cache another user owns, a ledger a newer release migrated
            # before a rollback): the same screen, not a crash loop; data untouched.
            guard.record_error(e)
            line = f"{cfg.path}: storage.dir: {cfg.storage.dir}: {type(e).__name__}: {e}"
            print(f"kiosk: {line}", file=sys.stderr)
            guard.clean_exit()
            return run_unusable("storage", [line + " (check the files there; run `kiosk selftest`)"], cfg)
        except BaseException as e:
            guard.record_error(e)
            raise
    app = build_app(rt, demo=demo)
    _supervise(app, guard)
    rt.start()
    try:
        app.run()
    except BaseException as e:
        guard.record_error(e)
        raise
    guard.clean_exit()
    from kiosk.core import notify

    notify.stopping()
    return getattr(app, "exit_code", 0)


UNUSABLE_RECHECK_S = 3.0


def run_unusable(
    what: str,
    problems: list[str],
    cfg: Config | None = None,
    *,
    fixed: Callable[[], bool] | None = None,
    source: str | None = None,
) -> int:
    """The out-of-service screen for a device whose config file or storage cannot be
    used: it stays up (so systemd's restart and start limits never fire) and names
    the file, key and fix for the technician; the storage is left untouched.

    ``fixed`` is asked every few seconds, off the UI thread, whether the cause is
    gone (the file now loads, the folder can be written): then the app exits with
    the restart code and systemd starts it again, into service, with no visit to
    a terminal."""
    from kiosk.core.bootguard import OutOfServiceRuntime, Unusable
    from kiosk.core.config import rescue_config

    os.environ["SDL_NO_SIGNAL_HANDLERS"] = "1"
    signal.signal(signal.SIGTERM, _on_sigterm)
    scratch = tempfile.mkdtemp(prefix="kiosk-out-of-service-")
    # Kivy's own files go to a scratch folder: the storage may be the broken part.
    os.environ["KIVY_HOME"] = str(Path(scratch) / keys.KIVY_HOME_DIR)
    try:
        if cfg is None:
            cfg = rescue_config(scratch, source)  # the broken file's panel settings, where valid
        prepare_kivy(cfg)
        rt = OutOfServiceRuntime(cfg, Unusable(what, problems), None, open_ledger=False)
        app = build_app(rt)
        _supervise(app, None)
        if fixed is not None:
            threading.Thread(target=_watch_fix, args=(rt, what, fixed), name="unusable-recheck", daemon=True).start()
        app.run()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    from kiosk.core import notify

    notify.stopping()
    return getattr(app, "exit_code", 0)


def _watch_fix(rt: OutOfServiceRuntime, what: str, fixed: Callable[[], bool]) -> None:
    while not rt.healed.wait(UNUSABLE_RECHECK_S) and not _stop_requested.is_set():
        try:
            ok = fixed()
        except Exception:  # still broken in some new way: keep showing the old reason
            ok = False
        if ok:
            log.warning("the %s problem is fixed: restarting into service", what)
            rt.healed.set()  # _supervise stops the app with the restart code


def _keep_syncing(rt: OutOfServiceRuntime, guard) -> None:
    """Out of service, the device still delivers its outbox, reports its health and
    pulls the central config: a config the central corrects heals it without a visit.

    A new config that passes the checks (kiosk/sync/validate.py) resets the guard
    and restarts into service: a bad config is the one cause the central can fix
    for every device at once. A still-bad one is refused and reported in the
    heartbeat (central_data), and the device stays out of service.
    """
    from kiosk.core.cache import Cache
    from kiosk.core.config import ConfigError
    from kiosk.sync.client import CentralClient
    from kiosk.sync.worker import SyncWorker

    if rt.ledger is None:
        return
    try:
        client = CentralClient.from_config(rt.cfg)
    except (ConfigError, ValueError) as e:
        log.warning("out of service and offline: %s", e)
        return
    try:
        cache = Cache(Path(rt.cfg.storage.dir) / keys.CACHE_FILE)
    except Exception as e:  # a broken cache may be why it is out of service
        log.error("out of service without the cache: %s", type(e).__name__)
        client.close()
        return
    tripped = rt.out_of_service

    def heal() -> None:
        log.warning("a new valid central config arrived out of service: restarting into service")
        guard.reset()
        rt.healed.set()

    sync = SyncWorker(
        rt.ledger,
        client,
        cache,
        rt.cfg.device.id,
        health=lambda: {"out_of_service": tripped.text()},
        interval=rt.cfg.central.sync_interval,
        storage_dir=rt.cfg.storage.dir,
    )
    sync.pulls.on_config = heal
    rt.sync = sync
    rt.cache = cache
    rt.client = client
    rt.add_part(None, cache.close)
    rt.add_part(None, client.close)
    rt.add_part(sync.start, sync.stop)


def _supervise(app, guard) -> None:
    """systemd and the boot guard: ready after the first frame, watchdog pings
    from the UI clock (a frozen UI misses them and is restarted), a clean stop
    on SIGTERM, healthy after a while, and the start-up self-check."""
    from kivy.clock import Clock

    from kiosk.core import notify
    from kiosk.technician import selftest

    def first_frame():
        if guard is None:  # config or storage unusable (run_unusable): say why in `systemctl status`
            notify.ready("out of service: " + app.rt.out_of_service.text().replace("\n", " | ")[:400])
            return
        notify.ready("out of service" if guard.tripped else "serving")
        if not guard.tripped:
            _confirm_release(app, selftest.start_background(app.rt))
            Clock.schedule_once(lambda dt: guard.mark_healthy(), guard.healthy_after_s)

    app.first_frame_callbacks.append(first_frame)
    interval = notify.watchdog_interval()
    if interval:
        Clock.schedule_interval(lambda dt: notify.watchdog(), interval)

    # Kivy ignores stop() while its loop is not running yet, so a SIGTERM that
    # lands during start-up is kept (see run) and acted on once the clock ticks.
    def stop_if_asked(dt):
        if _stop_requested.is_set():
            app.stop()
            return False
        healed = getattr(app.rt, "healed", None)
        if healed is not None and healed.is_set():  # kiosk/app.py _keep_syncing
            from kiosk.core.bootguard import RESTART_EXIT_CODE

            app.exit_code = RESTART_EXIT_CODE
            app.stop()
            return False

    Clock.schedule_interval(stop_if_asked, 0.25)


def _confirm_release(app, selftest_thread) -> None:
    """After an update the new release is on trial (kiosk/release/releases.py): its
    first frame is drawn; once the self-check is done its verdict goes to the
    storage folder. A failed one on trial exits for a restart, and the check that
    runs as root before the next start switches back to the previous release."""
    from kivy.clock import Clock

    from kiosk import __version__
    from kiosk.core.bootguard import RESTART_EXIT_CODE
    from kiosk.release.releases import TRIAL_S, confirm_health, on_trial, release_root

    root = release_root()
    storage = Path(app.rt.cfg.storage.dir)

    def restart(dt):
        app.exit_code = RESTART_EXIT_CODE
        app.stop()

    def work():
        trial = on_trial(root, __version__)
        wait = float(trial["trial_s"]) - (time.time() - float(trial["switched_at"])) if trial else TRIAL_S
        selftest_thread.join(max(wait, 1.0))
        result = None if selftest_thread.is_alive() else app.rt.selftest_result
        try:
            failed = confirm_health(storage, __version__, result, root)
        except OSError as e:
            log.error("cannot write the release health to %s: %s", storage, e.strerror)
            return
        if failed:
            log.error("release %s on trial failed its health check: restarting into the previous one", __version__)
            Clock.schedule_once(restart)

    threading.Thread(target=work, name="release-health", daemon=True).start()


def screenshot(
    cfg: Config,
    screen: str,
    out: str,
    lang: str | None = None,
    *,
    state: str | None = None,
    large: bool = False,
    setup=None,
) -> int:
    """Render one screen with no display attached and write it as PNG."""
    prepare_kivy(cfg, headless=True)
    try:
        find_cjk_font(cfg.display.font)
    except FontMissing as e:
        print(f"kiosk: {e}", file=sys.stderr)
        return 3
    from kiosk.wiring import build_preview_runtime

    scratch = tempfile.mkdtemp(prefix="kiosk-screenshot-")
    # A render touches nothing real: its own ledger, no central, simulated devices.
    rt = build_preview_runtime(cfg, Path(scratch))
    rt.start()
    app = build_app(rt, capture=str(Path(out).resolve()))
    if lang:
        app.lang = lang
    names = {"home"} | set(rt.roles)
    if screen not in names and screen not in _extra_screens(rt):
        rt.stop()
        print(
            f"kiosk: screen {screen!r} is not on this device (roles: {', '.join(rt.roles)}); "
            f"choose one of {', '.join(sorted(names | _extra_screens(rt)))}",
            file=sys.stderr,
        )
        return 2

    def ready(*_):
        app.go(screen)
        if state is not None or large:
            from screens.states import show  # the CLI's state renders (screens/states.py)

            app.capture_ready = show(app, screen, state or "", large)
        if setup:
            setup(app)
        app.arm_capture()

    app.first_frame_callbacks.append(ready)
    try:
        app.run()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not Path(out).exists():
        print(f"kiosk: no screenshot was written to {out}", file=sys.stderr)
        return 1
    return 0


def _extra_screens(rt: Runtime) -> set[str]:
    idcard = {"idcard"} if rt.dispenser is not None and rt.dispenser.idcard is not None else set()
    return {"service"} | idcard

"""The technician service screen, behind a hidden gesture and a PIN.

Gesture: five taps within 3 s on the hall name (top-left of the header), or
a 3-second press on it. Citizens do not find it by accident and it needs no
extra button. Then a PIN keypad; the PIN is checked off the UI thread
(PBKDF2 takes ~0.2 s) and locked after too many wrong tries (kiosk/technician/service.py).

Once open it shows everything a technician needs to tell in a minute whether
the device is healthy, and the tests and the restart. Leaving it (or the
idle timeout) locks it again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kivy.clock import Clock
from kivy.lang import Builder
from kivy.metrics import dp
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.utils import escape_markup

from kiosk.core import i18n
from kiosk.core.bootguard import RESTART_EXIT_CODE
from kiosk.technician import service as technician
from screens.widgets import KioskScreen, KLabel, in_background

TAPS = 5
TAP_WINDOW_S = 3.0
LONG_PRESS_S = 3.0
CORNER_DP = 200  # the top-left part of the header that counts

i18n.register(
    {
        "service.title": ("技术员服务模式", "Technician service mode"),
        "service.pin": ("请输入维护密码", "Enter the service PIN"),
        "service.wrong": ("密码错误，还可尝试 {n} 次", "Wrong PIN, {n} tries left"),
        "service.locked": ("错误次数过多，请 {m} 分钟后再试", "Too many wrong tries: wait {m} min"),
        "service.no_pin": (
            "未设置维护密码：用 kiosk hash-pin 生成 technician.pin_hash 写入配置",
            "No service PIN: make technician.pin_hash with kiosk hash-pin and put it in the config",
        ),
        "service.checking": ("正在验证…", "Checking ..."),
        "service.clear": ("清除", "Clear"),
        "service.enter": ("确定", "Enter"),
        "service.selftest": ("自检", "Self-check"),
        "service.test_print": ("打印测试", "Test print"),
        "service.test_leds": ("指示灯测试", "Test LEDs"),
        "service.restart": ("重启", "Restart"),
        "service.restart_confirm": ("再按一次重启", "Tap again"),
        "service.close": ("退出", "Close"),
        "service.running": ("进行中…", "Running ..."),
        "service.sec.device": ("设备", "Device"),
        "service.sec.central": ("中心系统", "Central system"),
        "service.sec.outbox": ("待上传与失败记录", "Outbox and dead letters"),
        "service.sec.devices": ("外设", "Printer, scanner, buttons"),
        "service.sec.self-check": ("自检结果", "Self-check"),
        "service.sec.config": ("配置（已隐藏密钥）", "Configuration (secrets hidden)"),
    }
)

VERDICT_COLOURS = {"OK": "168742", "WARN": "b36b00", "FAIL": "c8102e"}


def install_gesture(app) -> None:
    """Hook the hidden gesture onto the hall name in the header."""
    target = app.header.ids.hall
    # "taps": recent tap times (monotonic); "press": the pending long-press Kivy ClockEvent, or None.
    state: dict[str, Any] = {"taps": [], "press": None}

    def in_corner(touch):
        # The header is not a relative layout: its children use window coordinates.
        return target.collide_point(*touch.pos) and touch.pos[0] - target.x <= dp(CORNER_DP)

    def open_service(*_):
        state["taps"].clear()
        if app.sm.current != "service":
            app.go("service")

    def down(widget, touch):
        if not in_corner(touch):
            return False
        now = time.monotonic()
        state["taps"] = [t for t in state["taps"] if now - t <= TAP_WINDOW_S] + [now]
        if len(state["taps"]) >= TAPS:
            open_service()
        else:
            state["press"] = Clock.schedule_once(open_service, LONG_PRESS_S)
        return False  # the header keeps its own touch handling

    def up(widget, touch):
        if state["press"] is not None:
            state["press"].cancel()
            state["press"] = None
        return False

    target.bind(on_touch_down=down, on_touch_up=up)


class ServiceScreen(KioskScreen):
    unlocked = BooleanProperty(False)
    pin_text = StringProperty("")
    message = StringProperty("")
    action_text = StringProperty("")
    checking = BooleanProperty(False)
    restart_armed = BooleanProperty(False)
    locked_left = NumericProperty(0)

    def on_kv_post(self, base_widget):
        self._gate = None
        self._digits = ""
        self._refresh_event = None
        self.bench = None  # technician.Bench while unlocked: scanner/button tests, central probe
        # ids are weak references: keep the two views alive while one is off the tree.
        self.gate_view, self.panel_view = self.ids.gate.__self__, self.ids.panel.__self__
        self.ids.body.remove_widget(self.panel_view)

    # -- the gate ---------------------------------------------------------------
    @property
    def gate(self) -> technician.PinGate:
        if self._gate is None:
            self._gate = technician.PinGate(self.app.rt.cfg, self.app.rt.ledger)
        return self._gate

    def on_pre_enter(self, *args):
        self.lock()
        self._show_gate_state()

    def on_leave(self, *args):
        self.lock()

    def reset(self) -> None:
        self.lock()

    def _show_gate_state(self):
        if not self.gate.configured:
            self.message = self.app.tr("service.no_pin")
            return
        # The lockout is kept in the ledger: read it off the UI thread.
        in_background(self.gate.locked_for, done=self._show_locked)

    def _show_locked(self, left: float) -> None:
        if self.app is None or self.unlocked or self.checking:
            return
        self.message = self.app.tr("service.locked", m=int(left // 60) + 1) if left > 0 else ""

    def key(self, digit: str):
        if self.checking or len(self._digits) >= 12:
            return
        self._digits += digit
        self.pin_text = " ".join("*" * len(self._digits))  # ASCII: wqy has no ● and SDL renders it slowly
        self.app.touch_activity()

    def clear(self):
        self._digits = ""
        self.pin_text = ""

    def enter(self):
        if self.checking or not self._digits:
            return
        pin, self._digits, self.pin_text = self._digits, "", ""
        self.checking = True
        self.message = self.app.tr("service.checking")
        in_background(self._attempt, pin, done=self._checked, failed=lambda e: self._checked((False, "error", 0)))

    def _attempt(self, pin: str) -> tuple[bool, str, int]:
        """Off the UI thread: the PIN check and the tries left (both read the ledger)."""
        ok, why = self.gate.check(pin)
        return ok, why, self.gate.tries_left()

    def _checked(self, outcome):
        ok, why, tries_left = outcome
        self.checking = False
        if self.app.sm.current != "service":
            return  # left while checking: stay locked
        if ok:
            self.message = ""
            self.unlock()
        elif why == "wrong":
            self.message = self.app.tr("service.wrong", n=tries_left)
        elif why == "no_pin":
            self.message = self.app.tr("service.no_pin")
        else:
            self._show_gate_state()

    # -- the panel --------------------------------------------------------------
    def unlock(self):
        body = self.ids.body
        body.remove_widget(self.gate_view)
        if self.panel_view.parent is None:
            body.add_widget(self.panel_view)
        self.unlocked = True
        self.bench = technician.Bench(self.app.rt)
        self.bench.open()
        self._bind_wedge(True)
        self.refresh()
        self._refresh_event = Clock.schedule_interval(self._tick, 2.0)

    def _tick(self, dt):
        if self.app is None or self.app.sm.current != "service":
            return False  # the app stopped or moved on: stop refreshing
        self.refresh()

    def lock(self):
        if self._refresh_event is not None:
            self._refresh_event.cancel()
            self._refresh_event = None
        if self.bench is not None:
            self._bind_wedge(False)
            self.bench.close()  # the buttons go back to issuing tickets / ratings
            self.bench = None
        body = self.ids.body
        if self.panel_view.parent is not None:
            body.remove_widget(self.panel_view)
        if self.gate_view.parent is None:
            body.add_widget(self.gate_view)
        self.unlocked = False
        self.restart_armed = False
        self.action_text = ""
        self.clear()

    def refresh(self):
        """Gather the facts off the UI thread (the printer status may take a moment)."""
        in_background(technician.collect, self.app.rt, self.bench, done=self._show)

    # -- the scanner test for a keyboard-wedge scanner ---------------------------
    # A serial or simulated scanner reaches the Bench through the lookup's ScanHub;
    # a wedge types into the window, so while unlocked this screen feeds it, as
    # the lookup screen does.
    def _bind_wedge(self, on: bool):
        rt = self.app.rt
        if rt.lookup is None or rt.lookup.wedge is None:
            return
        from kivy.core.window import Window

        (Window.bind if on else Window.unbind)(on_key_down=self._wedge_key_down, on_textinput=self._wedge_text)

    def _wedge_text(self, window, text):
        for ch in text:
            self.app.rt.lookup.wedge.key(ch, time.monotonic())

    def _wedge_key_down(self, window, key, *args):
        if key not in (13, 271) or self.bench is None:
            return False
        payload = self.app.rt.lookup.wedge.enter(time.monotonic())
        if payload is not None:
            from kiosk.roles.lookup.service import Scan

            self.bench.seen_scan(
                Scan(
                    payload.text if payload.valid else None,
                    "wedge",
                    None if payload.valid else (payload.problem or "invalid"),
                )
            )
            self.refresh()
        return True

    def _show(self, sections):
        if not self.unlocked:
            return
        box = self.ids.info
        box.clear_widgets()
        for key, rows in sections:
            box.add_widget(KLabel(text=self.app.tr("service.sec." + key), base_size=22, bold=True))
            lines = []
            for label, value in rows:
                value = escape_markup(str(value))
                for verdict, colour in VERDICT_COLOURS.items():
                    if value.startswith(verdict):
                        value = f"[color={colour}][b]{verdict}[/b][/color]" + value[len(verdict) :]
                lines.append(f"[b]{escape_markup(label)}[/b]   {value}")
            box.add_widget(KLabel(text="\n".join(lines) or "-", base_size=16, markup=True))

    def _run(self, fn, *args):
        self.action_text = self.app.tr("service.running")
        self.is_busy = True

        def done(result):
            self.is_busy = False
            self.action_text = str(result)
            self.refresh()

        def failed(exc):
            self.is_busy = False
            self.action_text = f"{type(exc).__name__}: {exc}"

        in_background(fn, *args, done=done, failed=failed)

    def run_selftest(self):
        from kiosk.technician import selftest

        self._run(lambda rt: selftest.run_into(rt).summary(), self.app.rt)

    def test_print(self):
        self._run(technician.test_print, self.app.rt)

    def test_leds(self):
        self._run(technician.test_leds, self.app.rt)

    def restart(self):
        """Exit with the code that makes systemd start the kiosk again (two taps)."""
        if not self.restart_armed:
            self.restart_armed = True
            Clock.schedule_once(lambda dt: setattr(self, "restart_armed", False), 4)
            return
        rt = self.app.rt
        guard = rt.boot_guard
        if guard is not None and rt.out_of_service:
            guard.reset()  # the technician has fixed the cause: start the roles again
        self.app.exit_code = RESTART_EXIT_CODE
        self.app.stop()

    def close(self):
        self.lock()
        self.app.go("home")


Builder.load_file(str(Path(__file__).with_name("service.kv")))

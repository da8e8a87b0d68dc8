"""The dispenser screen: choose a service, take a ticket.

States (an inner ScreenManager, so only the current state's words exist in
the widget tree): [entry ->] choose | checkin -> busy -> done | refused;
closed outside opening hours. ``entry`` (预约签到 / 选择业务) is the first
state when [dispenser] entries offers appointments; ``checkin`` types the
booking code on the keypad (a booking QR from the scanner arrives through
the lookup screen's scan routing, check_in_scan). A refused check-in offers
an ordinary ticket instead. The service call runs in the background (paper check, central call
and printing can take seconds); hardware buttons arrive from gpiozero's
thread and are handed to the UI thread with Clock.schedule_once.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kivy.clock import Clock
from kivy.lang import Builder
from kivy.metrics import dp, sp
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.screenmanager import NoTransition, Screen

from kiosk.core import i18n
from kiosk.roles.dispenser.booking import parse_booking
from kiosk.roles.dispenser.service import TicketRefused
from screens import (
    keypad,  # noqa: F401  (the Keypad widget's kv rules)
    theme,
)
from screens.widgets import FitButton, KioskScreen, Mailbox, in_background, routed

log = logging.getLogger("screens.dispenser")

i18n.register(
    {
        "disp.choose": ("请选择您要办理的业务", "Please choose a service"),
        "disp.choose_priority": ("绿色通道：请选择业务", "Priority lane: choose a service"),
        "disp.waiting": ("等候 {n} 人", "{n} waiting"),
        "disp.est": ("约 {m} 分钟", "about {m} min"),
        "disp.priority": ("绿色通道", "Priority lane"),
        "disp.priority.sub": ("老年人 · 残疾人 · 孕妇", "Elderly · disabled · pregnant"),
        "disp.priority.cancel": ("取消绿色通道", "Cancel priority"),
        "disp.idcard": ("刷身份证取号", "Take a ticket with your ID card"),
        "disp.busy": ("正在出票，请稍候…", "Printing your ticket, please wait…"),
        "disp.your_number": ("您的号码", "Your number"),
        "disp.take": ("请取走您的号票", "Please take your ticket"),
        "disp.ahead": ("前面还有 {n} 人等候", "{n} people ahead of you"),
        "disp.ahead_wait": ("前面还有 {n} 人等候，预计约 {m} 分钟", "{n} people ahead of you, about {m} min"),
        "disp.issued_priority": ("绿色通道号", "Priority lane ticket"),
        "disp.offline": ("离线票：等候人数请看叫号屏", "Offline ticket: see the call display for the queue"),
        "disp.print_failed": (
            "号票打印失败，您的号码已保留。请按“补打”，或到服务台告知号码。",
            "The ticket did not print; your number is kept. Press Reprint, or tell the counter your number.",
        ),
        "disp.reprint": ("补打号票", "Reprint"),
        "disp.back_in": ("{s} 秒后返回", "Back in {s} s"),
        "disp.done_button": ("完成", "Done"),
        "disp.refused.paper_out": (
            # Two sentences, two lines: wrapped as one, the second left one character alone.
            "打印纸已用完，暂时无法取号。\n请到服务台人工取号。",
            "The printer is out of paper. Please go to the service counter.",
        ),
        "disp.refused.printer_unavailable": (
            "取号机打印机故障，暂时无法取号。\n请到服务台人工取号。",
            "The ticket printer is not working. Please go to the service counter.",
        ),
        "disp.refused.numbers_exhausted": (
            "今日号码已发完。\n请到服务台咨询。",
            "No more numbers today. Please ask at the service counter.",
        ),
        "disp.refused.storage_full": (
            "取号机存储空间不足，暂时无法取号。\n请到服务台人工取号。",
            "The ticket machine's storage is full. Please go to the service counter.",
        ),
        "disp.refused.closed": ("现在不是办公时间。", "The hall is closed now."),
        "disp.refused.refused": (
            "暂时无法取号。\n请到服务台人工取号。",
            "No ticket can be issued now. Please go to the service counter.",
        ),
        "disp.refused.title": ("抱歉", "Sorry"),
        "disp.closed.title": ("现在不是办公时间", "We are closed"),
        "disp.closed.hours": ("办公时间", "Opening hours"),
        "disp.closed.days": ("{days}", "{days}"),
        "disp.used_up": ("本时段号已发完", "Used up for now"),
        "disp.entry.title": ("请选择取号方式", "How would you like to take a number?"),
        "disp.entry.appointment": ("预约签到", "Appointment check-in"),
        "disp.entry.appointment.sub": (
            "输入预约码，或扫描手机上的预约二维码",
            "Type the booking code or scan it from your phone",
        ),
        "disp.entry.service": ("选择业务", "Choose a service"),
        "disp.entry.service.sub": ("现场取号", "Take a number now"),
        "disp.checkin.title": ("预约签到", "Appointment check-in"),
        "disp.checkin.hint": (
            "请输入预约码，或将手机上的预约二维码对准扫码口",
            "Type your booking code, or hold the booking QR code on your phone to the scanner",
        ),
        "disp.checkin.code": ("预约码", "Booking code"),
        "disp.checkin.go": ("签到", "Check in"),
        "disp.checkin.back": ("返回", "Back"),
        "disp.issued_appointment": ("预约号", "Appointment ticket"),
        "disp.walk_in": ("改取普通号", "Take an ordinary ticket"),
        "disp.refused.booking_unknown": (
            "没有找到这个预约。\n请核对预约码，或改取普通号。",
            "No booking has this code. Check the code, or take an ordinary ticket.",
        ),
        "disp.refused.booking_bad_code": (
            "这不是有效的预约码。\n请核对后重新输入，或改取普通号。",
            "That is not a booking code. Check it and try again, or take an ordinary ticket.",
        ),
        "disp.refused.booking_used": (
            "这个预约已经签到过了，\n不能再取一个号。",
            "This booking has already been checked in; it gives one number only.",
        ),
        "disp.refused.booking_expired": (
            "这个预约已过签到时间。\n您可以改取普通号。",
            "The check-in time of this booking has passed. You can take an ordinary ticket.",
        ),
        "disp.refused.booking_early": (
            "还没到签到时间。\n请于 {t} 以后再来签到。",
            "It is too early to check in. Please come back at {t}.",
        ),
        "disp.refused.checkin_offline": (
            "预约签到需要连接中心系统，现在连接不上。\n您可以先改取普通号。",
            "Check-in needs the central system, which cannot be reached now. You can take an ordinary ticket.",
        ),
        "disp.refused.quota_full": (
            "这项业务本时段的号已发完。\n请到服务台咨询。",
            "All numbers of this service for this time window are taken. Please ask at the service counter.",
        ),
        "disp.no_categories": (
            "暂无可取号的业务，请到服务台咨询。",
            "No services available; please ask at the counter.",
        ),
    }
)

WEEKDAY_NAMES = {"zh": "一二三四五六日", "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")}


def days_text(days: list[int], lang: str) -> str:
    names = WEEKDAY_NAMES[lang]
    days = sorted(set(days))
    if days and days == list(range(days[0], days[-1] + 1)) and len(days) > 2:
        a, b = names[days[0] - 1], names[days[-1] - 1]
        return f"周{a}至周{b}" if lang == "zh" else f"{a}–{b}"
    return "、".join("周" + names[d - 1] for d in days) if lang == "zh" else ", ".join(names[d - 1] for d in days)


class StateScreen(Screen):
    pass


class DispenserScreen(KioskScreen):
    state = StringProperty("choose")  # entry | choose | checkin | busy | done | refused | closed
    priority_mode = BooleanProperty(False)
    countdown = NumericProperty(0)
    refused_reason = StringProperty("")
    # what the confirmation shows (forgotten by reset)
    number = StringProperty("")
    service_name = StringProperty("")
    ahead_text = StringProperty("")
    offline = BooleanProperty(False)
    print_failed = BooleanProperty(False)
    is_priority = BooleanProperty(False)  # the issued ticket is a 绿色通道 one
    has_idcard = BooleanProperty(False)  # an ID card reader is configured: offer 刷身份证取号
    is_appointment = BooleanProperty(False)  # the issued ticket is a check-in's
    entries = ListProperty(["service"])  # [dispenser] entries, as the last view said
    code = StringProperty("")  # the booking code being typed (forgotten by reset)
    opens_at = StringProperty("")  # a too-early booking's check-in time
    walk_in = BooleanProperty(False)  # the refusal offers an ordinary ticket instead

    def on_kv_post(self, base_widget):
        # Kept: at app stop App.get_running_app() is already None, and we still need the runtime.
        self._app = self.app
        self.ids.states.transition = NoTransition()
        self._ticket = None
        self._view = None  # the last DispenserView read in the background
        rt = self._app.rt
        if rt.dispenser is not None:
            self.entries = list(rt.cfg.dispenser.entries)
        self.set_state(self.home_state())
        self._home_event = None
        self._count_event = None
        # A language, text size or lane change redraws what was read; no new read.
        self.app.bind(lang=self.redraw, font_scale=self.redraw)
        self.bind(priority_mode=self.redraw)
        svc = self.service
        if svc is not None and not routed(self.app, self.name):
            svc.button_listeners.append(self._hardware_press)
        self.has_idcard = self._app.rt.dispenser is not None and self._app.rt.dispenser.idcard is not None
        if not self.has_idcard:
            # No reader: the entry leaves the layout (a zero-height button still takes a spacing).
            self.ids.idcard.parent.remove_widget(self.ids.idcard)
        self._mailbox = Mailbox(self.handle_scan)  # device thread -> UI thread, newest scan wins
        self._scans = rt.dispenser.scans if rt.dispenser is not None else None
        if self._scans is not None:  # a dispenser-only kiosk's booking scanner
            self._scans.subscribe(self._scan_from_device)
        self._poll = Clock.schedule_interval(self._periodic, 10)
        self.app.bind(on_stop=self._stop_timers)
        self.refresh()

    def _stop_timers(self, *args):
        # The app is going away: no timer of ours may fire into a dead screen.
        self._poll.cancel()
        self._cancel_timers()
        svc = self.service
        if svc is not None and self._hardware_press in svc.button_listeners:
            svc.button_listeners.remove(self._hardware_press)
        if self._scans is not None:
            self._scans.unsubscribe(self._scan_from_device)

    @property
    def service(self):
        rt = self._app.rt
        return rt.dispenser.service if rt.dispenser is not None else None

    @property
    def has_content(self) -> bool:
        return self.state in ("done", "refused", "checkin") or self.priority_mode

    def home_state(self) -> str:
        """The first state: the entry choice when appointments are offered, else the services."""
        return "entry" if "appointment" in self.entries else "choose"

    # -- what is shown ----------------------------------------------------------
    def on_enter(self, *args):
        self.refresh()

    def _periodic(self, dt):
        if self.state in ("entry", "choose", "closed"):
            self.refresh()

    def refresh(self, *args):
        """Read what the choose and closed states show (cache and ledger) in the
        background; it is drawn when it arrives on the UI thread."""
        svc = self.service
        if svc is None:
            return
        in_background(svc.view, done=self._show_view)

    def redraw(self, *args):
        if self._view is not None:
            self._show_view(self._view)

    def _show_view(self, view):
        if self._app is None or self._app.rt.dispenser is None:
            return
        self._view = view
        self.entries = list(view.entries)
        if self.state == "closed" and view.open:
            self.set_state(self.home_state())
        elif self.state in ("entry", "choose") and not view.open:
            self.set_state("closed")
        self._build_categories(view.categories)
        self._build_closed(view.days, view.spans)

    def set_state(self, state: str):
        self.state = state
        self.ids.states.current = state

    def _build_categories(self, cats):
        grid = self.ids.categories
        # The buttons are kept and refilled, not made anew on each view and each change of
        # language or text size: a button dropped while app.font_scale is being dispatched
        # (the redraw runs inside that dispatch) can be collected mid-dispatch, and Kivy then
        # calls its dead kv binding (ReferenceError). Only a change of count adds or removes.
        buttons = list(reversed(grid.children))
        while len(buttons) > len(cats):
            grid.remove_widget(buttons.pop())
        tr, lang, scale = self.app.tr, self.app.lang, self.app.font_scale
        self.ids.no_categories.opacity = 0 if cats else 1
        grid.cols = 1 if len(cats) <= 2 else 2
        for i, cat in enumerate(cats):
            extra = []
            if cat.waiting is not None:
                extra.append(tr("disp.waiting", n=cat.waiting))
            if cat.est_wait_s:
                extra.append(tr("disp.est", m=max(1, round(cat.est_wait_s / 60))))
            text = cat.name(lang)
            if cat.used_up:
                # Said in words, not only greyed: the button takes no number now.
                extra = [tr("disp.used_up")]
            if extra:
                text += f"\n[size={int(dp(24) * scale)}]{'  ·  '.join(extra)}[/size]"
            # A central's English names can be long ("Social & medical insurance"):
            # the button shrinks them to fit whole rather than dropping a line.
            if i < len(buttons):
                btn = buttons[i]
            else:
                btn = FitButton(base_size=38)
                btn.bind(on_release=lambda b: self.choose(b.code))
                grid.add_widget(btn)
            btn.code = cat.code
            btn.text = text
            btn.want_size = sp(38) * scale
            # Grey but readable (white on MUTED is 6.5:1), and still pressable: a press
            # says why no number comes (the service refuses it, QuotaFull) instead of nothing.
            btn.bg = theme.MUTED if cat.used_up else (theme.PRIORITY if self.priority_mode else theme.PRIMARY)

    def _build_closed(self, days, spans):
        lang = self.app.lang
        self.ids.closed_hours.text = f"{self.app.tr('disp.closed.hours')}\n{days_text(days, lang)}  " + "  ".join(spans)

    # -- actions ------------------------------------------------------------------
    def toggle_priority(self):
        if self.state == "choose":
            self.priority_mode = not self.priority_mode

    def by_idcard(self):
        if self.state == "choose" and self.has_idcard:
            self.priority_mode = False
            self.app.go("idcard")

    def open_services(self):
        """选择业务 (or 改取普通号 after a refused check-in): the service buttons."""
        if self.state in ("entry", "refused", "checkin"):
            self._cancel_timers()
            self.refused_reason = ""
            self.set_state("choose")
            self.app.touch_activity()

    def open_checkin(self):
        if self.state == "entry":
            self.code = ""
            self.set_state("checkin")
            self.app.touch_activity()

    def back(self):
        """From the services or the keypad back to the entry choice."""
        self.code = ""
        self.priority_mode = False
        self.set_state(self.home_state())

    def key(self, key: str):
        """A keypad key while typing the booking code."""
        self.app.touch_activity()
        if key == "back":
            self.code = self.code[:-1]
        elif key == "clear":
            self.code = ""
        elif len(key) == 1 and key.isalnum() and len(self.code) < 12:
            self.code += key

    def submit_code(self):
        if self.state == "checkin" and self.code:
            self._check_in(code=self.code)

    def check_in_scan(self, payload):
        """A booking QR from the scanner (routed here by the lookup screen), on the UI thread."""
        if self.state in ("busy", "closed") or self.service is None:
            return
        self.app.touch_activity()
        code = parse_booking(payload)
        if code is None:  # it said APPT: but holds no code: plain words, nothing sent anywhere
            from kiosk.roles.dispenser.service import BookingRefused

            self.show_refused(BookingRefused("booking_bad_code", "booking QR without a code"))
            return
        self._check_in(code=code)

    def _scan_from_device(self, scan):
        """Called on the scanner's thread: handed to the UI thread through the screen's mailbox."""
        self._mailbox.post(scan)

    def handle_scan(self, scan):
        """A scan on a dispenser-only kiosk: a booking QR checks in; anything else is said to be no booking."""
        if self.app.sm.current == "service":
            return  # the technician's scanner test takes every scan while it is open
        if self.app.sm.current != self.name:
            self.app.go(self.name)
        self.check_in_scan(None if scan.problem else scan.payload)

    def _check_in(self, code=None, person=None):
        if self.service is None:
            return
        self.is_busy = True
        self.set_state("busy")
        in_background(self.service.check_in, code, person, done=self.show_issued, failed=self.show_refused)
        self.code = ""  # typed once, sent once, not kept on the screen

    def check_in_person(self, person: str):
        """The ID card path: a check-in by person key (the card reader's side connects here)."""
        if self.state not in ("busy", "closed"):
            self.app.touch_activity()
            self._check_in(person=person)

    def choose(self, code: str, priority: bool | None = None):
        if self.state not in ("choose", "entry") or self.service is None:
            return  # a second tap while a ticket is printing does not take a second number
        prio = self.priority_mode if priority is None else priority
        self.is_busy = True
        self.set_state("busy")
        in_background(self.service.issue, code, prio, done=self.show_issued, failed=self.show_refused)

    def reprint(self):
        if self._ticket is None or self.state != "done":
            return
        self.is_busy = True
        self.set_state("busy")
        in_background(self.service.reprint, self._ticket.id, done=self.show_issued, failed=self.show_refused)

    def _hardware_press(self, name: str):
        """From gpiozero's thread: hand over to the UI thread."""
        Clock.schedule_once(lambda dt: self.hardware_press(name), 0)

    def hardware_press(self, name: str):
        self.app.touch_activity()
        if self.app.sm.current != self.name:
            self.app.go(self.name)
        if name == "priority":
            self.toggle_priority()
        else:
            self.choose(name)

    def show_issued(self, result):
        self.is_busy = False
        t = result.ticket
        self._ticket = t
        self.number = t.display
        self.service_name = t.service_en if self.app.lang == "en" else t.service_zh
        self.offline = t.offline
        self.is_priority = bool(t.priority)
        self.is_appointment = bool(t.appointment)
        if t.people_ahead is None or t.offline:
            self.ahead_text = ""
        elif t.est_wait_s:
            self.ahead_text = self.app.tr("disp.ahead_wait", n=t.people_ahead, m=max(1, round(t.est_wait_s / 60)))
        else:
            self.ahead_text = self.app.tr("disp.ahead", n=t.people_ahead)
        self.print_failed = not result.printed
        self.priority_mode = False
        self.set_state("done")
        # Said as shown: the number on the screen, or the print failure it explains.
        self.app.speak("ticket.issued", number=t.display) if result.printed else self.app.speak("ticket.fault")
        self.app.touch_activity()
        self._start_countdown(self.app.rt.cfg.dispenser.confirm_seconds * (3 if self.print_failed else 1))

    def show_refused(self, exc):
        self.is_busy = False
        if not isinstance(exc, TicketRefused):
            log.error("ticket not issued: %s", type(exc).__name__)
        reason = getattr(exc, "reason", "refused")
        if reason == "closed":
            self.priority_mode = False
            self.set_state("closed")
            return
        self.refused_reason = reason
        self.opens_at = getattr(exc, "opens_at", None) or ""
        # A check-in that cannot be done offers an ordinary ticket (when this dispenser gives them).
        self.walk_in = (reason.startswith("booking_") or reason == "checkin_offline") and "service" in self.entries
        self.set_state("refused")
        if reason in ("paper_out", "printer_unavailable"):
            self.app.speak("ticket.paper_out" if reason == "paper_out" else "ticket.fault")
        self.app.touch_activity()
        self._start_countdown(self.app.rt.cfg.dispenser.confirm_seconds * 2)

    def time_left(self) -> float | None:
        if self.state in ("done", "refused") and self._count_event is not None:
            return self.countdown
        return super().time_left()

    def more_time(self) -> None:
        if self.state in ("done", "refused") and self._count_event is not None:
            self.countdown = self._count_from  # a full confirmation time again
        super().more_time()

    def _start_countdown(self, seconds: int):
        self._count_from = seconds
        self._cancel_timers()
        self.countdown = seconds
        self._count_event = Clock.schedule_interval(self._tick, 1)

    def _tick(self, dt):
        self.countdown -= 1
        if self.countdown <= 0:
            self.finish()

    def finish(self):
        """Back to start (the 'done' button, the countdown)."""
        self.reset()
        if self.app.sm.current != self.app.home_name:
            self.app.go("home")

    def _cancel_timers(self):
        if self._count_event is not None:
            self._count_event.cancel()
            self._count_event = None

    def reset(self) -> None:
        self._cancel_timers()
        self._ticket = None
        self.number = self.service_name = self.ahead_text = self.refused_reason = ""
        self.code = self.opens_at = ""
        self.offline = self.print_failed = self.is_priority = self.is_appointment = self.walk_in = False
        self.priority_mode = False
        if not self.is_busy:
            self.state = self.home_state()
            self.ids.states.current = self.state
            self.refresh()


Builder.load_file(str(Path(__file__).with_name("dispenser.kv")))

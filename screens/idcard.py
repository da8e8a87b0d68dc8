"""刷身份证取号: take a ticket by ID card, within the per-person rules.

States (an inner ScreenManager): wait (place the card) -> choose (the
services, the tickets this citizen already holds marked) -> busy -> the
dispenser screen's confirmation; held (a ticket for this service is already
held: reprint it), limit (the day's tickets are taken), problem (the card
could not be read, or the reader is not working: a plain message and the
ordinary way to a ticket).

The screen shows only what the desk gives it (kiosk/roles/dispenser/persons.py):
a masked name and number and the person's tickets; the number itself never
reaches it. Desk news arrives on the desk's thread and is handed to the UI
thread with Clock.schedule_once; issuing and reprinting run in the background.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kivy.clock import Clock
from kivy.lang import Builder
from kivy.metrics import dp, sp
from kivy.properties import StringProperty
from kivy.uix.screenmanager import NoTransition, Screen
from kivy.uix.widget import Widget

from kiosk.core import i18n
from kiosk.roles.dispenser.service import (
    BookingRefused,
    CheckInOffline,
    PersonDailyLimit,
    PersonHasTicket,
    TicketRefused,
)
from screens import theme
from screens.widgets import FitButton, KioskScreen, in_background

log = logging.getLogger("screens.idcard")

i18n.register(
    {
        "idc.place": ("请将身份证放在读卡区", "Please place your ID card on the reader"),
        "idc.place.sub": ("读卡后请拿回您的身份证", "Take your card back after it is read"),
        "idc.back": ("返回", "Back"),
        "idc.hello": ("{name}  {id}", "{name}  {id}"),
        "idc.taken": ("今日已取号 {n} / {max} 张", "Tickets today: {n} of {max}"),
        "idc.choose": ("请选择您要办理的业务", "Please choose a service"),
        "idc.held_on": ("已取 {number} · 补打", "Holding {number} · reprint"),
        "idc.held.title": ("您已取过此业务的号", "You already hold a ticket for this service"),
        "idc.held.text": (
            "同一业务请勿重复取号。如号票遗失，可补打。",
            "One ticket per service. If you lost it, it can be reprinted.",
        ),
        "idc.reprint": ("补打号票", "Reprint ticket"),
        "idc.limit.title": ("今日取号已达上限", "Daily ticket limit reached"),
        "idc.limit.text": (
            "每人每天最多取 {max} 张号票。\n如号票遗失，请选择补打。",
            "At most {max} tickets per person per day.\nIf you lost one, choose it to reprint.",
        ),
        "idc.reprint_of": ("补打 {number} · {service}", "Reprint {number} · {service}"),
        "idc.problem.bad_read": (
            "未能读取身份证。\n请将身份证平放在读卡区，稍候不要移动。",
            "The card could not be read.\nPlace it flat on the reader and hold it still.",
        ),
        "idc.problem.reader_down": (
            "身份证读卡器暂时无法使用。\n请选择业务直接取号，或到服务台咨询。",
            "The ID card reader is not working.\nPlease take an ordinary ticket, or ask at the counter.",
        ),
        "idc.problem.unavailable": (
            "暂时无法刷身份证取号。\n请选择业务直接取号。",
            "Tickets by ID card are not available now.\nPlease take an ordinary ticket.",
        ),
        "idc.ordinary": ("选择业务取号", "Take an ordinary ticket"),
        "idc.busy": ("正在处理，请稍候…", "One moment, please…"),
    }
)


class IdStateScreen(Screen):
    pass


class IdCardScreen(KioskScreen):
    state = StringProperty("wait")  # wait | choose | held | limit | problem | busy
    problem = StringProperty("")
    who = StringProperty("")  # masked name and number
    taken_text = StringProperty("")
    held_number = StringProperty("")
    held_service = StringProperty("")
    limit_max = StringProperty("")

    def on_kv_post(self, base_widget):
        self._app = self.app
        self.ids.states.transition = NoTransition()
        self._standing = None
        self._booking_asked: str | None = None  # the person whose booking was looked for
        self._held = None
        self.app.bind(lang=self.redraw, font_scale=self.redraw)
        desk = self.desk
        if desk is not None:
            desk.listeners.append(self._desk_news)
        self.app.bind(on_stop=self._unlisten)

    def _unlisten(self, *args):
        desk = self.desk
        if desk is not None and self._desk_news in desk.listeners:
            desk.listeners.remove(self._desk_news)

    @property
    def desk(self):
        rt = self._app.rt
        return rt.dispenser.idcard if rt.dispenser is not None else None

    @property
    def service(self):
        rt = self._app.rt
        return rt.dispenser.service if rt.dispenser is not None else None

    @property
    def has_content(self) -> bool:
        return self.state != "wait" or self._standing is not None

    def set_state(self, state: str):
        self.state = state
        self.ids.states.current = state

    # -- news from the desk (its own thread) ----------------------------------------
    def _desk_news(self, news):
        Clock.schedule_once(lambda dt: self.on_news(news), 0)

    def on_news(self, news):
        """A card read (or not) while the dispenser's choice or this screen shows; else ignored."""
        app = self.app
        here = app.sm.current == self.name
        at_dispenser = app.sm.current == "dispenser" and app.screen("dispenser").state in ("choose", "entry")
        if news.kind == "reader_up" or not (here or at_dispenser):
            return
        if self.is_busy:
            return  # a ticket is being taken for the card already read
        if news.kind == "card" and news.standing is not None:
            if not here:
                app.go(self.name)
            self.show_standing(news.standing)
        elif here and news.kind in ("bad_read", "reader_down", "unavailable"):
            self.show_problem(news.kind)
        elif news.kind == "bad_read":
            app.go(self.name)
            self.show_problem("bad_read")
        app.touch_activity()

    # -- what is shown --------------------------------------------------------------
    def on_enter(self, *args):
        if self._standing is None and self.state not in ("problem", "busy"):
            self.set_state("wait")
            desk = self.desk
            if desk is not None and desk.reader_ok is False:
                self.show_problem("reader_down")

    def show_standing(self, standing):
        self._standing = standing
        c = standing.citizen
        self.who = self.app.tr("idc.hello", name=c.masked_name, id=c.masked_id)
        self.taken_text = self.app.tr("idc.taken", n=standing.taken, max=standing.daily_max)
        self.limit_max = str(standing.daily_max)
        if standing.at_limit and not any(h.open for h in standing.holdings):
            self.show_limit(standing)
            return
        if "appointment" in self.service.cfg.dispenser.entries and self._booking_asked != c.person:
            # 预约签到 by ID card: a booking of this person today is checked in at
            # once; with none, the card takes an ordinary ticket as before.
            self._booking_asked = c.person  # asked once per card read
            self.is_busy = True
            self.set_state("busy")
            in_background(self._booked_ticket, c.person, done=self._booking_answered, failed=self._refused)
            return
        self.set_state("choose")
        self.redraw()
        in_background(self.service.categories, done=self._build_services)

    def _booked_ticket(self, person: str):
        """Off the UI thread: the ticket of this person's booking, or None when there is none
        (or the central cannot be asked: the card still takes an ordinary ticket)."""
        try:
            return self.service.check_in(person=person)
        except CheckInOffline:
            return None
        except BookingRefused as e:
            if e.reason in ("booking_unknown", "booking_used"):
                return None  # none, or checked in already: the card's own choice shows what it holds
            raise

    def _booking_answered(self, result):
        self.is_busy = False
        if result is not None:
            self._issued(result)
        elif self._standing is not None:
            self.show_standing(self._standing)

    def redraw(self, *args):
        if self._standing is not None:
            s = self._standing
            self.who = self.app.tr("idc.hello", name=s.citizen.masked_name, id=s.citizen.masked_id)
            self.taken_text = self.app.tr("idc.taken", n=s.taken, max=s.daily_max)
            if self.state == "choose" and getattr(self, "_cats", None) is not None:
                self._build_services(self._cats)
            if self.state == "limit":
                self._build_reprints(self._standing)
        if self._held is not None:
            h = self._held
            self.held_service = h.service_en if self.app.lang == "en" and h.service_en else h.service_zh

    def _build_services(self, cats):
        self._cats = cats
        if self._standing is None:
            return
        grid = self.ids.services
        grid.clear_widgets()
        lang, scale = self.app.lang, self.app.font_scale
        grid.cols = 1 if len(cats) <= 2 else 2
        for cat in cats:
            held = self._standing.open_for(cat.code)
            text = cat.name(lang)
            if held is not None:
                sub = self.app.tr("idc.held_on", number=held.display)
                text += f"\n[size={int(dp(24) * scale)}]{sub}[/size]"
            btn = FitButton(text=text, base_size=36, want_size=sp(36) * scale, bg=theme.WARN if held else theme.PRIMARY)
            btn.code = cat.code
            btn.bind(on_release=lambda b: self.choose(b.code))
            grid.add_widget(btn)

    def show_held(self, holding):
        self._held = holding
        self.held_number = holding.display
        self.held_service = holding.service_en if self.app.lang == "en" and holding.service_en else holding.service_zh
        self.set_state("held")

    def show_limit(self, standing):
        self._standing = standing
        self.limit_max = str(standing.daily_max)
        self._build_reprints(standing)
        self.set_state("limit")

    def _build_reprints(self, standing):
        box = self.ids.reprints
        box.clear_widgets()
        lang = self.app.lang
        for h in [h for h in standing.holdings if h.open][:3]:
            service = h.service_en if lang == "en" and h.service_en else h.service_zh or h.category
            btn = FitButton(
                text=self.app.tr("idc.reprint_of", number=h.display, service=service),
                base_size=30,
                want_size=sp(30) * self.app.font_scale,
                bg=theme.WARN,
            )
            btn.size_hint_y, btn.height = None, dp(110) * self.app.font_scale
            btn.holding = h
            btn.bind(on_release=lambda b: self.reprint(b.holding))
            box.add_widget(btn)
        box.add_widget(Widget())  # the buttons keep their size; the rest of the panel stays empty

    def show_problem(self, kind: str):
        self.problem = kind
        self.set_state("problem")

    # -- actions ----------------------------------------------------------------------
    def choose(self, code: str):
        if self.state != "choose" or self._standing is None:
            return
        held = self._standing.open_for(code)
        if held is not None:
            self.show_held(held)
            return
        self.is_busy = True
        self.set_state("busy")
        person = self._standing.citizen.person
        in_background(self.service.issue, code, False, person, done=self._issued, failed=self._refused)

    def reprint(self, holding=None):
        holding = holding or self._held
        if holding is None or self.state not in ("held", "limit"):
            return
        self.is_busy = True
        self.set_state("busy")
        in_background(self.service.reprint_holding, holding, done=self._issued, failed=self._refused)

    def _issued(self, result):
        self.is_busy = False
        self.reset()
        self.app.go("dispenser")
        self.app.screen("dispenser").show_issued(result)

    def _refused(self, exc):
        self.is_busy = False
        if isinstance(exc, PersonHasTicket) and exc.holding is not None:
            self.show_held(exc.holding)
        elif isinstance(exc, PersonDailyLimit) and exc.standing is not None:
            self.show_limit(exc.standing)
        elif isinstance(exc, PersonDailyLimit):
            self.set_state("limit")
        else:
            if not isinstance(exc, TicketRefused):
                log.error("ticket by ID card not issued: %s", type(exc).__name__)
            self.reset()
            self.app.go("dispenser")
            self.app.screen("dispenser").show_refused(exc)

    def ordinary(self):
        """To the ordinary choice of services (no card)."""
        self.reset()
        self.app.go("dispenser")

    def back(self):
        self.reset()
        self.app.go("dispenser")

    def reset(self) -> None:
        # Forget the citizen: the next one must never see this one's name or tickets.
        self._standing = None
        self._booking_asked = None
        self._held = None
        self._cats = None
        self.who = self.taken_text = self.held_number = self.held_service = self.problem = ""
        if "services" in self.ids:
            self.ids.services.clear_widgets()
            self.ids.reprints.clear_widgets()
        if not self.is_busy:
            self.state = "wait"
            self.ids.states.current = "wait"


Builder.load_file(str(Path(__file__).with_name("idcard.kv")))

"""The satisfaction pad's screen: staff card, rating, reasons, phone, thanks, paused.

The rules live in kiosk.roles.pad.service.RatingService; this screen only shows the
session the service opened and hands the citizen's choices to it. It never
offers a control that picks, changes or deletes a rating for anyone but
the citizen in front of it, and the thank-you appears only after the
service has committed the record.
"""

from __future__ import annotations

from pathlib import Path

from kivy.clock import Clock
from kivy.lang import Builder
from kivy.metrics import dp
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty

from kiosk.core.i18n import register
from kiosk.core.privacy import mask_phone
from kiosk.roles.pad.service import BAD_LEVELS, LEVELS, RatingError, stars, valid_phone  # noqa: F401
from screens.widgets import BigButton, FitText, KioskScreen, in_background, routed

register(
    {
        "pad.level.5": ("非常满意", "Very satisfied"),
        "pad.level.4": ("满意", "Satisfied"),
        "pad.level.3": ("基本满意", "Acceptable"),
        "pad.level.2": ("不满意", "Dissatisfied"),
        "pad.level.1": ("非常不满意", "Very dissatisfied"),
        "pad.idle.invite": ("服务结束后，请对我的服务进行评价", "When we are done, please rate my service"),
        "pad.idle.no_card": ("本窗口工作人员信息暂未获取", "Staff details not available yet"),
        "pad.staff_no": ("工号 {no}", "Staff no. {no}"),
        "pad.window": ("{w} 号窗口", "Window {w}"),
        "pad.stars": ("星级", "Rating"),
        "pad.offline": ("离线：评价将在联网后上传", "Offline: ratings upload when back online"),
        "pad.paused.title": ("暂停服务", "Service paused"),
        "pad.paused.body": (
            "工作人员暂时离开，请稍候或前往其他窗口",
            "Staff are away for a moment; please wait or go to another window",
        ),
        "pad.rate.title": ("请您对本次服务进行评价", "Please rate the service you received"),
        "pad.seconds_left": ("剩余 {s} 秒", "{s} s left"),
        "pad.reasons.title": ("请选择不满意的原因（可多选）", "Why were you not satisfied? (choose any)"),
        "pad.reasons.phone": ("留下回访电话（选填）", "Callback number (optional)"),
        "pad.reasons.phone_set": ("回访电话 {p}", "Callback {p}"),
        "pad.reasons.submit": ("提交评价", "Submit"),
        "pad.reasons.back": ("重选等级", "Back"),
        "pad.reasons.need": ("请至少选择一项原因", "Please choose at least one reason"),
        "pad.phone.title": ("请输入手机或固定电话号码", "Enter a mobile or landline number"),
        "pad.phone.ok": ("确定", "OK"),
        "pad.phone.skip": ("不留电话", "No number"),
        "pad.phone.clear": ("清空", "Clear"),
        "pad.phone.del": ("删除", "Delete"),
        "pad.phone.bad": ("号码不正确，请检查", "That number is not valid; please check it"),
        "pad.phone.note": ("仅用于回访，不会公开显示", "Used only to call you back; never shown"),
        "pad.thanks.title": ("感谢您的评价！", "Thank you for your rating!"),
        "pad.thanks.bad": ("我们将认真核实并及时回复", "We will look into it and get back to you"),
        "pad.thanks.callback": ("回访电话 {p}", "We will call {p}"),
        "pad.err.expired": ("评价时间已到", "The time to rate has run out"),
        "pad.err.already_rated": ("本次服务已评价", "This service has already been rated"),
        "pad.err.no_session": ("暂无可评价的服务", "There is no service to rate now"),
        "pad.err.no_more_time": ("已不能再延长时间，请尽快评价", "No more time can be added; please rate now"),
        "pad.err.failed": ("评价未能保存，请再试一次", "The rating could not be saved; please try again"),
        "pad.no_service": ("评价器未就绪，请联系工作人员", "The pad is not ready; please tell the staff"),
    }
)

# ★5 deep green … ★1 red: colour and words both carry the level, so it
# reads for the colour-blind too. White text on each is above 4.5:1.
LEVEL_COLOURS = {
    5: (0.047, 0.447, 0.212, 1),
    4: (0.180, 0.490, 0.196, 1),
    3: (0.200, 0.380, 0.600, 1),
    2: (0.749, 0.345, 0.020, 1),
    1: (0.718, 0.078, 0.114, 1),
}
THANKS_S = 4.0  # seconds the thank-you stays before the idle card returns


class PadButton(FitText, BigButton):
    want_size = NumericProperty(0)


class LevelButton(FitText, BigButton):
    want_size = NumericProperty(0)
    level = NumericProperty(5)
    k = NumericProperty(1.0)


class ReasonToggle(FitText, BigButton):
    want_size = NumericProperty(0)
    code = StringProperty("")
    zh = StringProperty("")
    en = StringProperty("")
    chosen = BooleanProperty(False)


class KeyButton(FitText, BigButton):
    want_size = NumericProperty(0)
    key = StringProperty("")


class PadScreen(KioskScreen):
    """One screen with inner states; `mode` names the one shown."""

    mode = StringProperty("idle")  # idle | paused | rate | reasons | phone | thanks
    k = NumericProperty(1.0)  # content scale: 1 on a 7" 800x480 panel, more on bigger ones
    card_k = NumericProperty(1.0)  # the staff card's (see _card_scale)
    seconds_left = NumericProperty(0)
    staff_name = StringProperty("")
    staff_no = StringProperty("")
    staff_stars = NumericProperty(-1)  # -1: no card
    photo = StringProperty("")
    online = BooleanProperty(False)
    level = NumericProperty(0)  # chosen level waiting for reasons
    chosen = ListProperty([])  # reason codes
    phone = StringProperty("")  # accepted callback number (shown masked only)
    typed = StringProperty("")  # digits being typed on the keypad
    typed_display = StringProperty("")  # the same, grouped 3-4-4 for reading back
    message = StringProperty("")  # a short error line, as an i18n key
    outcome_level = NumericProperty(0)  # the committed record shown on the thank-you
    outcome_phone = StringProperty("")  # masked

    def on_size(self, *args):
        self.k = max(1.0, min(1.4, self.height / dp(396))) if self.height > 10 else 1.0  # in dp: any dpi
        self._card_scale()

    def _card_scale(self, *args):
        """The staff card's text scale, before the large-text factor KLabel applies.

        The card's words fit 396 dp of height at scale 1: a taller panel grows
        them (up to 1.4), large text grows them too, but only as far as the
        height allows (and never below the large-text size itself). Growing by
        both at once pushed the name off the card on a 7" 1024x600 panel."""
        fs = self.app.font_scale if self.app is not None else 1.0
        fits = self.height / dp(396) if self.height > 10 else 1.0
        self.card_k = max(fs, min(1.4 * fs, fits)) / fs

    def on_kv_post(self, base_widget):
        self._session_id = None
        self._tick_ev = None
        self._thanks_ev = None
        self._busy_submit = False
        self._outcome_uuid = None
        self.app.bind(font_scale=self._card_scale)
        self.build_levels()
        self.build_keypad()
        self._paused_seen = False
        self._reasons = None  # the latest list from the service's state
        self._reasons_built = None
        svc = self.service
        if svc is not None:
            if not routed(self.app, self.name):
                svc.subscribe(self._from_service)
            # state() reads the cache and may write the staff photo out: off the UI thread.
            in_background(svc.state, done=lambda st: self.apply("init", st))
        if self.app is not None:
            self.app.bind(on_stop=self._stopping)

    def _stopping(self, *args):
        """The app is closing: no timer of ours may run after it."""
        self._stop_tick()
        if self._thanks_ev:
            self._thanks_ev.cancel()
            self._thanks_ev = None
        if self.service is not None:
            self.service.unsubscribe(self._from_service)

    @property
    def service(self):
        rt = self.app.rt if self.app else None
        return rt.pad.service if rt is not None and rt.pad is not None else None

    @property
    def has_content(self) -> bool:
        return self.mode not in ("idle", "paused")

    # -- from the service (any thread) -> UI thread -------------------------------
    def _from_service(self, what, st):
        Clock.schedule_once(lambda dt: self.apply(what, st) if self.app is not None else None, 0)

    def apply(self, what, st):
        if st.reasons is not None:
            self._reasons = st.reasons
            if self.mode == "reasons" and st.reasons != self._reasons_built:
                self.build_reasons()  # the central system sent a new list while it is shown
        self.online = st.online
        self._paused_seen = st.paused
        card = st.card or {}
        self.staff_name = str(card.get("name") or "")
        self.staff_no = str(card.get("employee_no") or "")
        stars_n = card.get("stars")
        self.staff_stars = stars_n if isinstance(stars_n, int) and not isinstance(stars_n, bool) else -1
        photo = card.get("photo_path") or ""
        self.photo = photo if photo and Path(photo).exists() else ""
        if what == "rated":
            self.show_thanks(st.last_outcome or {})
            return
        if what == "not_rated":
            if self.mode != "thanks":
                self.to_rest()
            return
        sess = st.session
        if sess is not None:
            new = sess.session_id != self._session_id
            self._session_id = sess.session_id
            self._start_tick()
            if new:
                self._clear_choice()
            if sess.level in BAD_LEVELS and (new or (what == "level" and sess.level != self.level)):
                self.level = sess.level
                self.mode = "reasons"
            elif new:
                self.mode = "rate"
            if new and self.app is not None:
                self.app.speak("pad.invite")  # "请您对我的服务进行评价", as the screen asks
                if self.app.demo and self.app.sm.current != self.name:
                    # The demo plays every role on one screen: the counter just ended a
                    # service, so the pad comes forward, as the pad on the counter would be.
                    self.app.go(self.name)
            self.is_busy = True
        elif self.mode in ("idle", "paused"):
            self.mode = "paused" if st.paused else "idle"

    # -- building the buttons ---------------------------------------------------
    def build_levels(self):
        box = self.ids.levels
        box.clear_widgets()
        for lv in LEVELS:
            b = LevelButton(level=lv, bg=LEVEL_COLOURS[lv], k=self.k)
            self.bind(k=b.setter("k"))
            b.bind(on_release=lambda btn: self.pick_level(btn.level))
            box.add_widget(b)

    def build_reasons(self):
        grid = self.ids.reasons
        grid.clear_widgets()
        svc = self.service
        if svc is None:
            return
        rs = self._reasons
        if rs is None:
            return  # the first state has not arrived yet: built when it does
        self._reasons_built = rs
        for r in rs.items:
            t = ReasonToggle(code=r["code"], zh=r["zh"], en=r["en"])
            t.bind(on_release=lambda btn: self.toggle_reason(btn.code))
            grid.add_widget(t)
        self._refresh_reasons()

    def build_keypad(self):
        grid = self.ids.keypad
        grid.clear_widgets()
        for k in ("1", "2", "3", "4", "5", "6", "7", "8", "9", "del", "0", "clear"):
            b = KeyButton(key=k)
            b.bind(on_release=lambda btn: self.press_key(btn.key))
            grid.add_widget(b)

    def _refresh_reasons(self, *args):
        for t in self.ids.reasons.children:
            t.chosen = t.code in self.chosen

    def on_chosen(self, *args):
        self._refresh_reasons()

    # -- the citizen's choices ------------------------------------------------------
    def pick_level(self, level: int):
        svc = self.service
        if svc is None or self._busy_submit:
            return
        self.message = ""
        if level in BAD_LEVELS:
            # The service tells its listeners, which reads the staff card and may
            # write its photo: off the UI thread, like the submit.
            in_background(
                svc.choose_level,
                level,
                self._session_id,
                done=lambda sess: self._level_chosen(level),
                failed=self._refused,
            )
            return
        self._submit(level, [], None)

    def _level_chosen(self, level: int):
        self.level = level
        self.mode = "reasons"

    def toggle_reason(self, code: str):
        self.message = ""
        if code in self.chosen:
            self.chosen = [c for c in self.chosen if c != code]
        else:
            self.chosen = [*self.chosen, code]
        self._tell_service("choose_reasons", list(self.chosen))

    def _tell_service(self, what: str, value):
        """The choice so far goes to the service, so that the end of the time
        records it instead of losing it (kept in the ledger: off the UI thread)."""
        svc = self.service
        if svc is not None and self._session_id is not None:
            in_background(getattr(svc, what), value, self._session_id, failed=lambda exc: None)

    def on_touch_down(self, touch):
        # Any touch while rating keeps the invitation open (up to its maximum):
        # cheap, no storage, so on the UI thread.
        svc = self.service
        if svc is not None and self._session_id is not None and self.mode in ("rate", "reasons", "phone"):
            svc.activity(self._session_id)
        return super().on_touch_down(touch)

    def submit_reasons(self):
        if not self.chosen:
            self.message = "pad.reasons.need"
            return
        self._submit(self.level, list(self.chosen), self.phone or None)

    def back_to_levels(self):
        self.message = ""
        self.level = 0
        self.chosen = []
        self.mode = "rate"
        self._tell_service("choose_level", None)  # the citizen took the level back

    def open_phone(self):
        self.typed = self.phone
        self.message = ""
        self.mode = "phone"

    def on_typed(self, *args):
        t = self.typed
        self.typed_display = " ".join(p for p in (t[:3], t[3:7], t[7:]) if p) if t.startswith("1") else t

    def press_key(self, key: str):
        self.message = ""
        if key == "del":
            self.typed = self.typed[:-1]
        elif key == "clear":
            self.typed = ""
        elif len(self.typed) < 12:
            self.typed += key

    def accept_phone(self):
        if self.typed and not valid_phone(self.typed):
            self.message = "pad.phone.bad"
            return
        self.phone = self.typed
        self.typed = ""
        self.mode = "reasons"
        self._tell_service("choose_phone", self.phone or None)

    def skip_phone(self):
        self.typed = ""
        self.phone = ""
        self.message = ""
        self.mode = "reasons"
        self._tell_service("choose_phone", None)

    def _submit(self, level, reasons, phone):
        svc = self.service
        self._busy_submit = True
        # The ledger commit (fsync) runs off the UI thread; the thank-you
        # appears from the service's "rated" notice, after the commit.
        sid = self._session_id
        in_background(
            lambda: svc.submit(level, reasons, phone, session_id=sid, via="touch"),
            done=self._submitted,
            failed=self._refused,
        )

    def _submitted(self, record):
        self._busy_submit = False
        self.show_thanks(record)

    def _refused(self, exc):
        self._busy_submit = False
        code = getattr(exc, "code", "failed")
        if code in ("expired", "already_rated", "no_session"):
            self.message = "pad.err." + code
            self.to_rest()
        elif code in ("reason_needed",):
            self.message = "pad.reasons.need"
        else:
            self.message = "pad.err.failed"

    # -- states -----------------------------------------------------------------------
    def show_thanks(self, record: dict):
        if self.mode == "thanks" and self._outcome_uuid == record.get("uuid"):
            return
        self._stop_tick()
        self._outcome_uuid = record.get("uuid")
        self.outcome_level = record.get("level") or 0
        self.outcome_phone = mask_phone(record.get("phone"))
        self.mode = "thanks"
        self.is_busy = True
        if self.app is not None:
            self.app.speak("pad.thanks")
        if self._thanks_ev:
            self._thanks_ev.cancel()
        self._thanks_ev = Clock.schedule_once(lambda dt: self.to_rest(), THANKS_S)

    def to_rest(self):
        """Back to the staff card (or 暂停服务), forgetting the citizen's choices."""
        self._stop_tick()
        if self._thanks_ev:
            self._thanks_ev.cancel()
            self._thanks_ev = None
        self._clear_choice()
        self._session_id = None
        self._outcome_uuid = None
        self.outcome_level = 0
        self.outcome_phone = ""
        self.is_busy = False
        svc = self.service
        if svc is not None and svc.current() is not None:
            # A new session opened meanwhile: show it with the service's whole
            # state, read (and the staff photo written) off the UI thread.
            in_background(svc.state, done=lambda st: self.apply("invite", st))
            return
        self.mode = "paused" if self._paused_seen else "idle"

    def _clear_choice(self):
        self.level = 0
        self.chosen = []
        self.phone = ""
        self.typed = ""

    def reset(self):
        if self.mode in ("thanks",) or self.service is None or self.service.current() is None:
            self.message = ""
            self.to_rest()

    # -- more time ----------------------------------------------------------------------
    def time_left(self) -> float | None:
        if self.mode in ("rate", "reasons", "phone") and self._session_id is not None:
            return self.seconds_left
        return super().time_left()

    def more_time(self) -> None:
        """The service moves the rating's deadline (a limited number of times)."""
        svc = self.service
        if svc is None or self._session_id is None:
            return super().more_time()
        sid = self._session_id
        in_background(svc.extend, sid, done=lambda sess: self._tick(0), failed=self._no_more_time)
        self.app.touch_activity()

    def _no_more_time(self, exc):
        if getattr(exc, "code", "") == "no_more_time":
            self.message = "pad.err.no_more_time"

    # -- countdown ----------------------------------------------------------------------
    def _start_tick(self):
        if self._tick_ev is None:
            self._tick_ev = Clock.schedule_interval(self._tick, 0.25)
        self._tick(0)

    def _stop_tick(self):
        if self._tick_ev is not None:
            self._tick_ev.cancel()
            self._tick_ev = None

    def _tick(self, dt):
        svc = self.service
        sess = svc.current() if svc else None
        if sess is None or sess.session_id != self._session_id:
            return
        self.seconds_left = int(sess.seconds_left(svc.clock()) + 0.999)
        if self.seconds_left <= 0:
            # The timer thread records it too; whichever comes first wins, once.
            in_background(svc.expire_due)

    def on_mode(self, *args):
        if self.mode == "reasons" and self._reasons != self._reasons_built:
            self.build_reasons()  # the central system may have sent a new list
        self.ids.inner.current = self.mode
        if self.app:
            self.app.touch_activity()


Builder.load_file(str(Path(__file__).with_name("pad.kv")))

"""Case progress lookup: scan the receipt QR code (or type the numbers), see the case.

Modes: scan (the prompt), keypad (typing 受理编号 + 查询码), busy, result,
message (offline, wrong code, locked, unreadable code). Case text is shown in
plain labels only: a Kivy markup label would interpret [b] or [color] tags
coming from a forged code or a central record.

The panels are built once and refilled for each scan. Building the result
panel from its kv rules took ~100 ms of the UI thread per scan and left ~20k
short-lived objects behind, whose collection by Python's cyclic GC made the
long tail of scan-to-result (docs/benchmarks.md). Refilling keeps the privacy
rule: `forget()` blanks every label that showed the case and takes the panel
out of the widget tree, so nothing of the last citizen's case is left after
the idle timeout or at the first character of a new scan.
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime
from pathlib import Path

from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout

from kiosk.core import i18n
from kiosk.roles.dispenser.booking import is_booking_payload
from kiosk.roles.lookup.service import Scan
from screens import theme
from screens.keypad import Keypad
from screens.widgets import KioskScreen, KLabel, Mailbox, in_background, routed

log = logging.getLogger("screens.lookup")

i18n.register(
    {
        "lookup.title": ("办件进度查询", "Case progress"),
        "lookup.scan_hint": (
            "请将受理通知书上的二维码对准扫描窗口",
            "Hold the QR code on your receipt up to the scanner",
        ),
        "lookup.scan_sub": (
            "受理通知书即您办理业务时拿到的回执单",
            "The receipt is the acceptance notice you were given at the counter",
        ),
        "lookup.type_instead": (
            "没有二维码？输入受理编号和查询码",
            "No QR code? Type the receipt number and query code",
        ),
        "lookup.help": (
            "查询遇到问题，请拨打 {phone} 热线或到服务窗口咨询",
            "Need help? Call {phone} or ask at a service counter",
        ),
        "lookup.demo_scan": ("演示扫码 {n}", "Demo scan {n}"),
        "lookup.demo_bad": ("演示：无效码", "Demo: bad code"),
        "lookup.demo_newest": ("演示：扫描台上新建的办件", "Demo: scan the bench's newest case"),
        "lookup.busy": ("正在查询，请稍候…", "Looking up your case…"),
        "lookup.reading": ("正在读取二维码…", "Reading the code…"),
        "lookup.receipt_no": ("受理编号", "Receipt number"),
        "lookup.query_code": ("查询码", "Query code"),
        "lookup.search": ("查询", "Look up"),
        "lookup.back": ("返回", "Back"),
        "lookup.type_hint": ("点选输入框，用右侧按键输入", "Tap a box, then use the keys on the right"),
        "lookup.again": ("查询其他办件", "Another case"),
        "lookup.done": ("完成", "Done"),
        "lookup.read_aloud": ("朗读", "Read aloud"),
        "lookup.spoken": ("朗读：{status}。{deadline}", "Read aloud: {status}. {deadline}"),
        "lookup.retry_scan": ("重新扫描", "Scan again"),
        "lookup.retype": ("手动输入", "Type it in"),
        "lookup.clear_in": ("为保护您的隐私，本页 {s} 秒后自动清除", "For your privacy this page clears in {s} s"),
        "lookup.applicant": ("申请人", "Applicant"),
        "lookup.limit": ("办理时限", "Time limit"),
        "lookup.handler": ("经办人", "Handled by"),
        "lookup.collection": ("领取方式", "Collection"),
        "lookup.progress": ("办理进度", "Progress"),
        "lookup.details": ("办件信息", "Case details"),
        "lookup.limit_value": ("{days} 个工作日", "{days} working days"),
        "lookup.due": ("截止日期", "Due by"),
        "lookup.days_left": ("还剩 {n} 个工作日", "{n} working days left"),
        "lookup.due_today": ("今天到期", "Due today"),
        "lookup.overdue": (
            "已超期 {n} 个工作日，请到窗口咨询",
            "Overdue by {n} working days — please ask at a counter",
        ),
        "lookup.handler_value": ("{name} · {window} 号窗口", "{name} · counter {window}"),
        "lookup.window_only": ("{window} 号窗口", "Counter {window}"),
        "lookup.missing": ("请补交以下材料：", "Please bring these documents:"),
        "lookup.refusal": ("不予受理的原因：", "Reason:"),
        "lookup.remedy": ("您可以：", "What you can do:"),
        "lookup.as_of": (
            "网络暂时不通，显示的是 {time} 的查询结果，可能已有更新",
            "Offline: this is the result as of {time}; it may have changed since",
        ),
        "lookup.now_step": ("（当前）", " (now)"),
        "collection.window": ("窗口领取", "Collect at the counter"),
        "collection.post": ("邮寄送达", "By post"),
        "collection.online": ("网上推送（电子证照）", "Online (electronic certificate)"),
        "collection.unknown": ("请到窗口咨询", "Please ask at a counter"),
        # Statuses: the word, then what it means in plain language.
        "status.accepted": ("已受理", "Accepted"),
        "status.accepted.means": (
            "您的申请已经受理，正在等待审查。",
            "Your application has been accepted and is waiting for review.",
        ),
        "status.reviewing": ("审查中", "Under review"),
        "status.reviewing.means": ("工作人员正在审查您的申请材料。", "Staff are checking your documents."),
        "status.needs_materials": ("待补正", "Documents missing"),
        "status.needs_materials.means": (
            "还缺少材料，请按下面的清单补交，补齐后继续办理。",
            "Some documents are missing. Bring the ones listed below; work continues once they arrive.",
        ),
        # The central did not send the list: promise none, say where to ask.
        "status.needs_materials.means_none": (
            "还缺少材料。请到服务窗口或拨打 {phone} 询问需要补交哪些材料，补齐后继续办理。",
            "Some documents are missing. Ask at a service counter or call {phone} which ones; "
            "work continues once they arrive.",
        ),
        "status.deciding": ("审批中", "Awaiting decision"),
        "status.deciding.means": (
            "材料审查已通过，正在等待审批决定。",
            "The review is done; the decision is being made.",
        ),
        "status.completed": ("已办结", "Completed"),
        "status.completed.means": ("您的事项已经办理完毕。", "Your case has been completed."),
        "status.ready_for_pickup": ("待领取", "Ready to collect"),
        "status.ready_for_pickup.means": (
            "办理结果已准备好，请携带身份证原件到窗口领取。",
            "The result is ready. Bring your original ID card and collect it at the counter.",
        ),
        "status.delivered": ("已领取/已送达", "Collected / delivered"),
        "status.delivered.means": ("办理结果已经领取或送达。", "The result has been collected or delivered."),
        "status.refused": ("不予受理", "Not accepted"),
        "status.refused.means": (
            "您的申请未被受理，原因和补救办法见下方。",
            "Your application was not accepted; the reason and what you can do are below.",
        ),
        "status.withdrawn": ("已撤回", "Withdrawn"),
        "status.withdrawn.means": (
            "该申请已撤回，不再办理。",
            "This application was withdrawn and will not be processed.",
        ),
        "status.unknown": ("状态待确认", "Status unclear"),
        "status.unknown.means": ("请到服务窗口咨询办理情况。", "Please ask at a service counter."),
        "step.accepted": ("受理", "Accepted"),
        "step.reviewing": ("审查", "Review"),
        "step.needs_materials": ("补正材料", "Missing documents"),
        "step.deciding": ("审批决定", "Decision"),
        "step.completed": ("办结", "Completed"),
        "step.ready_for_pickup": ("待领取", "Ready to collect"),
        "step.delivered": ("领取/送达", "Collected / delivered"),
        "step.refused": ("不予受理", "Not accepted"),
        "step.withdrawn": ("撤回", "Withdrawn"),
        # Messages for outcomes other than a result.
        "lookup.msg.offline": ("暂时无法连接办件系统", "The case system cannot be reached right now"),
        "lookup.msg.offline.body": (
            "本机没有这件办件的查询记录。您可以：\n· 拨打 {phone} 热线查询\n· 到服务窗口咨询\n· 稍后再来查询",
            "This kiosk has no earlier result for this case. You can:\n"
            "· call {phone}\n· ask at a service counter\n· try again later",
        ),
        "lookup.msg.wrong_code": ("受理编号或查询码不正确", "Receipt number or query code is wrong"),
        "lookup.msg.wrong_code.body": (
            "请核对受理通知书上的受理编号和查询码。还可以再试 {n} 次。",
            "Please check both numbers on your receipt. {n} tries left.",
        ),
        "lookup.msg.locked": ("查询次数过多，已暂时锁定", "Too many wrong tries: locked for now"),
        "lookup.msg.locked.body": (
            "为保护您的信息，这个受理编号的查询已锁定 {m} 分钟。如需帮助，请到服务窗口。",
            "To protect your data, lookups of this receipt number are locked for {m} minutes. "
            "A service counter can help you.",
        ),
        "lookup.msg.try_later": ("查询的人较多，请稍候", "Busy right now: please wait a moment"),
        "lookup.msg.try_later.body": (
            "办件系统正忙，请 {s} 秒后再扫描一次。",
            "The case system is busy. Please scan again in {s} seconds.",
        ),
        "lookup.msg.bad_payload": ("无法识别这个二维码", "This code cannot be read"),
        "lookup.msg.bad_payload.body": (
            "请扫描受理通知书上的查询二维码，或点“手动输入”输入受理编号和查询码。",
            "Please scan the QR code on your receipt, or tap “Type it in”.",
        ),
        "lookup.msg.bad_typed": ("编号格式不对", "That does not look right"),
        "lookup.msg.bad_typed.body": (
            "受理编号为 4–40 位字母或数字，查询码为 4–12 位字母或数字，请核对后重试。",
            "The receipt number has 4–40 letters or digits, the query code 4–12. Please check and try again.",
        ),
        "lookup.msg.rejected": ("暂时无法查询这件办件", "This case cannot be looked up here"),
        "lookup.msg.rejected.body": (
            "请到服务窗口咨询，或拨打 {phone} 热线。",
            "Please ask at a service counter, or call {phone}.",
        ),
        "lookup.msg.error": ("查询出错了", "Something went wrong"),
        "lookup.msg.error.body": (
            "请重新扫描；如仍不行，请到服务窗口咨询。",
            "Please scan again; if it still fails, ask at a service counter.",
        ),
    }
)

STATUS_COLOURS = {
    "accepted": theme.PRIMARY,
    "reviewing": theme.PRIMARY,
    "deciding": theme.PRIMARY,
    "needs_materials": theme.WARN,
    "completed": theme.OK,
    "ready_for_pickup": theme.OK,
    "delivered": theme.OK,
    "refused": theme.ACCENT,
    "withdrawn": theme.MUTED,
    "unknown": theme.MUTED,
}


def fmt_date(iso: str | None, lang: str) -> str:
    try:
        d = date.fromisoformat(iso or "")
    except ValueError:
        return "—"
    return f"{d.year}年{d.month}月{d.day}日" if lang == "zh" else d.strftime("%d %b %Y").lstrip("0")


def fmt_time(iso: str | None, lang: str) -> str:
    try:
        t = datetime.fromisoformat(iso or "")
    except ValueError:
        return ""
    return f"{t.month}月{t.day}日 {t:%H:%M}" if lang == "zh" else f"{t.day} {t:%b %H:%M}"


class StatusBadge(BoxLayout):
    bg = ObjectProperty(theme.PRIMARY)
    text = StringProperty("")


class InfoRow(BoxLayout):
    label = StringProperty("")
    value = StringProperty("")
    value_color = ObjectProperty(theme.TEXT)


class StepRow(BoxLayout):
    text = StringProperty("")
    when = StringProperty("")
    done = BooleanProperty(False)
    current = BooleanProperty(False)


class EntryField(BoxLayout):
    """A display box for typed digits (not a TextInput: no system keyboard, no focus)."""

    label = StringProperty("")
    value = StringProperty("")
    secret = BooleanProperty(False)
    active = BooleanProperty(False)
    __events__ = ("on_select",)

    def on_touch_down(self, touch):
        if self.collide_point(*touch.pos):
            self.dispatch("on_select")
            return True
        return super().on_touch_down(touch)

    def on_select(self):
        pass


class KeypadPanel(BoxLayout):
    receipt = StringProperty("")
    code = StringProperty("")
    field = StringProperty("receipt")
    screen = ObjectProperty(None)

    def on_kv_post(self, base_widget):
        self._follow_field()

    def on_field(self, *args):
        self._follow_field()

    def _follow_field(self):
        # Receipt numbers start with letters (ZW…), query codes are digits: the
        # keypad opens on what the field needs; its own key still switches.
        keypad = self.ids.get("keypad")
        if keypad is not None:
            keypad.letters = self.field == "receipt" and not any(c.isdigit() for c in self.receipt)

    def on_key(self, key):
        self.screen.app.touch_activity()
        value = getattr(self, self.field)
        limit = 40 if self.field == "receipt" else 12
        if key == "back":
            value = value[:-1]
        elif key == "clear":
            value = ""
        elif len(value) < limit:
            value += key
        setattr(self, self.field, value)
        if self.field == "receipt" and key not in ("back", "clear") and self.code == "" and len(value) == limit:
            self.field = "code"


class LookupScreen(KioskScreen):
    mode = StringProperty("scan")  # scan | keypad | busy | result | message
    demo = BooleanProperty(False)

    def __init__(self, **kw):
        self._seq = 0
        self._result = None
        self._message = None
        self._wedge_burst = False
        self._typed = False
        self._panels = None
        self._typed_receipt = ""
        self._mailbox = Mailbox(self.handle_scan)  # device thread -> UI thread, newest scan wins
        super().__init__(**kw)

    # -- wiring ---------------------------------------------------------------
    def on_kv_post(self, base_widget):
        app = self.app
        self.rt = app.rt
        self.demo = bool(self.rt.demo and len(self.rt.demo_scans) >= 2 and hasattr(self.rt.scanner, "inject"))
        if self.rt.lookup is not None and not routed(app, self.name):
            self.rt.lookup.service.scans.subscribe(self._scan_from_device)
        Window.bind(on_key_down=self._on_key_down, on_textinput=self._on_textinput)
        app.bind(lang=self.relabel, font_scale=self.relabel, on_stop=self._unbind)
        # Built once, refilled per scan (see the module docstring).
        self._panels = {
            "scan": ScanPrompt(screen=self),
            "busy": BusyPanel(),
            "result": ResultPanel(screen=self),
            "message": MessagePanel(screen=self),
        }
        self.show_scan()

    def _unbind(self, *args):
        Window.unbind(on_key_down=self._on_key_down, on_textinput=self._on_textinput)
        if self.rt.lookup is not None:
            self.rt.lookup.service.scans.unsubscribe(self._scan_from_device)

    @property
    def has_content(self) -> bool:
        return self.mode != "scan"

    @property
    def help_text(self) -> str:
        return self.app.tr("lookup.help", phone=self.rt.cfg.lookup.help_phone)

    # -- input: scanners --------------------------------------------------------
    def _scan_from_device(self, scan):
        """Called on the scanner's thread: handed to the UI thread through the screen's mailbox."""
        self._mailbox.post(scan)

    def _wedge(self):
        return self.rt.lookup.wedge if self.rt.lookup is not None else None

    def _text_field_focused(self) -> bool:
        root = self.app.root
        stack = [root] if root is not None else []
        while stack:
            w = stack.pop()
            if getattr(w, "focus", False) is True:
                return True
            stack.extend(w.children)
        return False

    def _service_open(self) -> bool:
        # The technician's scanner test (screens/service.py) takes every scan while it is open.
        return self.app.sm.current == "service"

    def _on_textinput(self, window, text):
        wedge = self._wedge()
        if wedge is None or self._text_field_focused() or self._service_open():
            return False
        if not self._wedge_burst:
            # A new scan starts: the previous citizen's result goes at once.
            self._wedge_burst = True
            if self.mode in ("result", "message", "keypad"):
                self.forget()
        for ch in text:
            wedge.key(ch, time.monotonic())
        return True

    def _on_key_down(self, window, key, scancode=None, codepoint=None, modifiers=None, *args):
        wedge = self._wedge()
        if wedge is None or key not in (13, 271) or self._text_field_focused() or self._service_open():
            return False
        self._wedge_burst = False
        payload = wedge.enter(time.monotonic())
        if payload is None:
            return False
        self.handle_scan(
            Scan(
                payload.text if payload.valid else None,
                "wedge",
                None if payload.valid else (payload.problem or "invalid"),
            )
        )
        return True

    def handle_scan(self, scan: Scan):
        """A scan from any source, on the UI thread. A booking QR (预约) goes to the
        dispenser's check-in when this kiosk is also a dispenser; every other code is a receipt."""
        if self._service_open():
            return
        if self.rt.dispenser is not None and is_booking_payload(scan.payload):
            self.app.touch_activity()
            self.forget()
            self.app.go("dispenser")
            self.app.screen("dispenser").check_in_scan(scan.payload)
            return
        if self.app.sm.current != self.name:
            self.app.go(self.name)
        self.app.touch_activity()
        self.forget()
        if scan.verdict is not None:  # no receipt: judged and recorded at intake
            self._seq += 1
            self._typed = False
            self._done(self._seq, scan.verdict)
            return
        self._run(self.rt.lookup.service.lookup_scan, scan)

    def demo_scan(self, payload: str):
        self.rt.lookup.scanner.inject(payload)

    def demo_scan_newest(self):
        """The demo: scan the receipt of the case made last on the bench page (read off the UI thread)."""
        newest = self.rt.demo_newest_case
        if newest is not None:
            in_background(
                newest,
                done=lambda payload: self.demo_scan(payload) if payload else None,
                failed=lambda e: self.show_message(None),
            )

    def demo_payloads(self):
        """The demo's sample receipts (set by `kiosk demo` from its bench central's seed)."""
        return list(self.rt.demo_scans)

    # -- input: keypad ------------------------------------------------------------
    def open_keypad(self):
        self.forget()
        self.mode = "keypad"
        self.app.touch_activity()
        panel = KeypadPanel(screen=self)
        self._set_body(panel)

    def retype(self):
        """Type it in again: after a wrong query code the receipt number stays, only the code is retyped."""
        r = self._message
        receipt = self._typed_receipt if r is not None and r.outcome == "wrong_code" else ""
        self.open_keypad()
        if receipt:
            panel = self.ids.body.children[0]
            panel.receipt, panel.field = receipt, "code"

    def submit_keypad(self, panel):
        receipt, code = panel.receipt, panel.code
        self.forget()
        self._typed_receipt = receipt  # kept only until the answer is forgotten
        self._run(self.rt.lookup.service.lookup_fields, receipt, code, "keypad", typed=True)

    # -- the lookup itself ----------------------------------------------------------
    def _run(self, fn, *args, typed=False):
        self._typed = typed
        self._seq += 1
        seq = self._seq
        self.is_busy = True
        self.show_busy()
        in_background(fn, *args, done=lambda r: self._done(seq, r), failed=lambda e: self._failed(seq, e))

    def _done(self, seq, result):
        if seq != self._seq:  # reset or a newer scan came first: this answer is stale
            return
        self.is_busy = False
        self.app.touch_activity()
        result.extra["typed"] = self._typed
        if result.case is not None:
            self.show_result(result)
        else:
            self.show_message(result)

    def _failed(self, seq, exc):
        if seq != self._seq:
            return
        self.is_busy = False
        self.show_message(None)

    # -- views ------------------------------------------------------------------------
    def _set_body(self, widget):
        body = self.ids.body
        if body.children == [widget]:
            return
        body.clear_widgets()
        body.add_widget(widget)

    def relabel(self, *args):
        if self.mode == "result" and self._result is not None:
            self.show_result(self._result)
        elif self.mode == "message":
            self.show_message(self._message)
        elif self.mode == "busy":
            self.show_busy()
        elif self.mode == "keypad":
            for w in self.ids.body.walk():
                if isinstance(w, Keypad):
                    w.refresh_text()

    def show_scan(self):
        self.mode = "scan"
        self._set_body(self._panels["scan"])

    def show_busy(self):
        self.mode = "busy"
        panel = self._panels["busy"]
        panel.ids.text.text = self.app.tr("lookup.busy")
        self._set_body(panel)

    def show_result(self, result):
        self._result = result
        self.mode = "result"
        panel = self._panels["result"]
        panel.show(result)
        self._set_body(panel)

    def show_message(self, result):
        self._message = result
        self.mode = "message"
        panel = self._panels["message"]
        panel.show(result)
        self._set_body(panel)

    def read_aloud(self):
        """朗读: say the case's status and its deadline, and write out what was said.

        Only the status word and a count of working days are spoken: never the
        item, a name or a number (the receipt number is shown masked, not read)."""
        r = self._result
        if r is None or r.case is None:
            return
        self.app.touch_activity()
        panel = self._panels["result"]
        status = r.case.get("status", "unknown")
        self.app.speak("lookup.status", status=status if i18n.has("status." + str(status)) else "unknown")
        dl = r.deadline or {}
        state = dl.get("state")
        if state == "open":
            self.app.speak("lookup.days_left", days=dl["days"])
        elif state == "due_today":
            self.app.speak("lookup.due_today")
        elif state == "overdue":
            self.app.speak("lookup.overdue")
        deadline = panel.ids.deadline.text.split("  ·  ")[-1]
        panel.spoken = self.app.tr("lookup.spoken", status=panel.ids.badge.text, deadline=deadline)

    def forget(self):
        """Drop everything shown; in-flight answers will be ignored."""
        self._seq += 1
        self.is_busy = False
        self._result = None
        self._message = None
        self._typed_receipt = ""
        self.ids.body.clear_widgets()
        if self._panels is not None:
            self._panels["result"].clear()
            self._panels["message"].clear()
        self.mode = "scan"

    def reset(self) -> None:
        self._wedge_burst = False
        wedge = self._wedge()
        if wedge is not None:
            wedge.reset()
        self.forget()
        self.show_scan()


class ScanPrompt(BoxLayout):
    screen = ObjectProperty(None)


class BusyPanel(BoxLayout):
    pass


def _fill(box, pool, specs, make):
    """Show one pooled widget per spec (a dict of properties) in box, in order.

    Widgets are made on first need and kept; the ones not needed this time
    are blanked and taken out of the box.
    """
    while len(pool) < len(specs):
        pool.append(make())
    for w, spec in zip(pool, specs, strict=False):  # the pool may be longer
        for k, v in spec.items():
            setattr(w, k, v)
        if w.parent is None:
            box.add_widget(w)  # the shown ones are always a prefix of the pool: order holds
    _blank(pool[len(specs) :])


def _blank(widgets):
    for w in widgets:
        if isinstance(w, InfoRow):
            w.label = w.value = ""
        elif isinstance(w, StepRow):
            w.text = w.when = ""
        else:
            w.text = ""
        if w.parent is not None:
            w.parent.remove_widget(w)


class MessagePanel(BoxLayout):
    screen = ObjectProperty(None)
    result = ObjectProperty(None, allownone=True)

    def show(self, r):
        app = self.screen.app
        self.result = r
        phone = self.screen.rt.cfg.lookup.help_phone
        outcome = r.outcome if r is not None else "error"
        key = "lookup.msg." + outcome
        if outcome == "bad_payload" and r.reason in ("bad_receipt_no", "bad_query_code") and r.extra.get("typed"):
            key = "lookup.msg.bad_typed"
        if not i18n.has(key):
            key = "lookup.msg.error"
        values = {
            "phone": phone,
            "n": r.attempts_left if r and r.attempts_left is not None else 0,
            "m": r.locked_minutes if r and r.locked_minutes else self.screen.rt.cfg.lookup.lockout_minutes,
            "s": r.retry_seconds if r and r.retry_seconds else 10,
        }
        self.ids.title.text = app.tr(key)
        self.ids.body.text = app.tr(key + ".body", **values)
        self.ids.icon.color = theme.WARN if outcome in ("offline", "wrong_code") else theme.ACCENT

    def clear(self):
        self.result = None
        self.ids.title.text = self.ids.body.text = ""


class ResultPanel(BoxLayout):
    screen = ObjectProperty(None)
    can_speak = BooleanProperty(False)  # a voice is configured: 朗读 is offered
    spoken = StringProperty("")  # what 朗读 said, written out

    def __init__(self, **kw):
        self._extra, self._rows, self._steps = [], [], []
        super().__init__(**kw)

    def clear(self):
        """Blank every label that showed the case (the panel stays built for the next one)."""
        for name in ("item", "means", "deadline", "as_of"):
            self.ids[name].text = ""
        self.ids.badge.text = ""
        self.spoken = ""
        _blank(self._extra + self._rows + self._steps)

    def show(self, r):
        app = self.screen.app
        case, lang = r.case, app.lang
        tr = app.tr
        status = case.get("status", "unknown")
        self.ids.scroll.scroll_y = 1  # a new result starts at its top
        self.ids.item.text = case.get("item_name") or "—"
        badge = self.ids.badge
        badge.bg = STATUS_COLOURS.get(status, theme.MUTED)
        badge.text = (
            tr("status." + status)
            if status != "unknown" or not case.get("status_zh")
            else (case.get("status_en") if lang == "en" else case.get("status_zh"))
        )
        if status == "needs_materials" and not case.get("missing_materials"):
            self.ids.means.text = tr("status.needs_materials.means_none", phone=self.screen.rt.cfg.lookup.help_phone)
        else:
            self.ids.means.text = tr(f"status.{status}.means")

        lines = []  # (text, bold, colour)
        if status == "needs_materials" and case.get("missing_materials"):
            lines.append((tr("lookup.missing"), True, theme.ACCENT))
            lines += [("· " + m, False, theme.TEXT) for m in case["missing_materials"]]
        if status == "refused":
            if case.get("refusal_reason"):
                lines.append((tr("lookup.refusal"), True, theme.ACCENT))
                lines.append((case["refusal_reason"], False, theme.TEXT))
            if case.get("remedy"):
                lines.append((tr("lookup.remedy"), True, theme.TEXT))
                lines.append((case["remedy"], False, theme.TEXT))
        _fill(
            self.ids.extra,
            self._extra,
            [{"text": t, "bold": b, "color": c} for t, b, c in lines],
            lambda: KLabel(base_size=26),
        )

        rows = [(tr("lookup.receipt_no"), case.get("receipt_masked") or "—", theme.TEXT)]
        if case.get("applicant_masked"):
            rows.append((tr("lookup.applicant"), case["applicant_masked"], theme.TEXT))
        if case.get("time_limit_days") is not None:
            rows.append((tr("lookup.limit"), tr("lookup.limit_value", days=case["time_limit_days"]), theme.TEXT))
        # The deadline is what a citizen came to see: it stands under the status,
        # above the fold even in large English text, not at the bottom of the details.
        dl = r.deadline or {}
        due = tr("lookup.due") + " " + fmt_date(case.get("due_date"), lang)
        left, colour = "", theme.TEXT
        if dl.get("state") == "open":
            left, colour = tr("lookup.days_left", n=dl["days"]), theme.OK
        elif dl.get("state") == "due_today":
            left, colour = tr("lookup.due_today"), theme.WARN
        elif dl.get("state") == "overdue":
            left, colour = tr("lookup.overdue", n=dl["days"]), theme.ACCENT
        self.ids.deadline.text = due + ("  ·  " + left if left else "")
        self.ids.deadline.color = colour
        self.can_speak = self.screen.rt.voice is not None
        if self.spoken:  # the language changed after 朗读: the written words follow it
            self.spoken = tr("lookup.spoken", status=badge.text, deadline=left or due)
        handler, window = case.get("handler"), case.get("window")
        if handler or window:
            value = (
                tr("lookup.handler_value", name=handler, window=window)
                if handler and window
                else handler or tr("lookup.window_only", window=window)
            )
            rows.append((tr("lookup.handler"), value, theme.TEXT))
        rows.append((tr("lookup.collection"), tr("collection." + case.get("collection", "unknown")), theme.TEXT))
        _fill(self.ids.rows, self._rows, [{"label": ln, "value": v, "value_color": c} for ln, v, c in rows], InfoRow)

        steps = []
        done_steps = [s for s in case.get("steps", []) if s.get("done")]
        current = done_steps[-1] if done_steps else None
        for s in case.get("steps", []):
            code = s.get("code")
            name = (
                tr("step." + code)
                if i18n.has("step." + str(code))
                else (s.get("name_en") if lang == "en" else s.get("name_zh")) or "—"
            )
            steps.append(
                {
                    "text": name,
                    "when": fmt_time(s.get("at"), lang),
                    "done": bool(s.get("done")),
                    "current": s is current,
                }
            )
        _fill(self.ids.steps, self._steps, steps, StepRow)

        self.ids.as_of.text = tr("lookup.as_of", time=fmt_time(r.as_of, lang)) if r.outcome == "cached" else ""


Builder.load_file(str(Path(__file__).with_name("lookup.kv")))

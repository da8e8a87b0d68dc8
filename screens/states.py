"""State renders for the CLI: put a screen into one of its states with sample data.

`kiosk dispenser-screenshot`, `lookup-screenshot` and `pad-screenshot` name a
state; kiosk/app.py's screenshot() calls show() once the screen is up. Only
what is shown is sample data: nothing here writes to the ledger, and a pad
session opened for a preview is dropped unrecorded when the render ends.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kivy.clock import Clock

from screens import theme


def show(app: Any, screen: str, state: str, large: bool = False) -> Callable[[], bool]:
    """Put the screen in the state; returns "is it showing yet?" (a state may arrive
    through background reads: a capture waits for it, not for a fixed time)."""
    if large:
        app.font_scale = theme.LARGE_TEXT_SCALE
    if state:
        shown = {"dispenser": _dispenser, "lookup": _lookup, "pad": _pad}[screen](app, state)
        if shown is not None:
            return shown
    return lambda: True


def _dispenser(app: Any, state: str) -> None:
    from kiosk.roles.dispenser.samples import sample_ticket
    from kiosk.roles.dispenser.service import IssueResult, PaperOut, PrinterUnavailable, StorageFull

    screen = app.screen("dispenser")
    cfg = app.rt.cfg
    if state == "priority":
        screen.toggle_priority()
    elif state in ("done", "offline", "failed"):
        t = sample_ticket(cfg, offline=state == "offline")
        screen.show_issued(IssueResult(t, printed=state != "failed", paper="ok"))
    elif state == "paper_out":
        screen.show_refused(PaperOut("paper out"))
    elif state == "printer_unavailable":
        screen.show_refused(PrinterUnavailable("printer lost"))
    elif state == "storage_full":
        screen.show_refused(StorageFull("storage full"))
    elif state == "closed":
        app.rt.dispenser.service.is_open = lambda: False  # as outside the opening hours
        screen.refresh()
    elif state.startswith("idcard_"):
        if app.rt.dispenser.idcard is not None:
            _idcard(app, state[len("idcard_") :])
    else:
        _appointments(app, screen, state)


def _appointments(app: Any, screen: Any, state: str) -> None:
    """预约签到 and quota states, as a dispenser whose entries offer appointments shows them."""
    import dataclasses

    from kiosk.roles.dispenser.samples import sample_ticket
    from kiosk.roles.dispenser.service import BookingRefused, CheckInOffline, IssueResult, QuotaFull

    svc = app.rt.dispenser.service
    view = svc.view

    def sample_view() -> Any:  # in the background, as the screen reads its view
        # Only what the screen is shown changes: entries with 预约签到, and for
        # used_up the first service's quota taken. The ledger is not touched.
        v = dataclasses.replace(view(), entries=("appointment", "service"))
        for i, c in enumerate(v.categories):
            c.used_up = state == "used_up" and i == 0
        return v

    svc.view = sample_view
    screen.entries = ["appointment", "service"]
    if state == "entry":
        screen.set_state("entry")
    elif state == "checkin":
        screen.set_state("checkin")
        for k in "2026":
            screen.key(k)
    elif state == "appointment":
        t = sample_ticket(app.rt.cfg, appointment=True)
        screen.show_issued(IssueResult(t, printed=True, paper="ok"))
    elif state.startswith("booking_"):
        screen.show_refused(BookingRefused(state, "sample", "10:40" if state == "booking_early" else None))
    elif state == "checkin_offline":
        screen.show_refused(CheckInOffline("sample"))
    elif state == "quota_full":
        screen.show_refused(QuotaFull("sample"))
    elif state == "used_up":
        screen.set_state("choose")
        screen.refresh()


def _idcard(app: Any, state: str) -> None:
    from kiosk.roles.dispenser.samples import sample_standing

    app.go("idcard")
    screen = app.screen("idcard")
    standing = sample_standing(app.rt.cfg, at_limit=state == "limit")
    if state == "choose":
        screen.show_standing(standing)
    elif state == "held":
        screen.show_standing(standing)
        screen.show_held(standing.holdings[0])
    elif state == "limit":
        screen.show_standing(standing)
        screen.show_limit(standing)
    elif state in ("bad_read", "reader_down"):
        screen.show_problem(state)


def _lookup(app: Any, state: str) -> None:
    from kiosk.roles.lookup.samples import sample_result

    screen = app.screen("lookup")
    if state == "keypad":
        screen.open_keypad()
        panel = screen.ids.body.children[0]
        panel.receipt, panel.code, panel.field = "ZW2026000", "4829", "code"
    elif state == "busy":
        screen.mode = "busy"
        screen.relabel()
    elif state != "scan":
        result = sample_result(state)
        (screen.show_result if result.case is not None else screen.show_message)(result)
    app.idle_left = app.rt.cfg.display.idle_timeout


def _sample_photo() -> str:
    """A neutral head-and-shoulders drawing, for previews only."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (300, 400), (214, 222, 235))
    d = ImageDraw.Draw(img)
    d.ellipse((95, 60, 205, 180), fill=(120, 135, 160))
    d.ellipse((40, 200, 260, 460), fill=(40, 70, 130))
    path = Path(tempfile.mkdtemp(prefix="pad-screenshot-")) / "staff.png"
    img.save(path)
    return str(path)


def _pad(app: Any, state: str) -> Callable[[], bool]:
    """Only the screen is shown a sample card; the device's cache keeps its real one.

    The service's reads (cache, ledger, the photo file) run in the background, as
    the pad screen's own do; each sample tap waits until the screen shows what it answers."""
    from kiosk.roles.pad.samples import SAMPLE_CARD
    from screens.widgets import in_background

    screen = app.screen("pad")
    svc = app.rt.pad.service

    def sample_state() -> Any:  # background: cache reads, photo files
        st = svc.state()
        if st.card is None:
            st.card = dict(SAMPLE_CARD, photo_path=_sample_photo())
        return st

    def session_for_state() -> None:  # background: the service reads the ledger
        if state == "paused":
            svc.on_window_session({"state": "paused"})
        elif state in ("rate", "reasons", "phone"):
            import uuid

            svc.open_session("preview-" + uuid.uuid4().hex, origin="central")

    def card_shown(st: Any) -> None:
        screen.apply("card", st)
        in_background(session_for_state)
        if state == "thanks":
            screen.show_thanks({"level": 2, "phone": "13812345678", "uuid": "preview"})

    in_background(sample_state, done=card_shown)

    step = {"picked": False, "until": Clock.get_time() + 15.0}  # a loaded machine answers slowly

    def later(dt: float) -> bool | None:
        if state not in ("reasons", "phone") or Clock.get_time() > step["until"]:
            return False
        if screen.mode == "rate" and not step["picked"]:
            step["picked"] = True
            screen.pick_level(2)
        elif screen.mode == "reasons" and screen.ids.reasons.children:
            screen.toggle_reason(screen.ids.reasons.children[-1].code)
            if state == "phone":
                screen.open_phone()
                for d in "1381234":
                    screen.press_key(d)
            return False
        return None

    Clock.schedule_interval(later, 0.05)
    # The capture is taken on the first frame drawn after 0.6 s, but
    # Window.canvas.ask_update() alone does not make Kivy draw one: ask a
    # widget's canvas (which reaches the window) a few times after that.
    for t in (0.7, 1.0, 1.5, 2.5):
        Clock.schedule_once(lambda dt: screen.canvas.ask_update(), t)

    mode = state if state in ("reasons", "phone", "rate", "paused", "thanks") else "idle"

    def shown() -> bool:
        if screen.mode != mode:
            return False
        if mode == "idle":
            return bool(screen.staff_name)
        if mode == "reasons":
            return bool(screen.chosen)
        if mode == "phone":
            return screen.typed == "1381234"
        return True

    return shown

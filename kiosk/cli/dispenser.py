"""Technician commands for the ticket dispenser: print-test and ticket-preview."""
from __future__ import annotations

import sys
from datetime import datetime

from kiosk.core.config import load_config, resolve_path


def sample_ticket(cfg, *, offline: bool = False, priority: bool = False):
    """A ticket as the dispenser would issue it now, for the preview (nothing is stored)."""
    from kiosk.roles.dispenser.service import Ticket
    cats = cfg.dispenser.categories
    cat = cats[0] if cats else {"code": "A", "prefix": "A", "name_zh": "综合受理", "name_en": "General services"}
    prefix = cfg.dispenser.priority_prefix if priority else (cat.get("prefix") or cat["code"])
    number = cfg.dispenser.offline_range[0] if offline else 23
    now = datetime.now().astimezone()
    return Ticket(0, "preview", "preview", now.date().isoformat(), cat["code"], number, f"{prefix}{number:03d}",
                  priority, "offline" if offline else "online", None if offline else 5, None if offline else 1500,
                  now.isoformat(timespec="seconds"), "pending", 0, cat["name_zh"], cat["name_en"])


def cmd_ticket_preview(args) -> int:
    from kiosk.roles.dispenser.layout import ticket_bytes
    from kiosk.wiring import preview_png, printer_profile
    from kiosk.core.fonts import FontMissing
    cfg = load_config(resolve_path(args.config))
    ticket = sample_ticket(cfg, offline=args.offline, priority=args.priority)
    profile = printer_profile(cfg)   # first: it hands the device's CJK font to the raster text
    data = ticket_bytes(ticket, cfg, reprint=args.reprint)
    try:
        preview = preview_png(cfg, data, args.out, dots=profile.dots_per_line)
    except FontMissing as e:
        print(f"kiosk ticket-preview: {e}", file=sys.stderr)
        return 1
    baud = cfg.printer.baudrate
    print(f"{args.out}: ticket {ticket.display}, {len(data)} bytes for profile {profile.name!r} "
          f"({len(data) * 10 / baud:.2f} s at {baud} baud, 8N1)")
    for p in preview.problems:
        print(f"warning: {p}", file=sys.stderr)
    return 1 if preview.problems else 0


def cmd_print_test(args) -> int:
    from kiosk.roles.dispenser.layout import test_document
    from kiosk.wiring import build_printer
    cfg = load_config(resolve_path(args.config))
    worker = build_printer(cfg).start()
    try:
        status = worker.check_status(cfg.printer.status_timeout).result(timeout=30)
        print(f"printer status: online={status.online} paper={status.paper} ({status.detail})")
        if status.paper == "out" or status.online is False:
            print("not printing: fix the printer first (load paper, close the cover, check the cable)",
                  file=sys.stderr)
            return 1
        try:
            worker.submit(test_document(cfg)).result(timeout=120)
        except Exception as e:  # PrinterError says what to check
            print(f"test print failed: {e}", file=sys.stderr)
            return 1
        where = {"serial": cfg.printer.port, "file": cfg.printer.path}.get(cfg.printer.backend, "simulated printer")
        print(f"test ticket printed on {where}")
        return 0
    finally:
        worker.close()


SCREEN_STATES = ("choose", "priority", "done", "offline", "failed", "paper_out", "printer_unavailable", "closed")


def show_state(app, state: str, large: bool = False) -> None:
    """Put the dispenser screen into one of its states with a sample ticket (for screenshots)."""
    from kiosk.roles.dispenser.service import IssueResult, PaperOut, PrinterUnavailable
    screen = app.screen("dispenser")
    if large:
        app.toggle_large_text()
    cfg = app.rt.cfg
    if state == "priority":
        screen.toggle_priority()
    elif state in ("done", "offline", "failed"):
        t = sample_ticket(cfg, offline=state == "offline")
        screen._issued(IssueResult(t, printed=state != "failed", paper="ok"))
    elif state == "paper_out":
        screen._refused(PaperOut("paper out"))
    elif state == "printer_unavailable":
        screen._refused(PrinterUnavailable("printer lost"))
    elif state == "closed":
        app.rt.dispenser.service.is_open = lambda: False   # as outside the opening hours
        screen.refresh()


def cmd_dispenser_screenshot(args) -> int:
    from kiosk.app import screenshot
    cfg = load_config(resolve_path(args.config))
    return screenshot(cfg, "dispenser", args.out, args.lang,
                      setup=lambda app: show_state(app, args.state, args.large))


def register(sub) -> None:
    p = sub.add_parser("dispenser-screenshot", help="render the dispenser screen in one of its states to PNG")
    p.add_argument("--config")
    p.add_argument("--state", choices=SCREEN_STATES, default="choose")
    p.add_argument("--out", required=True)
    p.add_argument("--lang", choices=("zh", "en"))
    p.add_argument("--large", action="store_true", help="large-text mode")
    p.set_defaults(func=cmd_dispenser_screenshot)

    p = sub.add_parser("print-test", help="print a test ticket on the configured printer")
    p.add_argument("--config", help="default: $KIOSK_CONFIG, else /etc/kiosk/kiosk.toml")
    p.set_defaults(func=cmd_print_test)

    p = sub.add_parser("ticket-preview", help="render the bytes of a ticket to PNG, as the printer would print them")
    p.add_argument("--config", help="default: $KIOSK_CONFIG, else /etc/kiosk/kiosk.toml")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--offline", action="store_true", help="an offline ticket (离线票)")
    p.add_argument("--reprint", action="store_true", help="a reprinted ticket (补打)")
    p.add_argument("--priority", action="store_true", help="a priority ticket (绿色通道)")
    p.set_defaults(func=cmd_ticket_preview)

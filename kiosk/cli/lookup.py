"""`kiosk lookup-parse` and `kiosk lookup-screenshot`: the lookup role's bench commands.

lookup-parse tells a technician whether a scanned payload would be accepted
(and why not), showing the receipt number masked. lookup-screenshot renders
the lookup screen in a given state with sample data, to check layout and
wording in both languages and in large-text mode without a scanner.
"""
from __future__ import annotations

import sys
from datetime import date, datetime, timedelta

from kiosk.core.config import load_config, resolve_path
from kiosk.core.privacy import mask_receipt
from kiosk.roles.lookup.receipt import ReceiptRef, parse_payload

STATES = ("scan", "keypad", "busy", "accepted", "reviewing", "needs_materials", "deciding", "completed",
          "ready_for_pickup", "delivered", "refused", "withdrawn", "overdue", "cached",
          "offline", "wrong_code", "locked", "bad_payload")


def sample_result(state: str, today: date | None = None):
    """A made-up case in the given state, through the same reduction as a real answer."""
    from kiosk.roles.lookup.service import NORMAL_PATH, LookupResult, deadline_info, display_from_case
    today = today or date.today()
    if state in ("offline", "wrong_code", "locked", "bad_payload"):
        return LookupResult(state, attempts_left=2, locked_minutes=15, reason="unknown_format")
    status = {"overdue": "reviewing", "cached": "deciding"}.get(state, state)
    accepted = datetime.combine(today - timedelta(days=3), datetime.min.time()).replace(hour=9, minute=30)
    path = NORMAL_PATH[:NORMAL_PATH.index(status) + 1] if status in NORMAL_PATH else ("accepted", status)
    steps = [{"code": c, "at": (accepted + timedelta(hours=5 * i)).isoformat(), "done": True} for i, c in enumerate(path)]
    due = today + timedelta(days=-4 if state == "overdue" else 4)
    case = {"receipt_no": "ZW2026000101", "item_name": "城乡居民基本养老保险参保登记", "applicant_name": "张小三",
            "status": status, "steps": steps, "time_limit_days": 5, "due_date": due.isoformat(),
            "handler": "王丽华", "window": "01", "collection": "post" if status == "delivered" else "window",
            "missing_materials": ["户口簿原件及复印件", "近期一寸免冠照片两张"] if status == "needs_materials" else [],
            "refusal_reason": "申请事项不属于本机关职权范围" if status == "refused" else None,
            "remedy": "请向户籍所在地乡镇（街道）社保服务窗口申请" if status == "refused" else None}
    display = display_from_case(case)
    as_of = (datetime.now() - timedelta(hours=2)).astimezone().isoformat(timespec="seconds")
    return LookupResult("cached" if state == "cached" else "ok", case=display, as_of=as_of,
                        deadline=deadline_info(display, today))


def cmd_parse(args) -> int:
    cfg = load_config(resolve_path(args.config)) if args.config or not args.defaults else None
    kw = {"receipt_param": cfg.lookup.receipt_param, "code_param": cfg.lookup.code_param} if cfg else {}
    payload = args.payload if args.payload is not None else sys.stdin.buffer.read()
    result = parse_payload(payload, **kw)
    if isinstance(result, ReceiptRef):
        print(f"ok: receipt {mask_receipt(result.receipt_no)}, query code of {len(result.query_code)} characters")
        return 0
    print(f"rejected: {result.reason} ({result.detail})" if result.detail else f"rejected: {result.reason}")
    return 1


def cmd_screenshot(args) -> int:
    from kiosk.app import screenshot
    cfg = load_config(resolve_path(args.config))
    if "lookup" not in cfg.device.roles:
        print(f"kiosk: {cfg.path} has no lookup role", file=sys.stderr)
        return 2

    def setup(app):
        from screens import theme
        if args.large:
            app.font_scale = theme.LARGE_TEXT_SCALE
        screen = app.screen("lookup")
        if args.state == "keypad":
            screen.open_keypad()
            panel = screen.ids.body.children[0]
            panel.receipt, panel.code, panel.field = "ZW2026000", "4829", "code"
        elif args.state == "busy":
            screen.mode = "busy"
            screen._relabel()
        elif args.state != "scan":
            result = sample_result(args.state)
            (screen.show_result if result.case is not None else screen.show_message)(result)
        app.idle_left = cfg.display.idle_timeout
    return screenshot(cfg, "lookup", args.out, args.lang, setup=setup)


def register(sub) -> None:
    p = sub.add_parser("lookup-parse", help="check a receipt QR payload the way the lookup screen would")
    p.add_argument("payload", nargs="?", help="the scanned text (default: read bytes from stdin)")
    p.add_argument("--config", help="use this device's [lookup] parameter names")
    p.add_argument("--defaults", action="store_true", help="use the default parameter names (slbh, cxm), no config")
    p.set_defaults(func=cmd_parse)

    p = sub.add_parser("lookup-screenshot", help="render the lookup screen in a given state with sample data")
    p.add_argument("--config")
    p.add_argument("--state", choices=STATES, default="reviewing")
    p.add_argument("--out", required=True)
    p.add_argument("--lang", choices=("zh", "en"))
    p.add_argument("--large", action="store_true", help="large-text mode")
    p.set_defaults(func=cmd_screenshot)

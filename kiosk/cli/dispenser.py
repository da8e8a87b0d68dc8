"""Technician commands for the ticket dispenser: print-test and ticket-preview."""

from __future__ import annotations

import sys

from kiosk.core.config import load_config, resolve_path
from kiosk.roles.dispenser.samples import DISPENSER_STATES, sample_ticket


def cmd_ticket_preview(args) -> int:
    from kiosk.core.fonts import FontMissing
    from kiosk.roles.dispenser.layout import ticket_for
    from kiosk.wiring import encode_document, preview_png, printer_profile

    cfg = load_config(resolve_path(args.config))
    ticket = sample_ticket(cfg, offline=args.offline, priority=args.priority)
    try:
        profile = printer_profile(cfg)  # it hands the device's CJK font to the raster text
        data = encode_document(ticket_for(ticket, cfg, reprint=args.reprint), cfg)
        preview = preview_png(cfg, data, args.out, dots=profile.dots_per_line)
    except FontMissing as e:
        print(f"kiosk ticket-preview: {e}", file=sys.stderr)
        return 1
    baud = cfg.printer.baudrate
    print(
        f"{args.out}: ticket {ticket.display}, {len(data)} bytes for profile {profile.name!r} "
        f"({len(data) * 10 / baud:.2f} s at {baud} baud, 8N1)"
    )
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
            print("not printing: fix the printer first (load paper, close the cover, check the cable)", file=sys.stderr)
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


YES = ("y", "yes", "是", "对", "1")
NO = ("n", "no", "否", "不", "0")


def _ask_yes_no(question: str) -> bool | None:
    """The technician's answer at the prompt; None when stdin has ended."""
    while True:
        print(f"{question} [y/n] ", end="", flush=True)
        try:
            reply = input().strip().lower()
        except EOFError:
            print()
            return None
        if reply in YES:
            return True
        if reply in NO:
            return False
        print("please answer y or n")


def cmd_printer_probe(args) -> int:
    from kiosk.core.config import ConfigError, set_keys
    from kiosk.wiring import printer_backend, printer_probe

    path = resolve_path(args.config)
    cfg = load_config(path)
    probe = printer_probe()
    p = cfg.printer
    if p.backend == "sim":
        print('kiosk printer-probe: printer.backend is "sim": there is no printer to probe', file=sys.stderr)
        return 1
    backend = printer_backend(cfg)
    where = p.path if p.backend == "file" else p.port
    print(f"probing the {p.backend} printer at {where}")
    try:
        status = {n: backend.query(n, max(p.status_timeout, 0.5)) for n in (1, 2, 3, 4)}
        for n, byte in status.items():
            print("  " + probe.describe(n, byte))
        cts = backend.clear_to_send() if p.backend == "serial" else None
        backend.write(probe.probe_slip())
    except Exception as e:  # PrinterError: the message says what to check
        print(f"kiosk printer-probe: {e}", file=sys.stderr)
        return 1
    finally:
        backend.close()
    print("a probe slip was printed: look at it and answer")
    answers = {}
    for key, question in probe.QUESTIONS:
        reply = _ask_yes_no(question)
        if reply is None:
            print("kiosk printer-probe: no answer (stdin closed): nothing written", file=sys.stderr)
            return 2
        answers[key] = reply
    rec = probe.recommend(answers, status, p.backend, cts)
    keys = rec.keys()
    print("recommended [printer] settings:")
    for key, value in keys.items():
        print(f"  {key} = {value!r}".replace("'", '"'))
    for note in rec.notes:
        print(f"  note: {note}")
    if not args.write:
        print(f"not written: run again with --write to set them in {path}")
        return 0
    try:
        set_keys(path, "printer", keys, note="kiosk printer-probe")
    except ConfigError as e:
        print(f"kiosk printer-probe: not written, the result would not pass check-config:\n{e}", file=sys.stderr)
        return 1
    print(f"written to [printer] in {path} (restart the kiosk to use them)")
    return 0


def cmd_dispenser_screenshot(args) -> int:
    from kiosk.app import screenshot

    cfg = load_config(resolve_path(args.config))
    return screenshot(cfg, "dispenser", args.out, args.lang, state=args.state, large=args.large)


def register(sub) -> None:
    p = sub.add_parser("dispenser-screenshot", help="render the dispenser screen in one of its states to PNG")
    p.add_argument("--config")
    p.add_argument("--state", choices=DISPENSER_STATES, default="choose")
    p.add_argument("--out", required=True)
    p.add_argument("--lang", choices=("zh", "en"))
    p.add_argument("--large", action="store_true", help="large-text mode")
    p.set_defaults(func=cmd_dispenser_screenshot)

    p = sub.add_parser("print-test", help="print a test ticket on the configured printer")
    p.add_argument("--config", help="default: $KIOSK_CONFIG, else /etc/kiosk/kiosk.toml")
    p.set_defaults(func=cmd_print_test)

    p = sub.add_parser(
        "printer-probe",
        help="ask the configured printer what it answers, print a probe slip, and recommend "
        "(or --write) its profile, paper width and flow control",
    )
    p.add_argument("--config", help="default: $KIOSK_CONFIG, else /etc/kiosk/kiosk.toml")
    p.add_argument("--write", action="store_true", help="write the recommended [printer] keys into the config")
    p.set_defaults(func=cmd_printer_probe)

    p = sub.add_parser("ticket-preview", help="render the bytes of a ticket to PNG, as the printer would print them")
    p.add_argument("--config", help="default: $KIOSK_CONFIG, else /etc/kiosk/kiosk.toml")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--offline", action="store_true", help="an offline ticket (离线票)")
    p.add_argument("--reprint", action="store_true", help="a reprinted ticket (补打)")
    p.add_argument("--priority", action="store_true", help="a priority ticket (绿色通道)")
    p.set_defaults(func=cmd_ticket_preview)

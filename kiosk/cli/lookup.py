"""`kiosk lookup-parse` and `kiosk lookup-screenshot`: the lookup role's bench commands.

lookup-parse tells a technician whether a scanned payload would be accepted
(and why not), showing the receipt number masked. lookup-screenshot renders
the lookup screen in a given state with sample data, to check layout and
wording in both languages and in large-text mode without a scanner.
"""

from __future__ import annotations

import sys

from kiosk.core.config import load_config, resolve_path
from kiosk.core.privacy import mask_receipt
from kiosk.roles.lookup.receipt import ReceiptRef, parse_payload
from kiosk.roles.lookup.samples import LOOKUP_STATES


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

    return screenshot(cfg, "lookup", args.out, args.lang, state=args.state, large=args.large)


def register(sub) -> None:
    p = sub.add_parser("lookup-parse", help="check a receipt QR payload the way the lookup screen would")
    p.add_argument("payload", nargs="?", help="the scanned text (default: read bytes from stdin)")
    p.add_argument("--config", help="use this device's [lookup] parameter names")
    p.add_argument("--defaults", action="store_true", help="use the default parameter names (slbh, cxm), no config")
    p.set_defaults(func=cmd_parse)

    p = sub.add_parser("lookup-screenshot", help="render the lookup screen in a given state with sample data")
    p.add_argument("--config")
    p.add_argument("--state", choices=LOOKUP_STATES, default="reviewing")
    p.add_argument("--out", required=True)
    p.add_argument("--lang", choices=("zh", "en"))
    p.add_argument("--large", action="store_true", help="large-text mode")
    p.set_defaults(func=cmd_screenshot)

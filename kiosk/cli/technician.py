"""Technician commands: `kiosk selftest` and `kiosk boot-guard`."""

from __future__ import annotations

import json


def cmd_selftest(args) -> int:
    from kiosk.core.config import ConfigError, load_config, resolve_path
    from kiosk.technician.selftest import FAIL, Result, Row, run_checks

    path = resolve_path(args.config)
    try:
        cfg = load_config(path)
    except ConfigError as e:
        # An invalid config is the first failed check, not a crash of the check.
        result = Result([Row("config", FAIL, p.line(e.file)) for p in e.problems])
        _print(result, args.json)
        return 1
    rt = None
    build_error = None
    try:
        from kiosk.runtime import DEVICE_PARTS
        from kiosk.wiring import build_runtime

        rt = build_runtime(cfg)
        rt.start(only=DEVICE_PARTS)  # the devices, to check them; nothing is delivered
    except Exception as e:  # e.g. ledger not writable: the checks below say which part
        build_error = Row("runtime", FAIL, f"could not start the device's parts: {type(e).__name__}: {e}")
    try:
        result = run_checks(cfg, rt)
    finally:
        if rt is not None:
            rt.stop()
    if build_error:
        result.rows.insert(0, build_error)
    _print(result, args.json)
    return 0 if result.ok else 1


def _print(result, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(result.table())


def cmd_boot_guard(args) -> int:
    from kiosk.core.bootguard import BootGuard
    from kiosk.core.config import load_config, resolve_path

    cfg = load_config(resolve_path(args.config))
    guard = BootGuard(cfg.storage.dir)
    if args.reset:
        guard.reset()
        print("boot guard reset: the next start starts the roles normally")
        print("restart now with: sudo systemctl restart kiosk")
        return 0
    st = guard.state()
    print(
        f"crashed starts in the last {st['window_s'] // 60} min: {st['recent_unhealthy_starts']}"
        f" (out of service at {st['max_crashed']})"
    )
    print(f"last error: {st['last_error'] or '-'}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("selftest", help="pre-shift check of everything configured (exit 1 if a required check fails)")
    p.add_argument("--config", help="default: $KIOSK_CONFIG, else /etc/kiosk/kiosk.toml")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_selftest)

    p = sub.add_parser("boot-guard", help="show or reset the crashed-start count (out-of-service mode)")
    p.add_argument("--config", help="default: $KIOSK_CONFIG, else /etc/kiosk/kiosk.toml")
    p.add_argument("--reset", action="store_true", help="clear it after fixing the cause")
    p.set_defaults(func=cmd_boot_guard)

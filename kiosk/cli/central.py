"""Subcommands for the central side: `kiosk central`, `kiosk status`, `kiosk sync`.

    kiosk central --host 127.0.0.1 --port 8080 --data DIR      serve the bench central
    kiosk central issue-token --data DIR --device ID --role ROLE [--role ROLE] [--window W] --out FILE
    kiosk central revoke-token --data DIR --device ID
    kiosk central export-ratings --data DIR --profile national|zhejiang|anhui --day YYYY-MM-DD [--out FILE]
    kiosk status --config FILE [--json]                       outbox, last sync, central reachable?
    kiosk sync --config FILE --once                           deliver now; exit 1 if unreachable

Each handler returns the exit code: 0 fine, 1 the central could not be
reached or refused the token, 2 bad config or arguments.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import ssl
import sys
from pathlib import Path

from kiosk.core import keys


def register(sub) -> None:
    p = sub.add_parser("central", help="the bench central (a stand-in central system for bench and tests)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: a bench tool stays on this machine unless you say otherwise)",
    )
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--data", help="directory for its database (kept across restarts)")
    p.add_argument("--max-code-attempts", type=int, default=5, help="wrong query codes before a receipt locks")
    p.add_argument("--lockout", type=float, default=900, help="lockout length in seconds")
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM), as a production central does")
    p.add_argument("--tls-key", help="the certificate's private key (PEM)")
    p.set_defaults(func=cmd_central)
    csub = p.add_subparsers(dest="central_command", metavar="ACTION")
    t = csub.add_parser("issue-token", help="issue a device token into a 0600 file")
    t.add_argument("--data", default=argparse.SUPPRESS, help="the bench central's data directory")
    t.add_argument("--device", required=True, help="device id, as in [device] id of its config")
    t.add_argument(
        "--role",
        action="append",
        required=True,
        choices=("dispenser", "lookup", "pad"),
        help="a role the device plays (repeat for several); the token allows only these roles' operations",
    )
    t.add_argument("--window", help="for a pad: the window it rates (its token reads and rates only this window)")
    t.add_argument("--out", required=True, help="token file to write (mode 0600); '-' prints it")
    t.set_defaults(func=cmd_issue_token)
    r = csub.add_parser("revoke-token", help="revoke every token of a device (e.g. a lost or replaced device)")
    r.add_argument("--data", default=argparse.SUPPRESS, help="the bench central's data directory")
    r.add_argument("--device", required=True, help="device id whose tokens stop working at once")
    r.set_defaults(func=cmd_revoke_token)
    e = csub.add_parser("export-ratings", help="write one day's ratings in a 好差评 profile (JSON)")
    e.add_argument("--data", default=argparse.SUPPRESS, help="the bench central's data directory")
    e.add_argument("--profile", required=True, help="national (GB/T 39046-2020), zhejiang or anhui")
    e.add_argument("--day", required=True, help="the hall's day, YYYY-MM-DD")
    e.add_argument("--out", default="-", help="file to write (default '-': standard output)")
    e.add_argument(
        "--reason-map",
        help="JSON file {our reason code: the profile's code}; replaces the shipped kiosk/data/reason-maps.toml",
    )
    e.set_defaults(func=cmd_export_ratings)

    p = sub.add_parser("status", help="outbox, last sync and whether the central answers")
    p.add_argument("--config", help="default: $KIOSK_CONFIG, else /etc/kiosk/kiosk.toml")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("sync", help="deliver the outbox to the central system")
    p.add_argument("--config", help="default: $KIOSK_CONFIG, else /etc/kiosk/kiosk.toml")
    p.add_argument("--once", action="store_true", help="one exchange, then exit (1 if the central is unreachable)")
    p.set_defaults(func=cmd_sync)


def _need_data(args) -> Path | None:
    if not getattr(args, "data", None):
        print("kiosk central: --data DIR is required (where the bench central keeps its database)", file=sys.stderr)
        return None
    return Path(args.data)


def cmd_central(args) -> int:
    from kiosk.central.server import BenchCentral

    data = _need_data(args)
    if data is None:
        return 2
    try:
        central = BenchCentral(
            data,
            host=args.host,
            port=args.port,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            max_code_attempts=args.max_code_attempts,
            lockout_s=args.lockout,
        )
    except (OSError, ssl.SSLError) as e:
        print(
            f"kiosk central: cannot use the TLS certificate/key: {e} (give PEM files with --tls-cert/--tls-key)",
            file=sys.stderr,
        )
        return 2
    try:
        central.start()
    except OSError as e:
        print(
            f"kiosk central: cannot listen on {args.host}:{args.port}: {e.strerror} "
            "(is another central running? choose another --port)",
            file=sys.stderr,
        )
        return 1
    warning = exposure_warning(args.host)
    if warning:
        print(warning, file=sys.stderr)
    print(
        f"bench central: API {central.url}/api/v1, bench page {central.url}/bench/ "
        f"(password {central.bench_password}), data in {data}",
        file=sys.stderr,
    )
    try:
        central.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def exposure_warning(host: str) -> str | None:
    """What to tell the technician when the bench central would be reachable from the network."""
    try:
        loopback = ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        loopback = False  # not resolvable here: warn rather than assume
    if loopback:
        return None
    return (
        f"kiosk central: WARNING: listening on {host}, reachable from the network. This is a bench "
        "tool, not a production central: anyone who can reach it and has the bench password drives it."
    )


def write_secret(path: str, text: str) -> None:
    """Create the file with mode 0600 from the start: the token is never readable by others."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)


def cmd_issue_token(args) -> int:
    from kiosk.central.store import CentralStore

    data = _need_data(args)
    if data is None:
        return 2
    store = CentralStore(data)
    try:
        token = store.issue_token(args.device, args.role, args.window)
    except ValueError as e:
        print(f"kiosk central issue-token: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()
    if args.out == "-":
        print(token)
    else:
        write_secret(args.out, token)
        print(
            f"token for {args.device} written to {args.out} (mode 0600); "
            f'set central.token_file = "{args.out}" in the device config',
            file=sys.stderr,
        )
    return 0


def cmd_revoke_token(args) -> int:
    from kiosk.central.store import CentralStore

    data = _need_data(args)
    if data is None:
        return 2
    store = CentralStore(data)
    try:
        n = store.revoke_tokens(args.device)
    finally:
        store.close()
    if n == 0:
        print(f"kiosk central revoke-token: device {args.device!r} has no valid token in {data}", file=sys.stderr)
        return 1
    print(f"revoked {n} token(s) of {args.device}; its requests now get 401", file=sys.stderr)
    return 0


def cmd_export_ratings(args) -> int:
    from datetime import date

    from kiosk.central.export import export_day
    from kiosk.central.profiles import ProfileError
    from kiosk.central.store import CentralStore

    data = _need_data(args)
    if data is None:
        return 2
    try:
        day = date.fromisoformat(args.day)
    except ValueError:
        print(f"kiosk central export-ratings: --day {args.day!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return 2
    reason_map = None
    if args.reason_map:
        try:
            reason_map = json.loads(Path(args.reason_map).read_text(encoding="utf-8"))
            if not isinstance(reason_map, dict) or not all(isinstance(v, str) for v in reason_map.values()):
                raise ValueError("it must be one JSON object of strings")
        except (OSError, ValueError) as e:
            print(f"kiosk central export-ratings: cannot use --reason-map {args.reason_map}: {e}", file=sys.stderr)
            return 2
    store = CentralStore(data)
    try:
        doc = export_day(store, args.profile, day, reason_map)
    except ProfileError as e:
        print(f"kiosk central export-ratings: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()
    text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        # Whole or nothing: a half-written export must never be taken for a day's ratings.
        tmp = Path(args.out + ".part")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, args.out)
        print(f"{doc['count']} rating(s) of {day} written to {args.out} ({args.profile})", file=sys.stderr)
    return 0


def _load(args):
    from kiosk.core.config import load_config, resolve_path

    return load_config(resolve_path(args.config))


def cmd_status(args) -> int:
    from kiosk.sync.client import CentralAuthError, CentralError
    from kiosk.wiring import build_runtime

    cfg = _load(args)
    rt = build_runtime(cfg)  # the app's own runtime, nothing started: it only reads
    try:
        ledger = rt.ledger
        stats = ledger.outbox_stats()
        report = {
            "device_id": cfg.device.id,
            "central_url": cfg.central.url,
            "outbox": stats,
            "last_sync": ledger.get_meta(keys.LAST_SYNC),
            "dead_letters": [
                {k: d[k] for k in ("uuid", "kind", "reason", "dead_at")} for d in ledger.dead_letters(limit=10)
            ],
            "central": {"reachable": False, "authorised": False, "error": None},
        }
        if rt.client is None:
            report["central"]["error"] = rt.central_problem
        else:
            try:
                who = rt.client.whoami()
                report["central"].update(reachable=True, authorised=True, server_time=who.get("server_time"))
                if who.get("device_id") != cfg.device.id:
                    report["central"]["error"] = (
                        f"the token belongs to device {who.get('device_id')!r}, "
                        f"not {cfg.device.id!r}: issue a token for this device"
                    )
            except CentralError as e:
                report["central"]["reachable"] = isinstance(e, CentralAuthError)
                report["central"]["error"] = str(e)
    finally:
        rt.stop()
    ok = report["central"]["authorised"] and not report["central"]["error"]
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        o = report["outbox"]
        age = "" if o["oldest_pending_age_s"] is None else f", oldest {o['oldest_pending_age_s']:.0f} s old"
        c = report["central"]
        print(f"device   {report['device_id']}")
        print(f"outbox   pending {o['pending']}{age}, delivered {o['delivered']}, dead {o['dead']}")
        print(f"last sync {report['last_sync'] or 'never'}")
        print(
            f"central  {report['central_url']}: "
            + (
                "reachable, token accepted"
                if ok
                else ("reachable, " if c["reachable"] else "NOT reachable, ") + (c["error"] or "")
            )
        )
        for d in report["dead_letters"]:
            print(f"dead     {d['dead_at']} {d['kind']} {d['uuid']}: {d['reason']}")
    return 0 if ok else 1


def cmd_sync(args) -> int:
    from kiosk.runtime import SYNC
    from kiosk.wiring import build_runtime

    cfg = _load(args)
    rt = build_runtime(cfg)
    try:
        worker = rt.sync
        if worker is None:
            print(f"kiosk sync: {rt.central_problem}", file=sys.stderr)
            return 2
        if not args.once:
            rt.start(only=[SYNC])
            print(f"kiosk sync: delivering to {cfg.central.url} until Ctrl-C", file=sys.stderr)
            try:
                while worker.is_running():
                    worker.join(1)
            except KeyboardInterrupt:
                pass
            return 0
        summary = worker.run_once()
        print(
            f"delivered {summary['delivered']} (already there {summary['duplicates']}), "
            f"rejected to dead letters {summary['rejected']}, pending {summary['pending']}, dead {summary['dead']}"
        )
        if not summary["ok"]:
            print(f"kiosk sync: {summary['error']}", file=sys.stderr)
            return 1
        return 0
    finally:
        rt.stop()


if __name__ == "__main__":  # python -m kiosk.cli.central ...
    parser = argparse.ArgumentParser(prog="kiosk")
    register(parser.add_subparsers(dest="command", required=True))
    a = parser.parse_args()
    sys.exit(a.func(a))

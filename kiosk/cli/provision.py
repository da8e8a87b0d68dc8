"""`kiosk provision`: one hall inventory + one template -> one checked config and
one token per device, ready for the Ansible role (ansible/) to put on each device.

The inventory is a CSV, one row per device (a header row names the columns):

    id,roles,window,printer_port,scanner_port,printer_profile,group
    hz-lobby-1,dispenser lookup,,/dev/kiosk-printer,/dev/kiosk-scanner,generic-58,pilot
    hz-pad-01,pad,01,,,,pilot

``roles`` are separated by spaces or ``;``. Empty cells keep the template's
value. Each config is checked as `kiosk check-config` checks it; a device whose
config fails gets no file and no token, and the command says which row and key.
The token comes from the central's provisioning endpoint (the bench central's
``POST /bench/tokens.json``, signed in with its password).
"""

from __future__ import annotations

import base64
import csv
import json
import os
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tomli_w import dumps as dump_toml

COLUMNS = ("id", "roles", "window", "printer_port", "scanner_port", "printer_profile", "group")
TOKEN_FILE = "/etc/kiosk/token"  # where the Ansible role puts it on the device


def register(sub) -> None:
    p = sub.add_parser("provision", help="one checked config and token per device, from a hall inventory")
    p.add_argument("--inventory", required=True, help="CSV: id,roles,window,printer_port,scanner_port,...")
    p.add_argument("--template", required=True, help="the hall's settings every device shares (TOML)")
    p.add_argument("--out", required=True, help="folder: <id>/kiosk.toml and <id>/token (0600) per device")
    p.add_argument("--central", required=True, help="the central's base URL (its provisioning endpoint)")
    p.add_argument("--password-file", required=True, help="file holding the central's provisioning password")
    p.set_defaults(func=cmd_provision)


def device_config(template: dict[str, Any], row: dict[str, str]) -> dict[str, Any]:
    data = json.loads(json.dumps(template))  # a deep copy of plain TOML data
    roles = [r for r in row["roles"].replace(";", " ").split() if r]
    data.setdefault("device", {}).update(id=row["id"], roles=roles)
    # The token goes where the Ansible role puts it, whatever the template says.
    data.setdefault("central", {})["token_file"] = TOKEN_FILE
    if row.get("window"):
        data.setdefault("pad", {})["window"] = row["window"]
    if row.get("printer_port"):
        data.setdefault("printer", {}).update(backend="serial", port=row["printer_port"])
    if row.get("printer_profile"):
        data.setdefault("printer", {})["profile"] = row["printer_profile"]
    if row.get("scanner_port"):
        data.setdefault("scanner", {}).update(backend="serial", port=row["scanner_port"])
    return data


def issue_token(central: str, password: str, row: dict[str, str], roles: list[str]) -> str:
    body = {"device_id": row["id"], "roles": roles, "window": row.get("window") or None}
    body["group"] = row.get("group") or "default"
    auth = base64.b64encode(f"provision:{password}".encode()).decode()
    req = urllib.request.Request(
        central.rstrip("/") + "/bench/tokens.json",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=15) as r:
        token = json.loads(r.read())["token"]
    if not isinstance(token, str) or not token:
        raise ValueError("the central answered without a token")
    return token


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)


def cmd_provision(args) -> int:
    from kiosk.core.config import ConfigError, load_config

    try:
        template = tomllib.loads(Path(args.template).read_text(encoding="utf-8"))
        password = Path(args.password_file).read_text(encoding="utf-8").strip()
        with open(args.inventory, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError, csv.Error) as e:
        print(f"kiosk provision: {getattr(e, 'filename', None) or ''} {e}", file=sys.stderr)
        return 2
    missing = [c for c in ("id", "roles") if rows and c not in rows[0]]
    if not rows or missing:
        print(f"kiosk provision: {args.inventory}: no rows, or no column {', '.join(missing)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed, seen = 0, set()
    for n, row in enumerate(rows, start=2):  # row 1 is the header
        row = {k: (v or "").strip() for k, v in row.items() if k}
        where = f"{args.inventory}:{n} ({row.get('id') or 'no id'})"
        if not row.get("id") or row["id"] in seen or "/" in row["id"]:
            print(f"{where}: id missing, repeated or with '/'", file=sys.stderr)
            failed += 1
            continue
        seen.add(row["id"])
        folder = out / row["id"]
        folder.mkdir(exist_ok=True)
        cfg_path = folder / "kiosk.toml"
        data = device_config(template, row)
        cfg_path.write_text(dump_toml(data), encoding="utf-8")
        try:
            cfg = load_config(cfg_path)  # the checks of `kiosk check-config`
        except ConfigError as e:
            cfg_path.unlink()
            for p in e.problems:
                if not p.warning:
                    print(f"{where}: {p.key}: {p.what} ({p.fix})", file=sys.stderr)
            failed += 1
            continue
        try:
            token = issue_token(args.central, password, row, list(cfg.device.roles))
        except (OSError, ValueError, KeyError) as e:
            cfg_path.unlink()
            reason = f"HTTP {e.code}" if isinstance(e, urllib.error.HTTPError) else str(e)
            print(
                f"{where}: no token from {args.central}: {reason} (check --central and the password)", file=sys.stderr
            )
            failed += 1
            continue
        _write_secret(folder / "token", token)
        print(f"{row['id']}: {cfg_path} ok ({', '.join(cfg.device.roles)}), token written (0600)")
    if failed:
        print(f"kiosk provision: {failed} of {len(rows)} devices not provisioned (see above)", file=sys.stderr)
        return 1
    return 0

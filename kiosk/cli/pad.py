"""`kiosk pad-verify` (the hash chain) and `kiosk pad-screenshot` (render a pad state)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from kiosk.core import keys
from kiosk.core.config import load_config, resolve_path
from kiosk.roles.pad.samples import PAD_STATES


def cmd_verify_ratings(args) -> int:
    from kiosk.roles.pad.chain import verify

    cfg = load_config(resolve_path(args.config))
    path = Path(cfg.storage.dir) / keys.LEDGER_FILE
    if not path.exists():
        print(f"kiosk: no ledger at {path} (is storage.dir right?)", file=sys.stderr)
        return 2
    # Read-only: checking the evidence must not change it.
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("SELECT seq, uuid, session_id, body, prev_hash, hash FROM ratings ORDER BY seq").fetchall()
        head = conn.execute("SELECT value FROM meta WHERE key = ?", (keys.RATING_CHAIN_HEAD,)).fetchone()
        cp = conn.execute("SELECT value FROM meta WHERE key = ?", (keys.RATING_CHAIN_CHECKPOINT,)).fetchone()
    except sqlite3.DatabaseError as e:
        print(f"kiosk: cannot read the ratings in {path}: {e}", file=sys.stderr)
        return 2
    finally:
        conn.close()
    checkpoint = cp["value"] if cp else None
    n, problems = verify(rows, head["value"] if head else None, checkpoint)
    if problems:
        for p in problems:
            print(f"{path}: {p.line()}")
        print(
            f"ratings chain BROKEN: {len(problems)} problem(s) in {n} record(s); "
            f"compare with the central system's copy and report it",
            file=sys.stderr,
        )
        return 1
    if checkpoint:
        pruned, h = checkpoint.split(":", 1)
        print(
            f"ratings chain ok: {n} record(s) after the retention checkpoint "
            f"({pruned} older record(s) delivered and pruned, last hash {h[:12]}…)"
        )
    else:
        print(f"ratings chain ok: {n} record(s)")
    return 0


def cmd_pad_preview(args) -> int:
    from kiosk.app import screenshot

    cfg = load_config(resolve_path(args.config))
    return screenshot(cfg, "pad", args.out, args.lang, state=args.state, large=args.large)


def register(sub) -> None:
    p = sub.add_parser(
        "pad-verify", aliases=["verify-ratings"], help="check the ratings hash chain (deleted or edited records)"
    )
    p.add_argument("--config")
    p.set_defaults(func=cmd_verify_ratings)

    p = sub.add_parser("pad-screenshot", aliases=["pad-preview"], help="render one state of the rating pad to PNG")
    p.add_argument("--config")
    p.add_argument("--state", choices=PAD_STATES, default="idle")
    p.add_argument("--out", required=True)
    p.add_argument("--lang", choices=("zh", "en"))
    p.add_argument("--large", action="store_true", help="large-text mode")
    p.set_defaults(func=cmd_pad_preview)

"""Drain rate of the outbox to the bench central on loopback: batched vs one request per event.

    python bench/sync_drain.py [--events 10000] [--batch 200]

The bench central runs as its own process (`python -m kiosk central`), so
client and server do not share one interpreter lock. Two devices each queue
the same number of events (a typical rating body) in their own ledger
(WAL, synchronous=FULL, as on the device); one is drained by the sync worker
in batches, the other by the same worker with one event per request (the
baseline). Both counts are checked at the central afterwards: every event
exactly once.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kiosk.core import keys  # noqa: E402
from kiosk.core.ledger import Ledger  # noqa: E402
from kiosk.sync.client import CentralClient  # noqa: E402
from kiosk.sync.worker import SyncWorker  # noqa: E402

RATING = {
    "session_id": "",
    "ticket": "A023",
    "case_no": "BJ2026-000123",
    "item_code": "330100-SB-001",
    "item_version": "3",
    "window": "01",
    "staff_id": "S1001",
    "channel": "PJQ",
    "level": 5,
    "reasons": [],
    "reasons_version": "GB/T 39734-2020-A.1",
    "started_at": "2026-05-12T09:30:00+08:00",
    "rated_at": "2026-05-12T09:30:12+08:00",
    "prev_hash": "0" * 64,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill(ledger: Ledger, n: int) -> None:
    # One transaction per event, as the services write them.
    for _ in range(n):
        with ledger.transaction() as tx:
            # A clerk-opened session id ("L-"): the central takes one outcome per session.
            ledger.add_event(tx, "rating.submitted", dict(RATING, session_id=f"L-{uuid.uuid4().hex}"))


def drain(ledger: Ledger, client: CentralClient, device_id: str, batch: int) -> tuple[float, dict]:
    w = SyncWorker(ledger, client, None, device_id, batch_size=batch)
    t0 = time.perf_counter()
    summary = w.run_once(pull=False)
    elapsed = time.perf_counter() - t0
    if not summary["ok"] or summary["pending"]:
        raise SystemExit(f"drain failed: {summary}")
    return elapsed, summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=200)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="sync-drain-") as tmp:
        tmp = Path(tmp)
        port = free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        tokens = {}
        for dev in ("bench-batched", "bench-single"):
            out = tmp / f"{dev}.token"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "kiosk",
                    "central",
                    "issue-token",
                    "--data",
                    str(tmp / "central"),
                    "--device",
                    dev,
                    "--role",
                    "pad",
                    "--window",
                    "01",
                    "--out",
                    str(out),
                ],
                check=True,
                env=env,
                capture_output=True,
            )
            tokens[dev] = out.read_text().strip()
        server = subprocess.Popen(
            [sys.executable, "-m", "kiosk", "central", "--data", str(tmp / "central"), "--port", str(port)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            results = {}
            for dev, batch in (("bench-batched", args.batch), ("bench-single", 1)):
                client = CentralClient(url, tokens[dev], 2.0, 30.0)
                for _ in range(100):
                    try:
                        client.whoami()
                        break
                    except Exception:
                        time.sleep(0.1)
                ledger = Ledger(tmp / dev / keys.LEDGER_FILE)
                fill(ledger, args.events)
                elapsed, summary = drain(ledger, client, dev, batch)
                results[dev] = (elapsed, summary)
                client.close()
            check = CentralClient(url, tokens["bench-batched"], 2.0, 30.0)
            check.whoami()
        finally:
            server.terminate()
            server.wait(10)
        # Exactly once, counted in the central's own database.
        import sqlite3

        db = sqlite3.connect(tmp / keys.DEMO_CENTRAL_DIR / keys.CENTRAL_DB_FILE)
        counts = dict(db.execute("SELECT device_id, COUNT(*) FROM events GROUP BY device_id").fetchall())
        db.close()

    b_t, _b_s = results["bench-batched"]
    s_t, _s_s = results["bench-single"]
    b_rate, s_rate = args.events / b_t, args.events / s_t
    print(f"events per device:            {args.events}")
    print(f"batched ({args.batch}/request):        {b_t:8.2f} s  {b_rate:9.0f} events/s")
    print(f"baseline (1 event/request):   {s_t:8.2f} s  {s_rate:9.0f} events/s")
    print(f"ratio batched/baseline:       {b_rate / s_rate:8.1f} x")
    print(
        f"at the central: batched {counts.get('bench-batched')}, baseline {counts.get('bench-single')} "
        f"(expected {args.events} each: exactly once)"
    )
    ok = counts.get("bench-batched") == args.events == counts.get("bench-single")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

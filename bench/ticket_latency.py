"""Ticket latency: service call ("touch") to the last byte at the printer, and bytes per ticket.

    python bench/ticket_latency.py [--tickets 200]

The printer is a real pty pair opened by the serial backend; a reader on the
far end timestamps the cut command (the last bytes of a ticket). A pty does
not pace bytes like a 9600-baud line, so the wire time at 9600 baud is
computed from the byte count and printed beside it: on a real printer the
line adds that much. Offline = no central; online = bench central on loopback.

The reference, measured in the same run on its own pty: the same ticket's
bytes written straight to the port with pyserial, timed to the cut at the far
end (no status query, no ledger, no numbering): the floor of this path on this
machine at this load. The software's share is the difference.
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kiosk.core import keys  # noqa: E402
from kiosk.core.config import load_config  # noqa: E402
from kiosk.core.ledger import Ledger  # noqa: E402
from kiosk.roles.dispenser.layout import ticket_for  # noqa: E402
from kiosk.roles.dispenser.service import TicketService  # noqa: E402
from kiosk.wiring import build_printer, encode_document  # noqa: E402
from tests.helpers import write_config  # noqa: E402

CUT = b"\x1dV"


class FarEnd:
    """The printer side of a pty: answers DLE EOT, timestamps each cut."""

    def __init__(self):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.cuts: list[float] = []
        self.bytes = 0
        self._stop = threading.Event()
        self._tail = b""
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            data = os.read(self.master, 4096)
            now = time.perf_counter()
            buf = self._tail + data
            i = 0
            while i < len(buf):
                if buf[i : i + 2] == b"\x10\x04":
                    if i + 2 >= len(buf):
                        break
                    os.write(self.master, b"\x12")  # online, paper ok
                    i += 3
                    continue
                if buf[i : i + 2] == CUT:
                    if i + 2 >= len(buf):
                        break
                    self.cuts.append(now)
                    self.bytes += 3
                    i += 3
                    continue
                self.bytes += 1
                i += 1
            self._tail = buf[i:]

    def close(self):
        self._stop.set()
        time.sleep(0.1)
        os.close(self.master)
        os.close(self.slave)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def run(mode: str, n: int, tmp: Path) -> dict:
    far = FarEnd()
    d = tmp / mode
    d.mkdir()
    central = client = None
    changes = {
        "printer": {"backend": "serial", "port": far.path, "status_timeout": 0.5},
        "dispenser": {"offline_range": [1, 9999], "open_days": [1, 2, 3, 4, 5, 6, 7], "open_hours": ["00:00-23:59"]},
    }
    cfg = load_config(write_config(d, changes))
    if mode == "online":
        from kiosk.central.server import BenchCentral
        from kiosk.sync.client import CentralClient

        central = BenchCentral(d / "central").start()
        client = CentralClient(central.url, central.issue_token(cfg.device.id, ["dispenser"]), 1.0, 3.0)
    worker = build_printer(cfg).start()
    svc = TicketService(cfg, Ledger(d / keys.LEDGER_FILE), client=client, printer=worker)
    lat, sizes, sources = [], [], set()
    cats = [c["code"] for c in cfg.dispenser.categories]
    try:
        for i in range(n):
            before = len(far.cuts)
            t0 = time.perf_counter()
            r = svc.issue(cats[i % len(cats)])
            while len(far.cuts) == before:
                time.sleep(0.0002)
            lat.append(far.cuts[-1] - t0)
            sizes.append(len(encode_document(ticket_for(r.ticket, cfg), cfg)))
            sources.add(r.ticket.source)
    finally:
        worker.close()
        far.close()
        if client:
            client.close()
        if central:
            central.stop()
    return {
        "mode": mode,
        "n": n,
        "p50_ms": pct(lat, 50) * 1000,
        "p99_ms": pct(lat, 99) * 1000,
        "max_ms": max(lat) * 1000,
        "bytes_mean": statistics.mean(sizes),
        "bytes_max": max(sizes),
        "sources": sorted(sources),
    }


def run_reference(n: int, tmp: Path) -> dict:
    """Bare pyserial: the encoded ticket written to the pty, timed to the cut at the far end."""
    import serial

    from kiosk.roles.dispenser.samples import sample_ticket

    far = FarEnd()
    cfg = load_config(write_config(tmp / "reference", {}))
    data = encode_document(ticket_for(sample_ticket(cfg, offline=True), cfg), cfg)
    port = serial.Serial(far.path, 9600, timeout=1)
    lat = []
    try:
        for _ in range(n):
            before = len(far.cuts)
            t0 = time.perf_counter()
            port.write(data)
            port.flush()
            while len(far.cuts) == before:
                time.sleep(0.0002)
            lat.append(far.cuts[-1] - t0)
    finally:
        port.close()
        far.close()
    return {
        "mode": "bare",
        "n": n,
        "p50_ms": pct(lat, 50) * 1000,
        "p99_ms": pct(lat, 99) * 1000,
        "max_ms": max(lat) * 1000,
        "bytes_mean": len(data),
        "bytes_max": len(data),
        "sources": ["reference: bare pyserial write"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=200)
    args = ap.parse_args()
    baud = 9600
    bytes_per_s = baud / 10  # 8N1: 10 bits on the wire per byte
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "reference").mkdir()
        results = [
            run_reference(args.tickets, Path(tmp)),
            run("offline", args.tickets, Path(tmp)),
            run("online", args.tickets, Path(tmp)),
        ]
    print(f"load average at end:   {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"touch -> last byte at the printer (pty), {args.tickets} tickets each")
    print(f"{'mode':8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'bytes':>6}  numbering")
    for r in results:
        print(
            f"{r['mode']:8} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {r['max_ms']:8.1f} {r['bytes_mean']:6.0f}  "
            f"{'/'.join(r['sources'])}"
        )
    print(f"\nbytes per ticket and wire time at {baud} baud 8N1 ({bytes_per_s:.0f} bytes/s is the physical limit)")
    from kiosk.roles.dispenser.samples import sample_ticket

    with tempfile.TemporaryDirectory() as tmp:
        for profile in ("default", "no-qr", "no-chinese"):
            cfg = load_config(write_config(Path(tmp), {"printer": {"profile": profile}}))
            for offline in (False, True):
                data = encode_document(ticket_for(sample_ticket(cfg, offline=offline), cfg), cfg)
                print(
                    f"  {profile:10} {'offline' if offline else 'online ':7} {len(data):6d} bytes "
                    f"{len(data) / bytes_per_s:6.2f} s on the wire"
                )
    ref = results[0]
    for r in results[1:]:
        print(
            f"{r['mode']}: p50 +{r['p50_ms'] - ref['p50_ms']:.1f} ms over the bare write "
            "(the status query, the ledger's durable commits, numbering, layout and encoding)"
        )
    worst = max(r["p99_ms"] for r in results[1:])
    print(
        f"\nA default ticket needs ~{results[1]['bytes_mean'] / bytes_per_s:.2f} s on a 9600-baud line; "
        f"software adds p99 {worst:.0f} ms on top."
    )


if __name__ == "__main__":
    main()

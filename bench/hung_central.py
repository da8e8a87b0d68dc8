"""A central that hangs: what a citizen waits for a ticket and a lookup, with and without going offline fast.

    .venv/bin/python bench/hung_central.py [--n 10]

The bench central on 127.0.0.1 with its `hang` fault on every API call: it
accepts the connection and never answers. Measured in one run, with the
config's default timeouts (dispenser.online_timeout 1.5 s, lookup.timeout 3 s):

- reference: the same device with the breaker effectively off
  (central.offline_after = 100): every ticket and lookup waits out its timeout;
- the device as configured (offline_after = 3): the first three calls wait,
  then tickets are numbered offline and lookups answered from the cache at once;
- the answering central first (no fault), for the online figures;
- recovery: after the fault is cleared, how long until the probe
  (central.probe_interval, 5 s) has the device online again.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devices.printer import PrinterWorker, SimBackend, TicketPrinter  # noqa: E402
from kiosk.central.server import BenchCentral  # noqa: E402
from kiosk.core import keys  # noqa: E402
from kiosk.core.cache import Cache  # noqa: E402
from kiosk.core.config import load_config  # noqa: E402
from kiosk.core.ledger import Ledger  # noqa: E402
from kiosk.roles.dispenser.service import TicketService  # noqa: E402
from kiosk.roles.lookup.service import LookupService, Scan  # noqa: E402
from kiosk.sync.client import CentralClient  # noqa: E402
from tests.helpers import service_time, write_config  # noqa: E402


class Device:
    def __init__(self, tmp: Path, central: BenchCentral, name: str, offline_after: int):
        d = tmp / name
        d.mkdir()
        changes = {
            "device": {"id": name, "roles": ["dispenser", "lookup"]},
            "central": {"url": central.url, "allow_http": True},
            "dispenser": {"open_days": [1, 2, 3, 4, 5, 6, 7], "open_hours": ["00:00-23:59"]},
        }
        self.cfg = load_config(write_config(d, changes))
        token = central.issue_token(name, ["dispenser", "lookup"])
        c = self.cfg.central
        self.client = CentralClient(
            central.url, token, c.connect_timeout, c.read_timeout, offline_after=offline_after, probe_every=5.0
        )
        self.ledger = Ledger(d / keys.LEDGER_FILE)
        self.cache = Cache(d / keys.CACHE_FILE)
        self.printer = PrinterWorker(TicketPrinter(SimBackend())).start()
        self.tickets = TicketService(self.cfg, self.ledger, client=self.client, printer=self.printer, now=service_time)
        self.lookup = LookupService(self.cfg, self.ledger, self.cache, client=lambda: self.client)

    def ticket(self) -> tuple[float, str]:
        t = time.perf_counter()
        r = self.tickets.issue("A")
        return time.perf_counter() - t, r.ticket.source

    def look(self, payload: str) -> tuple[float, str]:
        t = time.perf_counter()
        r = self.lookup.lookup_scan(Scan(payload, "serial"))
        return time.perf_counter() - t, r.outcome

    def close(self) -> None:
        self.printer.close()
        self.client.close()
        self.cache.close()
        self.ledger.close()


def ms(xs: list[float]) -> str:
    return f"p50 {statistics.median(xs) * 1000:8.1f} ms  max {max(xs) * 1000:8.1f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10, help="tickets and lookups per phase")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hung-central-"))
    central = BenchCentral(tmp / "central").start()
    central.store.today = lambda: service_time().date().isoformat()
    devices = []
    try:
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        ref = Device(tmp, central, "reference", offline_after=100)
        dev = Device(tmp, central, "device", offline_after=3)
        devices = [ref, dev]
        case = central.create_case(applicant_name="张小三", query_code="482913", status="reviewing")
        online = {"ticket": [], "lookup": []}
        for _ in range(args.n):
            for d in devices:
                online["ticket"].append(d.ticket()[0])
                online["lookup"].append(d.look(case["qr_payload"])[0])  # also fills each device's cache
        central.inject("hang", count=1_000_000, delay=30.0)
        got: dict[str, dict[str, list[tuple[float, str]]]] = {}
        for d in devices:
            got[d.cfg.device.id] = {
                "ticket": [d.ticket() for _ in range(args.n)],
                "lookup": [d.look(case["qr_payload"]) for _ in range(args.n)],
            }
        central.clear_faults()
        t = time.perf_counter()
        while dev.client.breaker.open and time.perf_counter() - t < 30:
            time.sleep(0.05)
        back = time.perf_counter() - t
        after = dev.ticket()
        print(f"load average at end:   {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"answering central:  ticket {ms(online['ticket'])}   lookup {ms(online['lookup'])}")
        for name, label in (("reference", "hung, offline_after=100 (reference)"), ("device", "hung, offline_after=3")):
            for kind in ("ticket", "lookup"):
                xs = got[name][kind]
                outcomes = sorted({o for _, o in xs})
                first = [x for x, _ in xs[:3]]
                rest = [x for x, _ in xs[3:]]
                print(f"{label:38} {kind:6} first 3: {ms(first)}   then {len(rest)}: {ms(rest)}   {'/'.join(outcomes)}")
        print(f"fault cleared: online again after {back:.2f} s (probe every 5 s); next ticket {after[1]}")
    finally:
        for d in devices:
            d.close()
        central.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

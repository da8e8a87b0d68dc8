"""Costs that must not grow with the ledger: a year-old ledger against a fresh one, same run.

    .venv/bin/python bench/aged_ledger.py [--events 1000000] [--backlog-days 7]

A synthetic ledger of one year of a busy hall (tickets with their central
requests, ratings with their hash chain, lookup audits; mostly delivered, a
few dead letters, the last week pending because the device was offline) and
a fresh ledger holding only the same week's backlog. Both are measured
interleaved in one run, on the same disk, against one bench central process
on 127.0.0.1:

- start-up: ledger open (+ migrations), the start-up self-check of the
  ledger, the dispenser's scan for interrupted ticket requests;
- the outbox statistics (what the status line, heartbeat and service screen read);
- a rating submit (chain + record + outbox event, one transaction, synchronous=FULL);
- draining the week's backlog to the central (batches of 200);
- an idle background cycle once the outbox is empty (sync cycle with pulls +
  heartbeat): the device's own CPU time per cycle, and what that is at the
  15 s sync interval.

The generated ledger is written at schema 2 (the base schema and the
dispenser's additions), as a device in the field has it; the first open
runs whatever migrations the code has since, and that first open is reported
on its own. The generator uses synchronous=OFF (it is not a device, and a
million fsyncs would take hours); everything measured runs with the ledger's
own settings. The files are in the page cache after generation, so start-up
here is the warm case; a cold boot reads from the SD card as well.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tomllib  # noqa: E402

import tomli_w  # noqa: E402

from kiosk.core import keys  # noqa: E402
from kiosk.core.cache import Cache  # noqa: E402
from kiosk.core.config import load_config  # noqa: E402
from kiosk.core.ledger import MIGRATIONS, Ledger  # noqa: E402
from kiosk.core.storage import prune_pass  # noqa: E402
from kiosk.roles.dispenser.service import TicketService  # noqa: E402
from kiosk.roles.pad.chain import GENESIS, canonical, record_hash  # noqa: E402
from kiosk.roles.pad.chain import verify as verify_chain  # noqa: E402
from kiosk.roles.pad.service import RatingService  # noqa: E402
from kiosk.sync.client import CentralClient  # noqa: E402
from kiosk.sync.worker import SyncWorker  # noqa: E402
from kiosk.technician import selftest  # noqa: E402

# The schema a device in the field has before this benchmark's changes (see the module doc).
FIELD_SCHEMA = 2
BOOT = "bench-boot"
TZ = "+08:00"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def generate(path: Path, device_id: str, history_days: int, backlog_days: int, per_day: int, seed: int) -> int:
    """Write a ledger of history_days delivered + backlog_days pending; returns the event count."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    for script in MIGRATIONS[:FIELD_SCHEMA]:
        for stmt in script.split(";"):
            if stmt.strip():
                db.execute(stmt)
    db.execute(f"PRAGMA user_version = {FIELD_SCHEMA}")
    last_day = date(2026, 11, 27)
    first_day = last_day - timedelta(days=history_days + backlog_days - 1)
    prev_hash, chain_n, events = GENESIS, 0, 0
    outbox, tickets, requests, ratings, dead = [], [], [], [], []
    for d in range(history_days + backlog_days):
        day = first_day + timedelta(days=d)
        pending = d >= history_days
        # A busy hall's day: 40 % tickets, 20 % ratings, 40 % lookup audits.
        for i in range(per_day):
            at = datetime(day.year, day.month, day.day, 9, 0, 0) + timedelta(seconds=i * 28_800 // per_day)
            created = at.isoformat(timespec="milliseconds") + TZ
            r = i % 5
            if r in (0, 1):
                n = i // 5 * 2 + r + 1
                request_id, tid = make_uuid(rng), make_uuid(rng)
                kind = "ticket.issued"
                body: dict[str, Any] = {
                    "ticket_uuid": tid,
                    "request_id": request_id,
                    "day": day.isoformat(),
                    "category": "A",
                    "number": n,
                    "display": f"A{n:04d}",
                    "priority": False,
                    "source": "online",
                    "issued_at": created,
                }
                tickets.append((tid, request_id, day.isoformat(), "A", n, f"A{n:04d}", created, BOOT))
                requests.append((request_id, "A", 0, created, BOOT))
            elif r == 2:
                kind = "rating.submitted"
                body = {
                    "uuid": make_uuid(rng),
                    "session_id": "L-" + make_uuid(rng).replace("-", "")[:20],
                    "outcome": "rated",
                    "level": 5 - (i % 3),
                    "reasons": [],
                    "channel": "PJQ",
                    "device_id": device_id,
                    "window": "01",
                    "staff_id": "S1001",
                    "ticket": f"A{i:04d}",
                    "decided_at": created,
                    "chain_index": chain_n,
                    "prev_hash": prev_hash,
                }
                h = record_hash(body)
                ratings.append((body["uuid"], body["session_id"], canonical(body), prev_hash, h))
                body = dict(body, hash=h)
                prev_hash, chain_n = h, chain_n + 1
            else:
                kind = "lookup.performed"
                body = {
                    "receipt_hash": f"{rng.getrandbits(256):064x}",
                    "outcome": "found",
                    "source": "scan",
                    "device_id": device_id,
                }
            eid = make_uuid(rng)
            state, delivered_at = ("pending", None) if pending else ("delivered", created)
            if not pending and rng.random() < 0.001:
                state, delivered_at = "dead", None
                dead.append((eid, kind, json.dumps(body), "invalid: synthetic dead letter", created))
            text = json.dumps(body, ensure_ascii=False, sort_keys=True)
            outbox.append((eid, kind, text, created, BOOT, state, delivered_at))
            events += 1
        if len(outbox) > 50_000 or d == history_days + backlog_days - 1:
            db.executemany(
                "INSERT INTO outbox (uuid, kind, body, created_at, boot_id, state, delivered_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                outbox,
            )
            db.executemany(
                "INSERT INTO tickets (uuid, request_id, day, category, number, display, source, issued_at, boot_id,"
                " print_state, print_count) VALUES (?, ?, ?, ?, ?, ?, 'online', ?, ?, 'printed', 1)",
                tickets,
            )
            db.executemany(
                "INSERT INTO ticket_requests (request_id, category, priority, created_at, boot_id, state)"
                " VALUES (?, ?, ?, ?, ?, 'done')",
                requests,
            )
            db.executemany(
                "INSERT INTO ratings (uuid, session_id, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?)", ratings
            )
            db.executemany("INSERT INTO dead_letters (uuid, kind, body, reason, dead_at) VALUES (?, ?, ?, ?, ?)", dead)
            outbox, tickets, requests, ratings, dead = [], [], [], [], []
    db.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (keys.RATING_CHAIN_HEAD, f"{chain_n}:{prev_hash}")
    )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return events


def write_config(folder: Path, device_id: str, url: str, token: str) -> Path:
    data = tomllib.loads((ROOT / "kiosk" / "data" / "demo.toml").read_text(encoding="utf-8"))
    data["device"]["id"] = device_id
    data["central"]["url"] = url
    folder.mkdir(parents=True, exist_ok=True)
    tok = folder / "token"
    tok.write_text(token)
    os.chmod(tok, 0o600)
    data["central"]["token_file"] = str(tok)
    data["storage"]["dir"] = str(folder / "data")
    path = folder / "kiosk.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def ms(xs: list[float]) -> str:
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, round(0.99 * (len(xs) - 1)))]
    return f"p50 {statistics.median(xs) * 1000:9.3f} ms  p99 {p99 * 1000:9.3f} ms"


class Device:
    def __init__(self, name: str, folder: Path, url: str, token: str):
        self.name = name
        self.cfg = load_config(write_config(folder, name, url, token))
        self.path = self.cfg.storage_dir / keys.LEDGER_FILE
        self.client = CentralClient(url, token, 2.0, 30.0)
        self.ledger: Ledger | None = None
        self.worker: Any = None
        self.tickets: Any = None
        self.first_open = 0.0
        self.startup: list[float] = []
        self.start_open: list[float] = []
        self.start_check: list[float] = []
        self.start_dispenser: list[float] = []
        self.stats: list[float] = []
        self.submit: list[float] = []
        self.issue: list[float] = []
        self.idle_cpu: list[float] = []
        self.idle_wall: list[float] = []
        self.drain = (0.0, 0)

    def open(self) -> Ledger:
        t0 = time.perf_counter()
        led = Ledger(self.path)
        self.first_open = time.perf_counter() - t0
        return led

    def start_once(self) -> None:
        """What a start costs the ledger: open + migrations, the self-check's ledger row, the dispenser's scan."""
        t0 = time.perf_counter()
        led = Ledger(self.path)
        t1 = time.perf_counter()
        row = selftest.check_ledger(self.cfg, SimpleNamespace(ledger=led))
        t2 = time.perf_counter()
        TicketService(self.cfg, led)
        t3 = time.perf_counter()
        self.startup.append(t3 - t0)
        self.start_open.append(t1 - t0)
        self.start_check.append(t2 - t1)
        self.start_dispenser.append(t3 - t2)
        led.close()
        if row.verdict != selftest.OK:
            raise SystemExit(f"{self.name}: ledger check failed: {row.detail}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="events in the aged ledger (one year)")
    ap.add_argument("--backlog-days", type=int, default=7)
    ap.add_argument("--starts", type=int, default=3)
    ap.add_argument("--submits", type=int, default=40)
    ap.add_argument("--stats", type=int, default=200)
    ap.add_argument("--idle", type=int, default=10)
    ap.add_argument("--issues", type=int, default=40)
    ap.add_argument("--retention-days", type=int, default=90)
    args = ap.parse_args()
    per_day = max(5, args.events // 365)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    tmp = Path(tempfile.mkdtemp(prefix="aged-ledger-"))
    server = None
    try:
        port = free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        tokens = {}
        for dev in ("bench-fresh", "bench-aged"):
            out = tmp / f"{dev}.token"
            cmd = [sys.executable, "-m", "kiosk", "central", "issue-token", "--data", str(tmp / "central")]
            cmd += ["--device", dev, "--role", "dispenser", "--role", "lookup", "--role", "pad", "--window", "01"]
            subprocess.run([*cmd, "--out", str(out)], check=True, env=env, capture_output=True)
            tokens[dev] = out.read_text().strip()
        server = subprocess.Popen(
            [sys.executable, "-m", "kiosk", "central", "--data", str(tmp / "central"), "--port", str(port)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        fresh = Device("bench-fresh", tmp / "fresh", url, tokens["bench-fresh"])
        aged = Device("bench-aged", tmp / "aged", url, tokens["bench-aged"])
        t0 = time.perf_counter()
        n_aged = generate(aged.path, aged.name, 365 - args.backlog_days, args.backlog_days, per_day, seed=1)
        n_fresh = generate(fresh.path, fresh.name, 0, args.backlog_days, per_day, seed=2)
        size = aged.path.stat().st_size / 2**20
        print(f"generated in {time.perf_counter() - t0:.0f} s: aged {n_aged} events ({size:.0f} MB), fresh {n_fresh}")
        for c in (fresh.client, aged.client):
            for _ in range(100):
                try:
                    c.whoami()
                    break
                except Exception:
                    time.sleep(0.1)
        pair = (fresh, aged)
        for d in pair:  # the first open after an upgrade runs the migrations the field ledger lacks
            d.open().close()
        for _ in range(args.starts):
            for d in pair:
                d.start_once()
        for d in pair:
            d.ledger = Ledger(d.path)
        for _ in range(args.stats):
            for d in pair:
                assert d.ledger is not None
                t = time.perf_counter()
                d.ledger.outbox_stats()
                d.stats.append(time.perf_counter() - t)
        pads = {}
        for d in pair:
            assert d.ledger is not None
            pads[d.name] = RatingService(d.cfg, d.ledger, Cache(d.cfg.storage_dir / keys.CACHE_FILE))
        for _ in range(args.submits):
            for d in pair:
                svc = pads[d.name]
                svc.open_session("L-" + uuid.uuid4().hex[:20], origin="clerk", staff_id="S1001")
                t = time.perf_counter()
                svc.submit(5)
                d.submit.append(time.perf_counter() - t)
        measure_issue(pair, args.issues)
        for d in pair:
            assert d.ledger is not None
            pending = d.ledger.outbox_stats()["pending"]
            w = SyncWorker(d.ledger, d.client, None, d.name, batch_size=200)
            t = time.perf_counter()
            summary = w.run_once(pull=False)
            d.drain = (time.perf_counter() - t, pending)
            if not summary["ok"] or summary["pending"]:
                raise SystemExit(f"{d.name}: drain failed: {summary}")
        workers = {}
        for d in pair:
            assert d.ledger is not None
            cache = Cache(d.cfg.storage_dir / "idle-cache.sqlite")
            workers[d.name] = SyncWorker(d.ledger, d.client, cache, d.name, window="01")
        for _ in range(args.idle):
            for d in pair:
                w = workers[d.name]
                c0, t0 = time.thread_time(), time.perf_counter()
                summary = w.run_once(pull=True)
                d.idle_cpu.append(time.thread_time() - c0)
                d.idle_wall.append(time.perf_counter() - t0)
                if not summary["ok"]:
                    raise SystemExit(f"{d.name}: idle cycle failed: {summary}")
        retention = measure_retention(aged, fresh, pads, args)
        for svc in pads.values():
            svc.close()
        for d in pair:
            assert d.ledger is not None
            d.ledger.close()
            d.client.close()
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    def ratio(a: float, b: float) -> str:
        return f"{b / a:6.2f}x" if a > 0 else "   n/a"

    print(f"load average at end:   {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'figure':38} {'fresh':>34} {'aged':>34}  aged/fresh (p50)")
    rows = [
        ("first open (incl. migrations)", [fresh.first_open], [aged.first_open]),
        ("start-up: open + check + dispenser", fresh.startup, aged.startup),
        ("  ledger open", fresh.start_open, aged.start_open),
        ("  self-check's ledger check", fresh.start_check, aged.start_check),
        ("  dispenser's interrupted-request scan", fresh.start_dispenser, aged.start_dispenser),
        ("outbox statistics", fresh.stats, aged.stats),
        ("rating submit", fresh.submit, aged.submit),
        ("ticket issue (offline, sim printer)", fresh.issue, aged.issue),
        ("idle cycle, device CPU", fresh.idle_cpu, aged.idle_cpu),
        ("idle cycle, wall", fresh.idle_wall, aged.idle_wall),
    ]
    for name, f, a in rows:
        print(f"{name:38} {ms(f):>34} {ms(a):>34}  {ratio(statistics.median(f), statistics.median(a))}")
    for d in (fresh, aged):
        cpu = statistics.median(d.idle_cpu)
        print(f"idle CPU at the 15 s interval, {d.name:12} {cpu / 15 * 100:6.3f} % of one core")
    (ft, fn), (at, an) = fresh.drain, aged.drain
    print(
        f"drain of the backlog: fresh {fn} events {ft:.2f} s ({fn / ft:.0f}/s); "
        f"aged {an} events {at:.2f} s ({an / at:.0f}/s); aged/fresh {at / ft:.2f}x"
    )
    print(f"retention {args.retention_days} days on the aged ledger (after the drain: all delivered but dead letters):")
    for line in retention:
        print("  " + line)
    return 0


def measure_issue(pair: tuple[Device, ...], n: int) -> None:
    """Ticket issue as the screen calls it, offline (no client), a simulated printer."""
    from devices.printer import PrinterWorker, SimBackend, TicketPrinter

    for d in pair:
        assert d.ledger is not None
        d.worker = PrinterWorker(TicketPrinter(SimBackend())).start()
        d.tickets = TicketService(d.cfg, d.ledger, printer=d.worker)
    code = pair[0].tickets.categories()[0].code
    for _ in range(n):
        for d in pair:
            t = time.perf_counter()
            d.tickets.issue(code)
            d.issue.append(time.perf_counter() - t)
    for d in pair:
        d.worker.close()


def live_mb(led: Ledger) -> tuple[float, float]:
    """(file size, pages in use) in MB: SQLite reuses freed pages, so the file stops growing."""
    page = led.query("PRAGMA page_size")[0][0]
    count = led.query("PRAGMA page_count")[0][0]
    free = led.query("PRAGMA freelist_count")[0][0]
    return count * page / 2**20, (count - free) * page / 2**20


def measure_retention(aged: Device, fresh: Device, pads: dict[str, Any], args: argparse.Namespace) -> list[str]:
    led = aged.ledger
    assert led is not None
    out = []
    before_file, before_live = live_mb(led)
    t = time.perf_counter()
    got = prune_pass(led, args.retention_days, pause_s=0.0)
    took = time.perf_counter() - t
    _, after_live = live_mb(led)
    out.append(
        f"pass: {took:.1f} s in batches of 500; removed {got.outbox} events, {got.tickets} tickets, "
        f"{got.ticket_requests} requests, {got.ratings} ratings"
    )
    out.append(f"file {before_file:.0f} MB, in use {before_live:.0f} MB -> in use {after_live:.0f} MB")
    compact = aged.path.with_name("compacted.sqlite3")
    led.query(f"VACUUM INTO '{compact}'")
    out.append(f"the same data compacted (VACUUM INTO): {compact.stat().st_size / 2**20:.0f} MB")
    compact.unlink()
    rows = led.query("SELECT seq, uuid, session_id, body, prev_hash, hash FROM ratings ORDER BY seq")
    n, problems = verify_chain(rows, led.get_meta(keys.RATING_CHAIN_HEAD), led.get_meta(keys.RATING_CHAIN_CHECKPOINT))
    out.append(f"ratings chain from the checkpoint: {n} records, {'ok' if not problems else problems[0].line()}")
    # Latency on the pruned ledger against the fresh one, interleaved again.
    submit: dict[str, list[float]] = {"fresh": [], "pruned": []}
    check: dict[str, list[float]] = {"fresh": [], "pruned": []}
    for _ in range(args.submits):
        for name, d in (("fresh", fresh), ("pruned", aged)):
            svc = pads[d.name]
            svc.open_session("L-" + uuid.uuid4().hex[:20], origin="clerk", staff_id="S1001")
            t = time.perf_counter()
            svc.submit(5)
            submit[name].append(time.perf_counter() - t)
    for _ in range(args.starts):
        for name, d in (("fresh", fresh), ("pruned", aged)):
            assert d.ledger is not None
            t = time.perf_counter()
            d.ledger.start_check()
            check[name].append(time.perf_counter() - t)
    for label, xs in (("rating submit", submit), ("start-up ledger check", check)):
        f, p = statistics.median(xs["fresh"]), statistics.median(xs["pruned"])
        out.append(f"{label}: fresh p50 {f * 1000:.3f} ms, pruned p50 {p * 1000:.3f} ms, {p / f:.2f}x")
    return out


if __name__ == "__main__":
    sys.exit(main())

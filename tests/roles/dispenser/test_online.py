"""Hall-wide numbering against the bench central on loopback (real HTTP, no mocks)."""

from __future__ import annotations

import json
import time

import pytest

from devices.printer import PrinterWorker, SimBackend, TicketPrinter
from kiosk.central.store import StoreError
from kiosk.core import keys
from kiosk.core.config import load_config
from kiosk.core.ledger import Ledger
from kiosk.roles.dispenser.service import TicketService
from kiosk.sync.client import CentralClient
from kiosk.sync.outbox import OutboxUploader
from tests.helpers import service_time, wait_until, write_config


class Device:
    def __init__(self, tmp_path, central, name, **dispenser):
        d = tmp_path / name
        d.mkdir()
        self.cfg = load_config(
            write_config(
                d,
                {
                    "device": {"id": name},
                    "dispenser": {"open_days": [1, 2, 3, 4, 5, 6, 7], "open_hours": ["00:00-23:59"], **dispenser},
                },
            )
        )
        self.ledger = Ledger(d / keys.LEDGER_FILE)
        self.sim = SimBackend()
        self.worker = PrinterWorker(TicketPrinter(self.sim)).start()
        self.token = central.issue_token(name)
        self.client = CentralClient(central.url, self.token, connect_timeout=0.5, read_timeout=3)
        self.svc = TicketService(self.cfg, self.ledger, client=self.client, printer=self.worker, now=service_time)

    def close(self):
        self.worker.close()
        self.client.close()


@pytest.fixture
def device(tmp_path, central):
    made = []

    def make(name, **kw):
        d = Device(tmp_path, central, name, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def test_numbers_are_hall_wide_and_sequential_across_two_dispensers(central, device):
    one, two = device("disp-1"), device("disp-2")
    shown = []
    for i in range(6):
        r = (one if i % 2 == 0 else two).svc.issue("A")
        assert r.printed and r.ticket.source == "online" and not r.ticket.offline
        shown.append(r.ticket)
    assert [t.display for t in shown] == ["A001", "A002", "A003", "A004", "A005", "A006"]
    assert [t.people_ahead for t in shown] == [0, 1, 2, 3, 4, 5]
    assert b"A004" in two.sim.jobs[-2] and "前面还有 3 人".encode("gb18030") in two.sim.jobs[-2]
    # each request id was written down before the call and settled after it
    rows = one.ledger.query("SELECT state FROM ticket_requests")
    assert [r["state"] for r in rows] == ["done"] * 3
    central_side = sorted(t["display"] for t in central.store.tickets())
    assert central_side == [t.display for t in shown]
    assert one.svc.issue("B", priority=True).ticket.display == "V001"


def test_a_slow_central_falls_back_to_offline_numbers_in_time(central, device):
    one = device("disp-1", online_timeout=0.5)
    central.inject("slow", delay=2.0, path="/api/v1/tickets")
    start = time.monotonic()
    r = one.svc.issue("A")
    took = time.monotonic() - start
    assert r.ticket.source == "offline" and r.ticket.display == "A900" and r.printed
    assert took < 1.5
    assert one.svc.status()["last_central_error"]
    # the event carries the request id, so the central can match the ticket it may have made meanwhile
    body = json.loads(one.ledger.query("SELECT body FROM outbox WHERE kind = 'ticket.issued'")[0]["body"])
    assert body["request_id"] == r.ticket.request_id and body["source"] == "offline"


def test_leased_block_then_offline_range_when_the_central_goes_away(central, device):
    one, two = device("disp-1", lease_size=3), device("disp-2", lease_size=3)
    assert one.svc.issue("A").ticket.display == "A001"
    one.svc.refresh()  # leases a block per category and priority
    left = one.svc.leased_left()
    assert left["A"] == 3 and left["*priority"] == 3
    one.svc.refresh()  # still enough left: no new lease
    assert one.svc.leased_left()["A"] == 3
    # leased blocks come from the top of the central's range, so online numbering stays sequential
    assert two.svc.issue("A").ticket.display == "A002"
    central.stop()
    got = [one.svc.issue("A").ticket for _ in range(5)]
    assert [t.display for t in got] == ["A897", "A898", "A899", "A900", "A901"]
    assert [t.source for t in got] == ["lease", "lease", "lease", "offline", "offline"]
    assert all(t.offline for t in got)


def test_a_request_interrupted_before_commit_is_reported_abandoned(central, device, tmp_path):
    one = device("disp-1")
    with one.ledger.transaction() as tx:
        tx.execute(
            "INSERT INTO ticket_requests (request_id, category, priority, created_at, boot_id) "
            "VALUES ('r-crashed', 'A', 0, '2026-01-01T09:00:00+08:00', 'b')"
        )
    again = TicketService(one.cfg, one.ledger, client=one.client, printer=one.worker, now=service_time)
    assert (
        one.ledger.query("SELECT state FROM ticket_requests WHERE request_id = 'r-crashed'")[0]["state"] == "abandoned"
    )
    bodies = [
        json.loads(r["body"]) for r in one.ledger.query("SELECT body FROM outbox WHERE kind = 'ticket.abandoned'")
    ]
    assert bodies == [{"request_id": "r-crashed", "category": "A", "priority": False, "reason": "interrupted"}]
    assert again.issue("A").ticket.display == "A001"


def deliver(device, central, settle_first: bool = False):
    """Drain the device's outbox into the central; with settle_first, only after every
    request the central is still working on (a slow one) has committed."""
    up = OutboxUploader(device.ledger, device.client, device.cfg.device.id)
    if settle_first:
        assert wait_until(lambda: central.busy() == 0, timeout=10)
    up.upload()
    # a slow request may still commit after the report: what it does then counts too
    assert wait_until(lambda: central.busy() == 0, timeout=10)
    up.upload()
    assert device.ledger.outbox_stats()["pending"] == 0


@pytest.mark.parametrize(
    "fault, settle_first",
    [("slow", False), ("slow", True), ("drop", False)],
    ids=["slow-report-first", "slow-commit-first", "drop"],
)
def test_every_number_a_counter_can_call_is_held_by_a_citizen(central, device, fault, settle_first):
    one = device("disp-1", online_timeout=0.3)
    held = [one.svc.issue("A").ticket]
    # the central commits a number for each of these requests, but the answer is late or lost
    central.inject(fault, count=2, delay=1.0, path="/api/v1/tickets")
    held += [one.svc.issue("A").ticket for _ in range(2)]
    held.append(one.svc.issue("A").ticket)
    assert [t.source for t in held] == ["online", "offline", "offline", "online"]
    sent = [ev.wire("disp-1") for ev in one.ledger.pending_events(limit=1000)]
    deliver(one, central, settle_first)
    # what the counters would call, in order, is exactly what citizens hold: no ghost, nobody left out
    assert sorted(central.callable_tickets()) == sorted(t.display for t in held)
    # each fallback was reported once, with its request id
    reports = [e["body"] for e in central.events("ticket.abandoned")]
    assert sorted(r["request_id"] for r in reports) == sorted(t.request_id for t in held[1:3])
    assert {r["reason"] for r in reports} == {"fallback"}
    # a resend of the outbox changes nothing (the events keep their ids)
    assert {r["status"] for r in one.client.upload_events(sent)} == {"duplicate"}  # type: ignore[index]
    assert len(central.events("ticket.abandoned")) == 2
    assert sorted(central.callable_tickets()) == sorted(t.display for t in held)


def test_a_ticket_committed_but_not_printed_before_a_crash_is_reported_and_voided(central, device):
    one = device("disp-1")
    kept = one.svc.issue("A").ticket
    # the process dies after the commit and before the printer: the ticket stays 'pending'
    lost = one.svc._take_number(one.svc.category("A"), False)
    assert lost.print_state == "pending" and lost.source == "online"
    again = TicketService(one.cfg, one.ledger, client=one.client, printer=one.worker, now=service_time)
    assert again.get(lost.id).print_state == "failed"
    deliver(one, central)
    assert central.callable_tickets() == [kept.display]
    body = central.events("ticket.abandoned")[0]["body"]
    assert body["reason"] == "not_printed" and body["display"] == lost.display
    # an offline ticket lost the same way is voided by its day and display
    central.stop()
    lost_offline = again._take_number(again.category("A"), False)
    assert lost_offline.source == "offline"
    central.start()
    central.store.today = lambda: kept.day  # a restarted store forgets the tests' fixed day
    TicketService(one.cfg, one.ledger, client=one.client, printer=one.worker, now=service_time)
    deliver(one, central)
    assert central.callable_tickets() == [kept.display]


CHILD = """
import sys
from devices.printer import PrinterWorker, SimBackend, TicketPrinter
from kiosk.core.config import load_config
from kiosk.core.ledger import Ledger
from kiosk.roles.dispenser.service import TicketService
from kiosk.sync.client import CentralClient
from tests.helpers import service_time

cfg_path, ledger_path, url, token = sys.argv[1:5]
cfg = load_config(cfg_path)
ledger = Ledger(ledger_path)
# A printer that takes the job and never finishes it: the process is killed mid-print.
worker = PrinterWorker(TicketPrinter(SimBackend(seconds_per_byte=60))).start()
client = CentralClient(url, token, connect_timeout=0.5, read_timeout=3)
TicketService(cfg, ledger, client=client, printer=worker, now=service_time).issue("A")
"""


def test_a_process_killed_while_printing_leaves_its_ticket_reported_and_voided(central, device):
    """A real crash: the dispenser process gets SIGKILL with the ticket committed
    and the printer still busy; the next start reports it and the central voids it."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    one = device("disp-1")
    kept = one.svc.issue("A").ticket
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root)}
    argv = [str(one.cfg.path), str(one.ledger.path), central.url, one.token]
    child = subprocess.Popen([sys.executable, "-c", CHILD, *argv], env=env, cwd=root)
    try:

        def pending():
            rows = one.ledger.query("SELECT display FROM tickets WHERE print_state = 'pending'")
            return [r["display"] for r in rows]

        assert wait_until(lambda: pending() or child.poll() is not None, timeout=20), "the child never issued"
        assert child.poll() is None, "the child ended by itself"
        (lost,) = pending()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    assert sorted(central.callable_tickets()) == sorted([kept.display, lost])  # the ghost, before the restart
    again = TicketService(one.cfg, one.ledger, client=one.client, printer=one.worker, now=service_time)
    (row,) = one.ledger.query("SELECT id FROM tickets WHERE display = ?", (lost,))
    assert again.get(row["id"]).print_state == "failed"
    deliver(one, central)
    assert central.callable_tickets() == [kept.display]
    assert [e["body"]["display"] for e in central.events("ticket.abandoned")] == [lost]


def test_a_trickling_central_costs_a_citizen_online_timeout_and_blocks_nobody(central, device):
    from concurrent.futures import ThreadPoolExecutor

    one = device("disp-1", online_timeout=0.5)
    # the whole answer comes, a byte every 0.1 s: each read gets data well inside any read timeout
    central.inject("trickle", delay=0.1, path="/api/v1/tickets")
    with ThreadPoolExecutor(1) as pool:
        start = time.monotonic()
        first = pool.submit(one.svc.issue, "A")
        assert wait_until(lambda: central.busy() >= 1)  # the first citizen's request is with the central
        second = one.svc.issue("B")  # another citizen meanwhile: not behind the first one's wait
        assert not first.done() and second.ticket.source == "online"
        r = first.result(timeout=5)
        took = time.monotonic() - start
    assert r.ticket.source == "offline" and r.printed
    assert took < 0.5 + 0.4, f"the citizen waited {took:.2f} s with online_timeout 0.5"
    assert "within 0.5 s" in (one.svc.status()["last_central_error"] or "")
    deliver(one, central)  # the trickled ticket is voided like any lost answer
    assert sorted(central.callable_tickets()) == sorted([r.ticket.display, second.ticket.display])


def test_the_first_ticket_of_the_day_is_001_after_leases_and_they_never_meet(central, device):
    one, two = device("disp-1", lease_size=20), device("disp-2", lease_size=20)
    one.svc.refresh()
    two.svc.refresh()  # both dispensers lease at start, before any citizen
    assert two.svc.issue("A").ticket.display == "A001"
    assert one.svc.issue("A").ticket.display == "A002"
    leases = sorted((x["first"], x["last"]) for x in central.store.leases() if x["series"] == "A")
    assert leases == [(860, 879), (880, 899)]
    # online and leased numbers meet and refuse rather than overlap (B: 1..25, a block of 20 from the top)
    central.store.today = lambda: "2026-03-05"  # a fresh day for the store's own numbering
    cats = central.store.device_config()[0]["categories"]
    central.store.update_device_config(categories=[{**c, "number_max": 25} if c["code"] == "B" else c for c in cats])
    lease, _ = central.store.lease("disp-1", "B", 20)
    assert (lease["first"], lease["last"]) == (6, 25)
    online = [central.store.issue_ticket("disp-2", f"r{i}", "B")[0]["number"] for i in range(5)]
    assert online == [1, 2, 3, 4, 5]
    for refused in (
        lambda: central.store.issue_ticket("disp-2", "r5", "B"),
        lambda: central.store.lease("disp-1", "B", 1),
    ):
        with pytest.raises(StoreError, match="used up"):
            refused()


def test_a_hung_central_sends_the_dispenser_offline_at_once_and_a_probe_brings_it_back(central, device):
    """A central that accepts connections and never answers: after a few tickets that wait out
    online_timeout, the next ones are numbered offline at once; when it answers again, a probe
    puts the device back online, and every number the central holds is one a citizen has."""
    one = device("disp-1", online_timeout=0.4)
    one.client.breaker.probe_every = 0.2
    central.inject("hang", count=10_000, delay=1.5)
    slow = []
    for _ in range(one.client.breaker.threshold):
        start = time.monotonic()
        r = one.svc.issue("A")
        slow.append(time.monotonic() - start)
        assert r.ticket.source == "offline"
    assert min(slow) >= 0.35 and one.client.breaker.open
    fast = []
    for _ in range(5):
        start = time.monotonic()
        r = one.svc.issue("A")
        fast.append(time.monotonic() - start)
        assert r.ticket.source == "offline" and r.printed
    # Not sent at all: far from online_timeout even on a loaded machine (bench/hung_central.py has the figures).
    assert max(fast) < 0.2, f"offline tickets took {fast} with the breaker open"
    assert "CentralOffline" in (one.svc.status()["last_central_error"] or "")
    central.clear_faults()
    assert wait_until(lambda: not one.client.breaker.open, timeout=10)
    assert one.client.breaker.probes >= 1
    assert one.svc.issue("A").ticket.source == "online"
    deliver(one, central, settle_first=True)  # the abandoned requests are voided at the central
    mine = [t.display for t in one.svc.tickets()]
    assert sorted(central.callable_tickets()) == sorted(mine)

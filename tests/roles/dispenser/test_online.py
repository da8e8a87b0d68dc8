"""Hall-wide numbering against the bench central on loopback (real HTTP, no mocks)."""

from __future__ import annotations

import json
import time

import pytest

from devices.printer import PrinterWorker, SimBackend, TicketPrinter
from kiosk.core import keys
from kiosk.core.config import load_config
from kiosk.core.ledger import Ledger
from kiosk.roles.dispenser.service import TicketService
from kiosk.sync.client import CentralClient
from tests.helpers import service_time, write_config


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
        self.client = CentralClient(central.url, central.issue_token(name), connect_timeout=0.5, read_timeout=3)
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
    # meanwhile the other dispenser keeps numbering online, after the leased block
    assert two.svc.issue("A").ticket.display == "A005"
    central.stop()
    got = [one.svc.issue("A").ticket for _ in range(5)]
    assert [t.display for t in got] == ["A002", "A003", "A004", "A900", "A901"]
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
    assert bodies == [{"request_id": "r-crashed", "category": "A", "priority": False}]
    assert again.issue("A").ticket.display == "A001"

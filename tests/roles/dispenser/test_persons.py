"""Tickets by ID card within the per-person rules, end to end against the bench central on loopback.

Cards come through the real desk (kiosk/roles/dispenser/persons.py) from the
simulated reader or, in the last test, from the serial backend talking to the
emulated GA/T 467 reader on a pty.
"""

from __future__ import annotations

import os
import queue

import pytest

from devices.idcard import SerialIdCardReader, SimIdCardReader
from devices.printer import PrinterWorker, SimBackend, TicketPrinter
from kiosk.core import keys
from kiosk.core.config import load_config
from kiosk.core.ledger import Ledger
from kiosk.core.privacy import person_key
from kiosk.roles.dispenser.persons import IdCardDesk
from kiosk.roles.dispenser.service import PersonDailyLimit, PersonHasTicket, TicketService
from kiosk.sync.client import CentralClient
from kiosk.sync.outbox import OutboxUploader
from tests.helpers import refused_url, service_time, wait_until, write_config
from tests.idcard_emulator import ID_NUMBER, NAME, IdCardReaderEmulator

HALL_KEY = "8f" * 32
OTHER_ID = "32010219851231002X"


def hall_key_file(d) -> str:
    path = d / "hall.key"
    path.write_text(HALL_KEY + "\n")
    os.chmod(path, 0o600)
    return str(path)


class Device:
    """One dispenser: its ledger, a simulated printer, a client of the bench central (or none), a desk."""

    def __init__(self, tmp_path, central, name, *, online=True, daily_max=3):
        d = tmp_path / name
        d.mkdir()
        changes = {
            "device": {"id": name},
            "dispenser": {"open_days": [1, 2, 3, 4, 5, 6, 7], "open_hours": ["00:00-23:59"], "lease_size": 0},
            "idcard": {"backend": "sim", "hall_key_file": hall_key_file(d), "daily_max": daily_max},
        }
        if not online:
            changes["central"] = {"url": refused_url(), "allow_http": True}
        self.cfg = load_config(write_config(d, changes))
        self.ledger = Ledger(d / keys.LEDGER_FILE)
        self.sim = SimBackend()
        self.worker = PrinterWorker(TicketPrinter(self.sim)).start()
        url = central.url if online else refused_url()
        self.client = CentralClient(url, central.issue_token(name), connect_timeout=0.5, read_timeout=3)
        self.svc = TicketService(self.cfg, self.ledger, client=self.client, printer=self.worker, now=service_time)
        self.news: queue.Queue = queue.Queue()
        self.desk = IdCardDesk(self.cfg.idcard.read_hall_key, self.svc)
        self.desk.listeners.append(self.news.put)
        self.desk.start()
        self.reader = SimIdCardReader(self.desk.offer)

    def card(self, name=NAME, number=ID_NUMBER):
        """Place a card and wait for what the screen would be told."""
        self.reader.present(name, number)
        return self.news.get(timeout=10)

    def upload(self, central):
        """The central is back: the device's outbox goes up (as the sync worker would send it)."""
        client = CentralClient(central.url, central.issue_token(self.cfg.device.id), connect_timeout=0.5)
        try:
            result = OutboxUploader(self.ledger, client, self.cfg.device.id).upload()
            assert result.rejected == 0
        finally:
            client.close()

    def close(self):
        self.desk.stop()
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


PERSON = person_key(HALL_KEY.encode(), ID_NUMBER)


def test_one_open_ticket_per_service_hall_wide_and_reprint_instead(central, device):
    one, two = device("disp-1"), device("disp-2")
    news = one.card()
    assert news.kind == "card"
    st = news.standing
    assert st.online and st.holdings == [] and st.citizen.masked_id == "110***********1236"
    assert st.citizen.masked_name == "林*岚"
    first = one.svc.issue("A", person=st.citizen.person).ticket
    assert first.display == "A001" and first.person == PERSON

    # The same card at another dispenser: the central's list shows the ticket held.
    st2 = two.card().standing
    held = st2.open_for("A")
    assert held is not None and held.display == "A001" and held.device_id == "disp-1" and held.ticket_id is None
    with pytest.raises(PersonHasTicket) as refused:
        two.svc.issue("A", person=st2.citizen.person)
    assert refused.value.holding.display == "A001"
    assert [t["display"] for t in central.store.tickets()] == ["A001"]  # no second number anywhere

    # ... and is offered the reprint there, marked 补打 / REPRINT, without a new number.
    jobs = len(two.sim.jobs)
    result = two.svc.reprint_holding(held)
    assert result.printed
    slip = two.sim.jobs[jobs]
    assert b"A001" in slip and "补打".encode("gb18030") in slip and b"REPRINT" in slip
    # At the dispenser that issued it, the reprint comes from its own ledger.
    mine = one.card().standing.open_for("A")
    assert mine.ticket_id == first.id
    assert one.svc.reprint_holding(mine).ticket.print_count == 2

    # Another service is a ticket of its own.
    assert two.svc.issue("B", person=st2.citizen.person).ticket.display == "B001"


def test_a_called_ticket_is_no_longer_open(central, device):
    one = device("disp-1")
    person = one.card().standing.citizen.person
    one.svc.issue("A", person=person)
    central.store.call_next("01")  # window 01 serves category A in the seed
    st = one.card().standing
    assert st.open_for("A") is None and st.taken == 1
    assert one.svc.issue("A", person=person).ticket.display == "A002"


def test_daily_limit_from_the_central_overrides_the_file(central, device):
    central.store.update_device_config(person_limits={"daily_max": 2})
    one, two = device("disp-1", daily_max=5), device("disp-2", daily_max=5)
    person = one.card().standing.citizen.person
    one.svc.issue("A", person=person)
    two.svc.issue("B", person=person)
    st = two.card().standing
    assert st.daily_max == 2 and st.at_limit
    with pytest.raises(PersonDailyLimit):
        one.svc.issue("C", person=person)
    # Someone else is not limited by it.
    other = one.card(number=OTHER_ID).standing.citizen.person
    assert other != person
    assert one.svc.issue("C", person=other).ticket.display == "C001"


def test_the_central_enforces_by_person_itself(central):
    # A device that skipped its own check (or raced another) still gets no second number.
    client = CentralClient(central.url, central.issue_token("disp-x"), connect_timeout=0.5, read_timeout=3)
    try:
        client.issue_ticket("A", "r1", person=PERSON)
        with pytest.raises(Exception) as e:
            client.issue_ticket("A", "r2", person=PERSON)
        assert e.value.code == "person_has_ticket" and e.value.body["tickets"][0]["display"] == "A001"
        again = client.issue_ticket("A", "r1", person=PERSON)  # a resend of the first is the same ticket
        assert again["display"] == "A001"
    finally:
        client.close()


def test_offline_per_device_from_its_ledger_then_reconciled(central, device):
    off = device("disp-off", online=False, daily_max=2)
    news = off.card()
    assert not news.standing.online
    person = news.standing.citizen.person
    t = off.svc.issue("A", person=person).ticket
    assert t.offline and t.person == person
    with pytest.raises(PersonHasTicket) as held:
        off.svc.issue("A", person=person)
    assert held.value.holding.ticket_id == t.id  # reprintable from this ledger
    off.svc.issue("B", person=person)
    with pytest.raises(PersonDailyLimit):
        off.svc.issue("C", person=person)

    # A second device, also offline, knows nothing of the first and issues A again.
    off2 = device("disp-off2", online=False)
    off2.svc.issue("A", person=off2.card().standing.citizen.person)

    # The central returns: the offline tickets arrive with the person, the hall-wide count is whole.
    off.upload(central)
    off2.upload(central)
    mine = central.store.person_tickets(PERSON)["tickets"]
    assert sorted(x["device_id"] for x in mine) == ["disp-off", "disp-off", "disp-off2"]
    conflicts = central.store.person_conflicts()
    assert [(c["device_id"], c["why"]) for c in conflicts] == [("disp-off2", "person_has_ticket")]
    # Online now, the citizen is refused hall-wide from those tickets.
    on = device("disp-on")
    with pytest.raises(PersonHasTicket):
        on.svc.issue("A", person=on.card().standing.citizen.person)


def test_a_central_that_fails_mid_check_falls_back_to_the_ledger(central, device):
    one = device("disp-1")
    person = one.card().standing.citizen.person
    one.svc.issue("A", person=person)
    central.inject("error", status=503, path=f"/api/v1/persons/{PERSON}/tickets")
    st = one.card().standing
    assert not st.online and st.open_for("A") is not None  # this device's own ticket still counts


def test_bad_reads_and_a_missing_key_are_plain_news(tmp_path, central, device):
    one = device("disp-1")
    one.reader.fail("bad_frame")
    assert one.news.get(timeout=5).kind == "bad_read"
    one.reader.fail("not_answering")
    assert one.news.get(timeout=5).kind == "reader_down"
    assert one.card(number="12345").kind == "bad_read"  # not an ID number: a misread
    os.chmod(one.cfg.idcard.hall_key_file, 0o644)  # the key file made readable to others: refused
    assert one.card().kind == "unavailable"
    assert one.ledger.query("SELECT COUNT(*) FROM tickets")[0][0] == 0


def test_card_through_the_serial_reader_to_a_ticket(tmp_path, central, device):
    one = device("disp-1")
    emu = IdCardReaderEmulator(tmp_path / "kiosk-idcard")
    reader = SerialIdCardReader(str(emu.link), one.desk.offer, poll_interval=0.3, answer_timeout=0.5).start()
    try:
        assert one.news.get(timeout=5).kind == "reader_up"
        emu.place()
        news = one.news.get(timeout=5)
        assert news.kind == "card" and news.standing.citizen.person == PERSON
        assert one.svc.issue("A", person=news.standing.citizen.person).ticket.display == "A001"
        emu.silent = True  # the reader stops answering: said once, the dispenser goes on
        assert one.news.get(timeout=5).kind == "reader_down"
        assert one.svc.issue("B").ticket.display == "B001"
        emu.silent = False
        emu.lift()
        emu.place()
        assert wait_until(lambda: reader.answering is True, 5)
        news = one.news.get(timeout=5)
        assert news.kind == "card" and news.standing.open_for("A") is not None
    finally:
        reader.close()
        emu.unplug()

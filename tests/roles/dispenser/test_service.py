"""TicketService: numbering rules and printer faults, with the printer on a real pty pair."""

from __future__ import annotations

import fcntl
import json
import os
import struct
import termios
import time
from datetime import datetime

import pytest

from devices.preview import interpret
from kiosk.core import keys
from kiosk.core.config import load_config
from kiosk.core.ledger import Ledger
from kiosk.roles.dispenser.service import DispenserClosed, NumbersExhausted, PaperOut, PrinterUnavailable, TicketService
from kiosk.wiring import build_printer
from tests.devices.conftest import PtyDevice
from tests.helpers import printer_font, service_time, write_config

OK = 0x12  # DLE EOT answer: online, paper ok
NEAR_END = 0x1E  # bits 2-3: paper near end
OUT = 0x72  # bits 5-6: paper out


class Clock:
    """A settable wall clock for the service (monotonic timers are not involved)."""

    def __init__(self, start: datetime):
        self.t = start

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture
def devices():
    made = []

    def make(**kw):
        d = PtyDevice(**kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.unplug()


def build(tmp_path, port, clock=None, mono=None, **dispenser):
    cfg = load_config(
        write_config(
            tmp_path,
            {
                "printer": {"backend": "serial", "port": str(port), "status_timeout": 0.3},
                "dispenser": {"offline_range": [900, 999], **dispenser},
            },
        )
    )
    ledger = Ledger(tmp_path / "data" / keys.LEDGER_FILE)
    worker = build_printer(cfg).start()
    extra = {"mono": mono} if mono is not None else {}
    svc = TicketService(cfg, ledger, printer=worker, now=clock or service_time, **extra)
    return svc, worker, ledger


def printed_tickets(data: bytes) -> list[list[str]]:
    """Text lines of each ticket (split at the cuts) as the printer would print them."""
    tickets: list[list[str]] = []
    for chunk in data.split(b"\x1dV"):
        if chunk.strip(b"\x00\x01"):
            lines = interpret(chunk, font_path=printer_font()).lines
            if lines:
                tickets.append(lines)
    return tickets


def events(ledger, kind):
    return [json.loads(r["body"]) for r in ledger.query("SELECT body FROM outbox WHERE kind = ? ORDER BY seq", (kind,))]


def test_ticket_bytes_reach_the_serial_printer_and_ledger_first(tmp_path, devices):
    dev = devices(answers={1: OK, 4: OK})
    svc, worker, ledger = build(tmp_path, dev.path)
    try:
        r = svc.issue("A")
        assert r.printed and r.paper == "ok"
        assert r.ticket.display == "A900" and r.ticket.offline and r.ticket.print_state == "printed"
        data = dev.wait_until(lambda b: b.count(b"\x1dV") >= 1) and bytes(dev.received)
        assert data.startswith(b"\x1b@") and data.rstrip(b"\x00\x01").endswith(b"\x1dV")
        assert "社保医保".encode("gb18030") in data  # Chinese as GB18030 text, not raster
        assert b"\x1d(k" in data and b"queue?t=A900" in data  # native QR with the ticket's link
        assert b"\x1dv0" not in data  # no raster image at all
        assert len(data) < 1024
        lines = interpret(data, font_path=printer_font()).lines
        assert "A900" in lines and any("离线票" in ln for ln in lines)
        assert any(svc.cfg.device.hall in ln for ln in lines)
        # The ticket and its event were committed before the print: both are there.
        issued = events(ledger, "ticket.issued")
        assert [e["display"] for e in issued] == ["A900"] and issued[0]["source"] == "offline"
        assert dev.queries[:2] == [1, 4]  # paper checked before printing
    finally:
        worker.close()


def test_offline_numbers_come_from_the_lease_then_the_offline_range(tmp_path, devices):
    dev = devices(answers={1: OK, 4: OK})
    svc, worker, _ledger = build(tmp_path, dev.path)
    try:
        today = svc.today()
        svc.add_lease({"lease_id": "L1", "first": 41, "last": 43, "day": today, "prefix": "A"}, "A")
        shown = [svc.issue("A").ticket for _ in range(5)]
        assert [t.display for t in shown] == ["A041", "A042", "A043", "A900", "A901"]
        assert [t.source for t in shown] == ["lease"] * 3 + ["offline"] * 2
        # a block leased for another day is of no use (numbers reset at midnight)
        svc.add_lease({"lease_id": "L0", "first": 1, "last": 9, "day": "2000-01-01"}, "B")
        assert svc.issue("B").ticket.display == "B900"
        # priority tickets have their own series and prefix
        assert svc.issue("A", priority=True).ticket.display == "V900"
        assert svc.issue("B", priority=True).ticket.display == "V901"
    finally:
        worker.close()


def test_offline_range_used_up_refuses_without_a_number(tmp_path, devices):
    dev = devices(answers={1: OK, 4: OK})
    svc, worker, _ledger = build(tmp_path, dev.path, offline_range=[7, 8])
    try:
        assert [svc.issue("C").ticket.display for _ in range(2)] == ["C007", "C008"]
        with pytest.raises(NumbersExhausted):
            svc.issue("C")
        assert len(svc.tickets()) == 2
    finally:
        worker.close()


def test_numbers_reset_at_local_midnight_and_survive_restart(tmp_path, devices):
    dev = devices(answers={1: OK, 4: OK})
    clock = Clock(datetime(2026, 3, 2, 23, 58))
    svc, worker, ledger = build(tmp_path, dev.path, clock, open_hours=["00:00-23:59"], open_days=[1, 2, 3, 4, 5, 6, 7])
    try:
        assert [svc.issue("A").ticket.display for _ in range(2)] == ["A900", "A901"]
        # a restart (new service on the same ledger) continues the day
        svc2 = TicketService(svc.cfg, Ledger(ledger.path), printer=worker, now=clock)
        assert svc2.issue("A").ticket.display == "A902"
        clock.t = datetime(2026, 3, 3, 0, 1)
        t = svc2.issue("A").ticket
        assert (t.day, t.display) == ("2026-03-03", "A900")
    finally:
        worker.close()


def test_clock_jumping_back_never_reuses_a_number(tmp_path, devices):
    dev = devices(answers={1: OK, 4: OK})
    clock = Clock(datetime(2026, 3, 3, 10, 0))
    svc, worker, ledger = build(tmp_path, dev.path, clock, open_hours=["00:00-23:59"], open_days=[1, 2, 3, 4, 5, 6, 7])
    try:
        seen = [svc.issue("A").ticket for _ in range(3)]
        clock.t = datetime(2026, 3, 3, 9, 0)  # back one hour, same day
        seen.append(svc.issue("A").ticket)
        clock.t = datetime(2026, 3, 2, 16, 0)  # back to yesterday: the day does not go back
        seen.append(svc.issue("A").ticket)
        assert svc.status()["clock_behind"] == "2026-03-03"
        mono = Mono()
        svc3 = TicketService(svc.cfg, Ledger(ledger.path), printer=worker, now=clock, mono=mono)  # and after a restart
        seen.append(svc3.issue("A").ticket)
        assert {t.day for t in seen} == {"2026-03-03"}
        assert [t.display for t in seen] == ["A900", "A901", "A902", "A903", "A904", "A905"]
        clock.t = datetime(2026, 3, 4, 8, 0)  # the real next day (the monotonic clock agrees) resets
        mono.t += 16 * 3600
        assert svc3.issue("A").ticket.display == "A900"
        assert svc3.status()["clock_behind"] is None
    finally:
        worker.close()


def test_closed_outside_opening_hours(tmp_path, devices):
    dev = devices(answers={1: OK, 4: OK})
    clock = Clock(datetime(2026, 3, 7, 10, 0))  # a Saturday
    svc, worker, _ledger = build(tmp_path, dev.path, clock, open_days=[1, 2, 3, 4, 5], open_hours=["08:30-12:00"])
    try:
        assert not svc.is_open()
        with pytest.raises(DispenserClosed):
            svc.issue("A")
        clock.t = datetime(2026, 3, 9, 12, 0)  # Monday, just after closing
        assert not svc.is_open()
        clock.t = datetime(2026, 3, 9, 11, 59)
        assert svc.is_open() and svc.issue("A").printed
        # the central config's hours win over the file once fetched
        svc.cache = _DictCache({keys.CENTRAL_CONFIG: {"opening_hours": {"days": [1], "hours": ["13:00-14:00"]}}})
        assert not svc.is_open()
    finally:
        worker.close()


class _DictCache:
    def __init__(self, d):
        self.d = d

    def get(self, k, default=None):
        return self.d.get(k, default)

    def set(self, k, v):
        self.d[k] = v


def test_categories_from_central_config_else_file(tmp_path, devices):
    dev = devices(answers={1: OK, 4: OK})
    svc, worker, _ledger = build(tmp_path, dev.path)
    try:
        assert [c.code for c in svc.categories()] == ["A", "B", "C", "D"]
        svc.cache = _DictCache(
            {
                keys.CENTRAL_CONFIG: {
                    "categories": [{"code": "K", "prefix": "K", "name_zh": "税务", "name_en": "Tax"}]
                },
                keys.QUEUE_STATUS: {
                    "day": svc.today(),
                    "categories": [{"category": "K", "waiting": 4, "est_wait_s": 600}],
                },
            }
        )
        (k,) = svc.categories()
        assert (k.code, k.name_zh, k.waiting, k.est_wait_s) == ("K", "税务", 4, 600)
        assert svc.issue("K").ticket.display == "K900"
    finally:
        worker.close()


def test_paper_out_consumes_no_number(tmp_path, devices):
    dev = devices(answers={1: OK, 4: OUT})
    svc, worker, ledger = build(tmp_path, dev.path)
    try:
        with pytest.raises(PaperOut):
            svc.issue("A")
        assert svc.tickets() == [] and dev.received == bytearray()
        assert events(ledger, "printer.paper_state")[-1]["state"] == "out"
        dev.answers[4] = OK  # a new roll
        assert svc.issue("A").ticket.display == "A900"  # the number was not used up
    finally:
        worker.close()


def test_paper_near_end_issues_and_warns_technicians(tmp_path, devices):
    dev = devices(answers={1: OK, 4: NEAR_END})
    svc, worker, ledger = build(tmp_path, dev.path)
    try:
        r = svc.issue("A")
        assert r.printed and r.paper == "near_end"
        assert svc.status()["paper"] == "near_end"
        assert events(ledger, "printer.paper_state")[-1]["state"] == "near_end"
        svc.issue("A")
        assert len(events(ledger, "printer.paper_state")) == 1  # one warning per change, not per ticket
    finally:
        worker.close()


def test_printer_that_does_not_answer_is_unknown_not_paper_out(tmp_path, devices):
    dev = devices(answers={})  # takes bytes, never answers DLE EOT
    svc, worker, ledger = build(tmp_path, dev.path)
    try:
        r = svc.issue("A")
        assert r.paper == "unknown" and r.printed
        assert dev.wait_until(lambda b: b"\x1dV" in b)
        assert events(ledger, "printer.paper_state")[-1]["state"] == "unknown"
    finally:
        worker.close()


def test_unplugged_printer_refuses_then_is_used_again_after_replug(tmp_path, devices):
    link = tmp_path / "kiosk-printer"
    first = devices(answers={1: OK, 4: OK})
    os.symlink(first.path, link)
    svc, worker, _ledger = build(tmp_path, link)
    try:
        assert svc.issue("A").printed
        first.unplug()
        # Unplugged: refused with nothing consumed when the status check sees it;
        # if the port dies between check and print, the ticket is kept as failed.
        try:
            r = svc.issue("A")
        except PrinterUnavailable:
            missed = []
        else:
            assert not r.printed and r.ticket.print_state == "failed"
            missed = [r.ticket]
        with pytest.raises(PrinterUnavailable):
            svc.issue("A")  # the port is known gone now: refused
        assert len(svc.tickets()) == 1 + len(missed)
        second = devices(answers={1: OK, 4: OK})
        os.unlink(link)
        os.symlink(second.path, link)  # udev points the name at the new tty
        r = svc.issue("A")
        expected = f"A{901 + len(missed)}"
        assert r.printed and r.ticket.display == expected
        assert second.wait_until(lambda b: expected.encode() in b)
    finally:
        worker.close()


class HangUpAfterStatus(PtyDevice):
    """A printer that answers the paper check and then loses its cable before the ticket."""

    def _take(self, data):
        super()._take(data)
        if 4 in self.queries and not getattr(self, "_gone", False):
            self._gone = True
            # Hang up only once the paper answer has been read on the kiosk side
            # (nothing left in the slave's input queue), so the check sees "ok".
            deadline = time.monotonic() + 2
            while (
                struct.unpack("i", fcntl.ioctl(self.slave, termios.FIONREAD, b"\0\0\0\0"))[0]
                and time.monotonic() < deadline
            ):
                time.sleep(0.0005)
            self._stop.set()
            for fd in (self.master, self.slave):
                os.close(fd)
            self.master = self.slave = -1


def test_print_failure_keeps_the_ticket_and_reprint_says_reprint(tmp_path, devices):
    link = tmp_path / "kiosk-printer"
    svc, worker, ledger = build(tmp_path, tmp_path / "unplugged")
    try:
        # The cable goes between the paper check and the print. That moment is a
        # race with the kernel, so a lost race (refused, or printed before the
        # hang-up) is simply tried again with a new device.
        failed = None
        for _ in range(20):
            dying = HangUpAfterStatus(answers={1: OK, 4: OK})
            if link.exists() or link.is_symlink():
                os.unlink(link)
            os.symlink(dying.path, link)
            svc.cfg.printer.port = str(link)
            worker.printer.backend.port = str(link)
            worker.printer.backend._drop()
            try:
                r = svc.issue("B")
            except PrinterUnavailable:
                continue
            if not r.printed:
                failed = r
                break
        assert failed is not None, "the print never failed"
        r = failed
        assert r.print_error and r.ticket.print_state == "failed"
        issued = [e["display"] for e in events(ledger, "ticket.issued")]
        assert issued[-1] == r.ticket.display  # kept, with its event
        fresh = devices(answers={1: OK, 4: OK})
        os.unlink(link)
        os.symlink(fresh.path, link)
        again = svc.reprint(r.ticket.id)
        assert again.printed and again.ticket.print_state == "printed" and again.ticket.print_count == 1
        assert fresh.wait_until(lambda b: b"\x1dV" in b)
        lines = interpret(bytes(fresh.received), font_path=printer_font()).lines
        assert any("REPRINT" in ln and "补打" in ln for ln in lines) and r.ticket.display in lines
        assert len(svc.tickets()) == len(issued)  # a reprint is not a new number
    finally:
        worker.close()


def test_failure_midway_through_a_ticket_on_the_sim_printer(tmp_path):
    from devices.printer import PrinterWorker, SimBackend, TicketPrinter

    cfg = load_config(write_config(tmp_path))
    ledger = Ledger(tmp_path / "l.sqlite3")
    sim = SimBackend()
    worker = PrinterWorker(TicketPrinter(sim)).start()
    try:
        svc = TicketService(cfg, ledger, printer=worker, now=service_time)
        sim.fail_after(120)
        r = svc.issue("A")
        assert not r.printed and len(sim.received) == 120 and r.ticket.print_state == "failed"
        r2 = svc.reprint(r.ticket.id)
        assert r2.printed and b"REPRINT" in sim.jobs[-1]
    finally:
        worker.close()


def test_paper_running_out_mid_ticket_is_a_failed_ticket_offered_for_reprint(tmp_path, devices):
    # The check before issuing says "ok"; the roll ends 100 bytes into the ticket.
    dev = devices(answers={1: OK, 4: OK}, paper_out_after=100)
    svc, worker, ledger = build(tmp_path, dev.path)
    try:
        r = svc.issue("A")
        assert not r.printed and r.ticket.print_state == "failed"
        assert "paper out" in r.print_error and "reprint" in r.print_error
        assert [e["display"] for e in events(ledger, "ticket.issued")] == [r.ticket.display]  # kept
        dev.paper_out_after = None
        dev.answers = {1: OK, 4: OK}  # a new roll
        again = svc.reprint(r.ticket.id)
        assert again.printed and again.ticket.print_state == "printed"
    finally:
        worker.close()


def test_unknown_status_refuses_when_the_hall_chose_so(tmp_path, devices):
    dev = devices(answers={})  # a printer that never answers DLE EOT
    svc, worker, _ = build(tmp_path, dev.path)
    svc.cfg.printer.on_unknown_status = "refuse"
    try:
        with pytest.raises(PrinterUnavailable, match="did not answer"):
            svc.issue("A")
        assert svc.tickets() == [] and dev.received == bytearray()  # no number used, nothing printed
    finally:
        worker.close()


# -- the hall's time (issue 15.7) ------------------------------------------------------


def test_opening_hours_are_judged_in_the_halls_zone_not_the_hosts(tmp_path, devices):
    from datetime import UTC

    dev = devices(answers={1: OK, 4: OK})
    # 08:20 UTC is 16:20 in Shanghai: inside 13:30-17:30, whatever the host's zone says.
    clock, mono = Clock(datetime(2026, 3, 3, 8, 20, tzinfo=UTC)), Mono()
    svc, worker, _ledger = build(
        tmp_path, dev.path, clock, mono=mono, open_hours=["13:30-17:30"], open_days=[1, 2, 3, 4, 5]
    )
    try:
        assert svc.is_open() is True
        assert svc.hall_time().strftime("%H:%M") == "16:20"
        # The central's opening_hours.timezone wins: 08:20 in London is outside 13:30-17:30.
        svc.cache = _central_cache(tmp_path, {"timezone": "Europe/London", "days": [2], "hours": ["13:30-17:30"]})
        assert svc.is_open() is False
        svc.cache = None
        clock.t, mono.t = datetime(2026, 3, 3, 15, 59, tzinfo=UTC), mono.t + 7 * 3600 + 39 * 60  # 23:59 in Shanghai
        assert svc.today() == "2026-03-03"
        clock.t, mono.t = datetime(2026, 3, 3, 16, 1, tzinfo=UTC), mono.t + 120  # 00:01: the hall's midnight
        assert svc.today() == "2026-03-04"
    finally:
        worker.close()


def _central_cache(tmp_path, opening_hours):
    from kiosk.core.cache import Cache

    cache = Cache(tmp_path / "central-cache.sqlite")
    cache.set(keys.CENTRAL_CONFIG, {"opening_hours": opening_hours})
    return cache


class Mono:
    def __init__(self):
        self.t = 5000.0

    def __call__(self):
        return self.t


def test_a_wall_clock_jumping_a_day_ahead_and_back_never_prints_a_number_twice(tmp_path, devices):
    dev = devices(answers={1: OK, 4: OK})
    clock, mono = Clock(datetime(2026, 3, 3, 10, 0)), Mono()
    svc, worker, _ledger = build(tmp_path, dev.path, clock, open_hours=["00:00-23:59"], open_days=[1, 2, 3, 4, 5, 6, 7])
    svc.mono = mono
    try:
        seen = [svc.issue("A").ticket for _ in range(2)]  # A900, A901
        clock.t, mono.t = datetime(2026, 3, 4, 10, 1), mono.t + 60  # the wall jumps a day; a minute passed
        seen.append(svc.issue("A").ticket)
        assert svc.status()["day"] == "2026-03-03"
        clock.t, mono.t = datetime(2026, 3, 3, 10, 2), mono.t + 60  # and back
        seen.append(svc.issue("A").ticket)
        assert [t.display for t in seen] == ["A900", "A901", "A902", "A903"]
        assert {t.day for t in seen} == {"2026-03-03"}
        # The real next day (the monotonic clock agrees) resets.
        clock.t, mono.t = datetime(2026, 3, 4, 8, 0), mono.t + 22 * 3600
        t = svc.issue("A").ticket
        assert (t.day, t.display) == ("2026-03-04", "A900")
    finally:
        worker.close()


def test_a_wall_clock_ahead_before_the_first_ticket_of_the_boot_is_not_trusted(tmp_path, devices):
    """The day is anchored when the dispenser starts, not at its first ticket: a
    clock that jumps a day ahead after a reboot, before any citizen came, must not
    start the next day's numbers (A900 again) on the same real day."""
    dev = devices(answers={1: OK, 4: OK})
    clock, mono = Clock(datetime(2026, 3, 3, 9, 0)), Mono()
    hours = {"open_hours": ["00:00-23:59"], "open_days": [1, 2, 3, 4, 5, 6, 7]}
    svc, worker, ledger = build(tmp_path, dev.path, clock, mono=mono, **hours)
    try:
        assert svc.issue("A").ticket.display == "A900"
        ledger.boot_id = "the-next-boot"  # the device reboots at 09:30 with its clock right ...
        clock.t, mono.t = datetime(2026, 3, 3, 9, 30), 20.0
        # (an NTP-synchronised clock: only such a clock is anchored at start)
        again = TicketService(svc.cfg, ledger, printer=worker, now=clock, mono=mono, synced=lambda: True)
        clock.t, mono.t = datetime(2026, 3, 4, 9, 31), 80.0  # ... then the wall jumps a day, before any ticket
        t = again.issue("A").ticket
        assert (t.day, t.display) == ("2026-03-03", "A901"), "the jump started a new day's numbers"
    finally:
        worker.close()


def test_a_pi_booting_on_yesterdays_saved_time_follows_ntp_to_today(tmp_path, devices):
    """No RTC: the Pi boots on the time saved at last night's shutdown, unsynchronised,
    and NTP steps it to this morning before or after the first ticket. The step is
    the correction, not a jump: today's numbers start at A900, dated today."""
    dev = devices(answers={1: OK, 4: OK})
    clock, mono, synced = Clock(datetime(2026, 3, 3, 18, 0)), Mono(), [False]
    hours = {"open_hours": ["00:00-23:59"], "open_days": [1, 2, 3, 4, 5, 6, 7]}
    svc, worker, ledger = build(tmp_path, dev.path, clock, mono=mono, **hours)
    svc.synced = lambda: synced[0]
    try:
        assert svc.issue("A").ticket.display == "A900"  # yesterday evening, synchronised then
        ledger.boot_id = "the-next-morning"  # shut down; boots on the saved 18:01
        clock.t, mono.t = datetime(2026, 3, 3, 18, 1), 10.0
        again = TicketService(svc.cfg, ledger, printer=worker, now=clock, mono=mono, synced=lambda: synced[0])
        early = again.issue("A").ticket  # a citizen before NTP answers: the clock says yesterday
        assert (early.day, early.display) == ("2026-03-03", "A901")
        clock.t, mono.t, synced[0] = datetime(2026, 3, 4, 8, 30), 40.0, True  # NTP steps the clock forward
        t = again.issue("A").ticket
        assert (t.day, t.display) == ("2026-03-04", "A900"), "the NTP correction was taken for a jump"
        # Once synchronised, a jump is a jump again.
        clock.t, mono.t = datetime(2026, 3, 5, 8, 31), 100.0
        assert again.issue("A").ticket.day == "2026-03-04"
    finally:
        worker.close()


def test_records_carry_the_halls_offset_on_a_utc_host():
    from kiosk.core.time import hall_now, set_hall_zone, wall_now

    set_hall_zone("Asia/Shanghai")
    assert wall_now().endswith("+08:00") and hall_now().utcoffset().total_seconds() == 8 * 3600


def test_an_unknown_time_zone_is_a_config_error(tmp_path):
    from kiosk.core.config import ConfigError

    with pytest.raises(ConfigError) as e:
        load_config(write_config(tmp_path, {"device": {"timezone": "Asia/Beijing"}}))
    assert "device.timezone" in str(e.value) and "Asia/Shanghai" in str(e.value)


def test_a_clock_set_to_2099_at_one_start_does_not_freeze_the_service_day(tmp_path, devices):
    """A Pi has no RTC: a bad NTP answer or a typo in `date -s` once put the service
    day in 2099, and the day only moves forward, so numbering stayed there for good:
    no midnight reset, and the offline range used up after a few hundred tickets."""
    dev = devices(answers={1: OK, 4: OK})
    clock, mono = Clock(datetime(2099, 6, 1, 10, 0)), Mono()
    hours = {"open_hours": ["00:00-23:59"], "open_days": [1, 2, 3, 4, 5, 6, 7]}
    svc, worker, ledger = build(tmp_path, dev.path, clock, mono=mono, **hours)
    try:
        assert [svc.issue("A").ticket.display for _ in range(2)] == ["A900", "A901"]
        ledger.boot_id = "the-next-boot"  # rebooted with the clock right
        clock.t, mono.t = datetime(2026, 3, 10, 10, 0), 20.0
        again = TicketService(svc.cfg, ledger, printer=worker, now=clock, mono=mono)
        assert again.today() == "2026-03-10"
        t = again.issue("A").ticket
        # back on the real day, and no number printed today is printed again
        assert (t.day, t.display) == ("2026-03-10", "A902")
        clock.t, mono.t = datetime(2026, 3, 11, 8, 0), mono.t + 22 * 3600
        t = again.issue("A").ticket
        assert (t.day, t.display) == ("2026-03-11", "A900")  # midnight resets again
    finally:
        worker.close()


def test_a_clock_in_1970_at_start_keeps_the_service_day(tmp_path, devices):
    dev = devices(answers={1: OK, 4: OK})
    clock, mono = Clock(datetime(2026, 3, 10, 10, 0)), Mono()
    hours = {"open_hours": ["00:00-23:59"], "open_days": [1, 2, 3, 4, 5, 6, 7]}
    svc, worker, ledger = build(tmp_path, dev.path, clock, mono=mono, **hours)
    try:
        assert svc.issue("A").ticket.display == "A900"
        ledger.boot_id = "the-next-boot"  # rebooted before network time: 1970
        clock.t, mono.t = datetime(1970, 1, 1, 0, 0, 30), 20.0
        again = TicketService(svc.cfg, ledger, printer=worker, now=clock, mono=mono)
        t = again.issue("A").ticket
        assert (t.day, t.display) == ("2026-03-10", "A901")
    finally:
        worker.close()

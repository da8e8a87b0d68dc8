"""刷身份证取号 on the real app: the ID card reader on a real pty, the bench central on loopback, real taps.

The last test walks the whole flow with a known card and then scans every log
record (unscrubbed, at DEBUG), the ledger files, the cache, the outbox and the
central's database for the raw number, its digit run and the name.
"""

from __future__ import annotations

import logging
import os

import pytest

from kiosk.core import keys
from tests.helpers import AppHarness, refused_url, wait_until, write_config
from tests.idcard_emulator import ID_NUMBER, NAME, IdCardReaderEmulator

HALL_KEY = "3c" * 32


def open_app(tmp_path, central, *, online=True, backend="serial", port="", entries=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    key = tmp_path / "hall.key"
    key.write_text(HALL_KEY)
    os.chmod(key, 0o600)
    changes = {
        "device": {"roles": ["dispenser"], "id": "disp-1"},
        "dispenser": {
            "open_days": [1, 2, 3, 4, 5, 6, 7],
            "open_hours": ["00:00-23:59"],
            "lease_size": 0,
            **({"entries": entries} if entries else {}),
        },
        "idcard": {"backend": backend, "port": port, "hall_key_file": str(key), "answer_timeout": 0.4},
        "central": {"url": central.url if online else refused_url(), "allow_http": True},
    }
    token = central.issue_token("disp-1", ["dispenser"])
    return AppHarness(write_config(tmp_path, changes, token=token))


def tap_text(h, pattern):
    """Tap the widget with this text once it is drawn (service buttons come from a background read)."""

    def shown():
        try:
            return h.find(pattern)
        except LookupError:
            return None

    assert h.wait_until(lambda: shown() is not None, 5), f"{pattern!r} not shown: {h.texts()}"
    h.tap(shown())


@pytest.fixture
def reader(tmp_path):
    emu = IdCardReaderEmulator(tmp_path / "kiosk-idcard")
    yield emu
    emu.unplug()


def test_the_entry_shows_only_with_a_reader(tmp_path, central):
    h = open_app(tmp_path, central, backend="none")
    try:
        screen = h.app.screen("dispenser")
        # Not in the layout at all (the removed widget is only weakly held by ids: look at the tree).
        assert not screen.has_idcard
        assert not [t for t in h.texts(screen) if "刷身份证" in t or "ID card" in t]
        assert not h.app.sm.has_screen("idcard")
    finally:
        h.close()


def test_card_to_ticket_then_the_held_ticket_is_reprinted(tmp_path, central, reader):
    h = open_app(tmp_path, central, port=str(reader.link))
    try:
        disp, idc = h.app.screen("dispenser"), h.app.screen("idcard")
        # The entry on the choice leads to "place your card".
        tap_text(h, "刷身份证取号")
        assert h.app.sm.current == "idcard" and idc.state == "wait"
        h.find("请将身份证放在读卡区")
        reader.place()
        assert h.wait_until(lambda: idc.state == "choose", 8)
        h.pump(3)
        h.find("林\\*岚  110\\*\\*\\*\\*\\*\\*\\*\\*\\*\\*\\*1236")
        h.find("今日已取号 0 / 3 张")
        tap_text(h, "^社保医保")
        assert h.wait_until(lambda: h.app.sm.current == "dispenser" and disp.state == "done", 10)
        h.pump(2)
        h.find("^A001$")
        person = h.rt.dispenser.service.tickets()[0].person
        assert [t["display"] for t in central.store.person_tickets(person)["tickets"]] == ["A001"]
        disp.finish()
        h.pump(2)

        # The same card again, lying on the reader since: not read twice; lifted and placed: read.
        reader.lift()
        reader.place()
        assert h.wait_until(lambda: h.app.sm.current == "idcard" and idc.state == "choose", 8)
        h.pump(3)
        tap_text(h, "已取 A001")
        assert idc.state == "held"
        h.pump(2)
        h.find("您已取过此业务的号")
        tap_text(h, "补打号票")
        assert h.wait_until(lambda: h.app.sm.current == "dispenser" and disp.state == "done", 10)
        svc = h.rt.dispenser.service
        assert [t.display for t in svc.tickets()] == ["A001"] and svc.tickets()[0].print_count == 2
        assert len(central.store.tickets()) == 1  # a reprint, not a second number
    finally:
        h.close()


def test_a_bad_frame_and_a_silent_reader_give_plain_words_and_tickets_go_on(tmp_path, central, reader):
    h = open_app(tmp_path, central, port=str(reader.link))
    try:
        idc = h.app.screen("idcard")
        reader.corrupt = 1
        reader.place()
        assert h.wait_until(lambda: h.app.sm.current == "idcard" and idc.state == "problem", 8)
        h.pump(2)
        h.find("未能读取身份证")
        # the next poll reads the card (the reader has not finished it yet)
        assert h.wait_until(lambda: idc.state == "choose", 8)
        idc.back()
        h.pump(2)
        reader.silent = True
        assert h.wait_until(lambda: h.rt.dispenser.idcard.reader_ok is False, 8)
        tap_text(h, "刷身份证取号")
        assert h.wait_until(lambda: idc.state == "problem", 3)
        h.pump(2)
        h.app.lang = "en"
        h.pump(2)
        h.find("The ID card reader is not working")
        tap_text(h, "Take an ordinary ticket")
        assert h.app.sm.current == "dispenser"
        tap_text(h, "Real estate")
        disp = h.app.screen("dispenser")
        assert h.wait_until(lambda: disp.state == "done", 10)
        assert [t.display for t in h.rt.dispenser.service.tickets()] == ["B001"]
    finally:
        h.close()


class RawRecords(logging.Handler):
    """Every record as the code logged it, before any scrubbing."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name} {text} {record.__dict__}")


def _files(*folders):
    for folder in folders:
        for root, _dirs, names in os.walk(folder):
            for n in names:
                yield os.path.join(root, n)


def test_the_id_number_is_never_stored_sent_or_logged(tmp_path, central, reader):
    raw = RawRecords()
    root = logging.getLogger()
    old = root.level
    root.addHandler(raw)
    root.setLevel(logging.DEBUG)
    try:
        h = open_app(tmp_path / "on", central, port=str(reader.link))
        try:
            idc, disp = h.app.screen("idcard"), h.app.screen("dispenser")
            reader.place()
            assert h.wait_until(lambda: idc.state == "choose", 8)
            tap_text(h, "^社保医保")
            assert h.wait_until(lambda: disp.state == "done", 10)
            disp.finish()
            reader.lift()
            reader.place()
            assert h.wait_until(lambda: idc.state == "choose", 8)
            h.pump(2)
            tap_text(h, "已取 A001")
            tap_text(h, "补打号票")
            assert h.wait_until(lambda: disp.state == "done", 10)
            h.rt.start(only=["sync"])
            assert wait_until(lambda: h.rt.ledger.outbox_stats()["pending"] == 0, 15)
            screens_text = " ".join(h.texts(h.app.root))
        finally:
            h.close()
        # Offline: the person goes into this device's ledger and outbox only as the HMAC.
        off_dir = tmp_path / "off"
        off_dir.mkdir()
        h = open_app(off_dir, central, online=False, backend="sim")
        try:
            h.rt.dispenser.idcard_reader.present(NAME, ID_NUMBER)
            idc, disp = h.app.screen("idcard"), h.app.screen("dispenser")
            assert h.wait_until(lambda: idc.state == "choose", 8)
            tap_text(h, "^公积金")
            assert h.wait_until(lambda: disp.state == "done", 10)
            outbox = [r["body"] for r in h.rt.ledger.query("SELECT body FROM outbox")]
            assert any('"person"' in b for b in outbox)
        finally:
            h.close()
    finally:
        root.removeHandler(raw)
        root.setLevel(old)

    secrets = [ID_NUMBER, ID_NUMBER[:17], ID_NUMBER[6:14] + ID_NUMBER[14:17], NAME]
    assert raw.lines, "the flow logged nothing: the scan would prove nothing"
    for line in raw.lines:
        for s in secrets:
            assert s not in line, f"log record holds {s!r}: {line[:200]}"
    for s in secrets:
        assert s not in screens_text
    for path in _files(tmp_path / "on" / "data", off_dir / "data", tmp_path / "central"):
        with open(path, "rb") as f:
            data = f.read()
        for s in secrets:
            for form in (s.encode("utf-8"), s.encode("utf-16-le"), s.encode("gb18030")):
                assert form not in data, f"{path} holds {s!r}"
    assert os.path.exists(tmp_path / "on" / "data" / keys.LEDGER_FILE)
    assert os.path.exists(tmp_path / "on" / "data" / keys.CACHE_FILE)


def test_a_card_checks_in_the_citizens_booking_and_without_one_takes_an_ordinary_ticket(tmp_path, central, reader):
    """预约签到 by ID card: the reader's person key finds today's booking at the central."""
    from kiosk.core.privacy import person_key

    booked = central.store.create_booking("B", "10:45", person=person_key(HALL_KEY.encode(), ID_NUMBER))
    h = open_app(tmp_path, central, port=str(reader.link), entries=["appointment", "service"])
    try:
        disp, idc = h.app.screen("dispenser"), h.app.screen("idcard")
        reader.place()
        assert h.wait_until(lambda: h.app.sm.current == "dispenser" and disp.state == "done", 10), idc.state
        h.pump(2)
        t = h.rt.dispenser.service.tickets()
        assert [bool(x.appointment) for x in t] == [True] and disp.number == t[0].display
        assert [b["state"] for b in central.store.bookings()] == ["checked_in"] and booked["code"]
        disp.finish()
        # The same card again: the booking is used, so the card takes an ordinary ticket as before.
        reader.lift()
        reader.place()
        assert h.wait_until(lambda: h.app.sm.current == "idcard" and idc.state == "choose", 10), idc.state
        tap_text(h, "^社保医保")
        assert h.wait_until(lambda: h.app.sm.current == "dispenser" and disp.state == "done", 10)
        assert [bool(x.appointment) for x in h.rt.dispenser.service.tickets()] == [True, False]
    finally:
        h.close()

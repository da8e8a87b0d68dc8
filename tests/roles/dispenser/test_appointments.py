"""预约签到 and quotas end to end: a dispenser service against the bench central on loopback (real HTTP)."""

from __future__ import annotations

import pytest

from kiosk.roles.dispenser.service import BookingRefused, CheckInOffline, QuotaFull
from kiosk.sync.outbox import OutboxUploader
from tests.helpers import SERVICE_TIME
from tests.roles.dispenser.test_online import device  # noqa: F401  (the fixture)

NOW = SERVICE_TIME.strftime("%H:%M")  # 10:30


def sent(central, kind):
    return [e["body"] for e in central.events(kind)]


def test_a_booking_code_checks_in_once_in_its_own_series(central, device, caplog):  # noqa: F811
    caplog.set_level("DEBUG")
    one = device("disp-1")
    b = central.store.create_booking("B", "10:40")
    r = one.svc.check_in(code=b["code"])
    t = r.ticket
    assert r.printed and t.display == "Y001" and t.category == "B" and t.appointment and not t.offline
    assert "预约签到".encode("gb18030") in one.sim.jobs[-1] and b"Y001" in one.sim.jobs[-1]
    # committed before it was shown: the ledger holds it and its outbox event carries its UUID
    ev = [e for e in one.ledger.query("SELECT kind, body FROM outbox") if e["kind"] == "ticket.issued"]
    assert len(ev) == 1 and t.uuid in ev[0]["body"] and b["code"] not in ev[0]["body"]
    # the same booking again, on another dispenser: already used, no number taken
    two = device("disp-2")
    with pytest.raises(BookingRefused) as e:
        two.svc.check_in(code=b["code"])
    assert e.value.reason == "booking_used" and two.svc.tickets() == []
    assert [x["state"] for x in central.store.bookings()] == ["checked_in"]
    # a walk-in after it is numbered in its own series, unaffected
    assert one.svc.issue("B").ticket.display == "B001"
    # the code is the booking's key: no log line of the device or the central holds it
    assert caplog.records and not [r for r in caplog.records if b["code"] in r.getMessage()]


def test_grace_windows_refuse_too_early_and_too_late(central, device):  # noqa: F811
    one = device("disp-1", appointment_early_minutes=20, appointment_late_minutes=10)
    early = central.store.create_booking("A", "11:00")  # opens 10:40
    late = central.store.create_booking("A", "10:15")  # closed 10:25
    ok = central.store.create_booking("A", "10:50")  # opens 10:30: now
    with pytest.raises(BookingRefused) as e:
        one.svc.check_in(code=early["code"])
    assert e.value.reason == "booking_early" and e.value.opens_at == "10:40"
    with pytest.raises(BookingRefused) as e:
        one.svc.check_in(code=late["code"])
    assert e.value.reason == "booking_expired"
    assert one.svc.check_in(code=ok["code"]).ticket.display == "Y001"
    # the central's own rules override the device's
    central.store.update_device_config(appointments={"early_minutes": 60})
    assert one.svc.check_in(code=early["code"]).ticket.display == "Y002"


def test_unknown_and_garbage_codes_get_a_reason_and_take_nothing(central, device):  # noqa: F811
    one = device("disp-1")
    with pytest.raises(BookingRefused) as e:
        one.svc.check_in(code="99999999")
    assert e.value.reason == "booking_unknown"
    for bad in ("12", "' OR 1=1 --", "x" * 300, ""):
        with pytest.raises(BookingRefused) as e:
            one.svc.check_in(code=bad)
        assert e.value.reason == "booking_bad_code"
    assert one.svc.tickets() == [] and central.store.tickets() == []
    assert one.svc.issue("A").ticket.display == "A001"  # the dispenser keeps working


@pytest.mark.parametrize(("mode", "display"), [("priority", "V001"), ("service", "C001")])
def test_an_appointment_gets_the_priority_or_its_service_series_as_configured(central, device, mode, display):  # noqa: F811
    one = device("disp-1", appointment_ticket=mode)
    b = central.store.create_booking("C", "10:30")
    t = one.svc.check_in(code=b["code"]).ticket
    assert t.display == display and t.priority == (mode == "priority")


def test_check_in_by_person_key_finds_todays_booking(central, device):  # noqa: F811
    one = device("disp-1")
    person = "ab" * 32
    central.store.create_booking("D", "10:45", person=person)
    assert one.svc.check_in(person=person).ticket.category == "D"
    with pytest.raises(BookingRefused) as e:
        one.svc.check_in(person="cd" * 32)
    assert e.value.reason == "booking_unknown"


def test_offline_check_in_says_so_and_a_lost_answer_frees_the_booking(central, device):  # noqa: F811
    one = device("disp-1", checkin_timeout=0.5)
    b = central.store.create_booking("A", "10:30")
    # the central commits the check-in and the answer is lost
    central.inject("drop", path="/api/v1/appointments/check-in")
    with pytest.raises(CheckInOffline):
        one.svc.check_in(code=b["code"])
    assert one.svc.tickets() == []
    assert [x["state"] for x in central.store.bookings()] == ["checked_in"]
    # the device reported it abandoned through its outbox: the booking is free again, its ticket void
    OutboxUploader(one.ledger, one.client, one.cfg.device.id).upload()
    assert [x["state"] for x in central.store.bookings()] == ["booked"]
    assert central.callable_tickets() == []
    assert one.svc.check_in(code=b["code"]).ticket.display == "Y002"
    # no central at all: plain refusal, an ordinary ticket still works (offline numbering)
    central.stop()
    with pytest.raises(CheckInOffline):
        one.svc.check_in(code=b["code"])
    assert one.svc.issue("A").ticket.offline


def test_quota_per_time_window_is_enforced_at_the_central_for_every_dispenser(central, device):  # noqa: F811
    quota = [{"category": "A", "hours": "08:30-12:00", "limit": 2}]
    one, two = device("disp-1", quotas=quota), device("disp-2", quotas=quota)
    assert one.svc.issue("A").ticket.display == "A001"
    assert not one.svc.view().categories[0].used_up
    assert two.svc.issue("A").ticket.display == "A002"
    # the central counted both dispensers' tickets: the third is refused, no number taken
    with pytest.raises(QuotaFull):
        one.svc.issue("A")
    assert [t["display"] for t in central.store.tickets()] == ["A001", "A002"]
    assert [c.used_up for c in one.svc.view().categories if c.code == "A"] == [True]
    assert two.svc.view().categories[0].used_up  # it learnt it from the answer that filled it
    assert one.svc.issue("B").ticket.display == "B001"  # other services are not limited
    # check-ins do not count against the quota
    b = central.store.create_booking("A", "10:30")
    assert one.svc.check_in(code=b["code"]).ticket.display == "Y001"


def test_the_central_quota_overrides_the_devices_and_offline_each_device_keeps_its_own(central, device):  # noqa: F811
    one = device("disp-1", quotas=[{"category": "A", "hours": "08:30-12:00", "limit": 50}], online_timeout=0.5)
    central.store.update_device_config(quotas=[{"category": "A", "hours": "10:00-11:00", "limit": 1}])
    one.svc.cache = None
    assert one.svc.issue("A").ticket.display == "A001"
    with pytest.raises(QuotaFull):
        one.svc.issue("A")
    # offline: the device's own config and its own tickets
    off = device("disp-3", quotas=[{"category": "C", "hours": "10:00-11:00", "limit": 1}])
    central.stop()
    assert off.svc.issue("C").ticket.offline
    with pytest.raises(QuotaFull):
        off.svc.issue("C")
    assert off.svc.view().categories[2].used_up


def test_offline_tickets_count_toward_the_hall_quota_once_the_central_has_them(central, device):  # noqa: F811
    quota = [{"category": "D", "hours": "10:00-11:00", "limit": 2}]
    off = device("disp-1", quotas=quota, online_timeout=0.3)
    central.inject("error", count=2, status=503, path="/api/v1/tickets")
    assert off.svc.issue("D").ticket.offline and off.svc.issue("D").ticket.offline  # both numbered offline
    OutboxUploader(off.ledger, off.client, off.cfg.device.id).upload()
    assert sorted(t["source"] for t in central.store.tickets()) == ["offline", "offline"]
    # another dispenser, online: the central counts the two offline ones in the span
    on = device("disp-2", quotas=quota)
    with pytest.raises(QuotaFull):
        on.svc.issue("D")
    assert len(central.store.tickets()) == 2

"""A central (or a proxy before it) that answers a ticket or a lease with valid JSON of
the wrong shape: nothing of it is printed or stored; the citizen gets an offline number
and the central is told the request was abandoned, as for a lost answer."""

from __future__ import annotations

import json

import pytest

from kiosk.core import keys
from kiosk.core.cache import Cache
from tests.helpers import SERVICE_TIME
from tests.roles.dispenser.test_online import Device

DAY = SERVICE_TIME.date().isoformat()


@pytest.fixture
def one(tmp_path, central):
    d = Device(tmp_path, central, "disp-1", online_timeout=1.0)
    yield d
    d.close()


BAD_TICKETS = {
    "number is a boolean": {"number": True, "display": "A001"},
    "number is a float": {"number": 7.0, "display": "A007"},
    "number outside every series": {"number": 123456, "display": "A123456"},
    "negative number": {"number": -1, "display": "A-01"},
    "empty display": {"number": 7, "display": ""},
    "display of another series": {"number": 7, "display": "Z007"},
    "display not the number": {"number": 7, "display": "A999"},
    "huge display": {"number": 7, "display": "A" * 5000},
    "bidi control in the display": {"number": 7, "display": "A\u202e007"},
    "junk day": {"number": 8, "display": "A008", "day": "x" * 300},
    "negative people ahead": {"number": 5, "display": "A005", "people_ahead": -3},
    "huge wait": {"number": 9, "display": "A009", "est_wait_s": 10**15},
}


@pytest.mark.parametrize("answer", BAD_TICKETS.values(), ids=BAD_TICKETS.keys())
def test_a_ticket_answer_of_the_wrong_shape_is_never_printed(central, one, answer):
    central.inject("answer", path="/api/v1/tickets", body=json.dumps(answer))
    r = one.svc.issue("A")
    assert r.ticket.source == "offline" and r.ticket.display == "A900" and r.printed
    assert b"A900" in one.sim.jobs[-1]
    assert "central ticket refused" in one.svc.status()["last_central_error"]
    kinds = [row["kind"] for row in one.ledger.query("SELECT kind FROM outbox ORDER BY seq")]
    assert "ticket.abandoned" in kinds  # the central voids whatever it numbered for this request
    # the service day is still a date, whatever day the answer claimed
    assert one.svc.today() == DAY


def test_a_good_answer_still_numbers_online(central, one):
    r = one.svc.issue("A")
    assert r.ticket.source == "online" and r.ticket.display == "A001"


def test_an_html_page_with_200_numbers_offline(central, one):
    central.inject("answer", path="/api/v1/tickets", body="<html>portal login</html>", content_type="text/html")
    r = one.svc.issue("A")
    assert r.ticket.source == "offline" and "not JSON" in one.svc.status()["last_central_error"]


BAD_LEASES = {
    "negative first": {"first": -5, "last": 2},
    "numbers as strings": {"first": "950", "last": "960"},
    "reversed": {"first": 500, "last": 100},
    "larger than asked": {"first": 99990, "last": 10**9},
    "floats": {"first": 3.9, "last": 5.2},
    "junk day": {"first": 950, "last": 959, "day": "9999-99-99"},
    "no id": {"first": 950, "last": 959, "lease_id": None},
    "a block of another category": {"first": 950, "last": 959, "category": "B"},
    "a block of the priority series": {"first": 950, "last": 959, "priority": True},
}


@pytest.mark.parametrize("lease", BAD_LEASES.values(), ids=BAD_LEASES.keys())
def test_a_lease_of_the_wrong_shape_is_not_kept(one, lease):
    one.svc.add_lease({"lease_id": "L1", "day": DAY, **lease}, "A", 20)
    assert one.ledger.query("SELECT * FROM leases") == []
    assert one.svc.today() == DAY
    # the offline number is the device's own, not one of the refused block
    assert one.svc.issue("A").ticket.display in ("A001", "A900")


def test_a_good_lease_is_kept(one):
    one.svc.add_lease({"lease_id": "L1", "day": DAY, "first": 950, "last": 959}, "A", 20)
    lease = {"lease_id": "L2", "day": DAY, "first": 940, "last": 949, "category": "A", "priority": False}
    one.svc.add_lease(lease, "A", 20)
    assert one.svc.leased_left() == {"A": 20}


def test_queue_figures_of_the_wrong_shape_are_not_shown(tmp_path, central, one):
    one.svc.cache = Cache(tmp_path / "cache")
    try:
        one.svc.refresh()
        good = {c.code: c.waiting for c in one.svc.categories()}
        assert good["A"] == 0
        central.inject(
            "answer",
            path="/api/v1/queue",
            body=json.dumps({"day": DAY, "categories": [{"category": "A", "waiting": -4, "est_wait_s": -60}]}),
        )
        one.svc.refresh()
        assert one.svc.cache.get(keys.QUEUE_STATUS)["categories"][0]["waiting"] == 0
        assert {c.code: c.waiting for c in one.svc.categories()}["A"] == 0
    finally:
        one.svc.cache.close()


BAD_CHECK_INS = {
    "a junk day": {"number": 1, "display": "Y001", "day": "x" * 300},
    "number and display disagree": {"number": 1, "display": "Y009"},
    "negative people ahead": {"number": 1, "display": "Y001", "people_ahead": -2},
}


@pytest.mark.parametrize("ticket", BAD_CHECK_INS.values(), ids=BAD_CHECK_INS.keys())
def test_a_check_in_ticket_of_the_wrong_shape_is_not_printed(central, one, ticket):
    from kiosk.roles.dispenser.service import CheckInOffline

    b = central.store.create_booking("A", SERVICE_TIME.strftime("%H:%M"))
    answer = {"appointment": {"id": "AP1", "category": "A"}, "ticket": ticket}
    central.inject("answer", path="/api/v1/appointments/check-in", body=json.dumps(answer))
    with pytest.raises(CheckInOffline):
        one.svc.check_in(code=b["code"])
    assert one.svc.tickets() == [] and one.sim.jobs == []
    assert "check-in ticket refused" in one.svc.status()["last_central_error"]
    assert one.svc.today() == DAY

"""The bench central's bookings over real HTTP: the contract's check-in, its scope, the bench page's form."""

from __future__ import annotations

import base64
import uuid

import pytest
import requests

from kiosk.sync.client import CentralClient, CentralRejected


def post(central, path, token, body):
    return requests.post(
        f"{central.url}/api/v1{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=5
    )


def test_check_in_is_exactly_once_by_request_id_and_scoped_to_dispensers(central):
    b = central.store.create_booking("A", "10:30")
    token = central.issue_token("disp-1", ["dispenser"])
    rid = uuid.uuid4().hex
    first = post(central, "/appointments/check-in", token, {"request_id": rid, "code": b["code"].lower()})
    again = post(central, "/appointments/check-in", token, {"request_id": rid, "code": b["code"]})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json() and first.json()["ticket"]["display"] == "Y001"
    assert "code" not in first.json()["appointment"]  # the answer names the booking by its id only
    used = post(central, "/appointments/check-in", token, {"request_id": uuid.uuid4().hex, "code": b["code"]})
    assert used.status_code == 409 and used.json()["error"] == "already_used"
    lookup_only = central.issue_token("lk-1", ["lookup"])
    r = post(central, "/appointments/check-in", lookup_only, {"request_id": rid, "code": b["code"]})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    for bad in (
        {"request_id": rid},
        {"request_id": rid, "code": "1"},
        {"request_id": rid, "person": "x" * 64},
        {"request_id": rid, "code": b["code"], "person": "a" * 64},
        {"request_id": rid, "code": b["code"], "policy": {"ticket": "vip"}},
    ):
        assert post(central, "/appointments/check-in", token, bad).status_code == 400, bad


def test_the_bench_page_creates_a_booking_with_its_qr(central):
    auth = {"Authorization": "Basic " + base64.b64encode(f"x:{central.bench_password}".encode()).decode()}
    r = requests.post(
        f"{central.url}/bench/bookings", data={"category": "B", "slot_start": "11:00"}, headers=auth, timeout=5
    )
    assert r.status_code == 200 and "预约码" in r.text
    made = [b for b in central.store.bookings() if b["slot_start"] == "11:00"]
    assert len(made) == 1 and made[0]["category"] == "B" and made[0]["slot_end"] == "11:30"
    qr = requests.get(f"{central.url}/bench/bookings/{made[0]['code']}/qr.png", headers=auth, timeout=5)
    assert qr.status_code == 200 and qr.content[:4] == b"\x89PNG"
    page = requests.get(f"{central.url}/bench/", headers=auth, timeout=5).text
    assert made[0]["code"] in page and "Bookings today" in page
    bad = requests.post(
        f"{central.url}/bench/bookings", data={"category": "Z", "slot_start": "11:00"}, headers=auth, timeout=5
    )
    assert bad.status_code in (400, 404)


def test_a_new_central_has_demo_bookings_and_the_queue_shows_its_quotas(central):
    codes = {b["code"] for b in central.store.bookings(central.store.today())} | {
        r["code"] for r in central.store._q("SELECT code FROM bookings")
    }
    assert {"20260101", "20260102", "20260103", "20260104"} <= codes
    central.store.update_device_config(quotas=[{"category": "C", "hours": "10:00-11:00", "limit": 1}])
    client = CentralClient(central.url, central.issue_token("disp-1", ["dispenser"]))
    try:
        t = client.issue_ticket("C", uuid.uuid4().hex)
        assert t["quota"] == {"hours": "10:00-11:00", "limit": 1, "issued": 1}
        with pytest.raises(CentralRejected) as e:
            client.issue_ticket("C", uuid.uuid4().hex)
        assert e.value.code == "quota_full" and e.value.body["quota"]["issued"] == 1
        q = {c["category"]: c for c in client.queue_status()["categories"]}
        assert q["C"]["quota"]["full"] is True and "quota" not in q["A"]
    finally:
        client.close()

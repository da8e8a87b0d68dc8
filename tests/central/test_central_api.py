"""The bench central's contract through the real client over loopback HTTP."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
import requests

from kiosk.central.server import BenchCentral
from kiosk.sync.client import (
    CaseCodeWrong,
    CaseLocked,
    CentralAuthError,
    CentralClient,
    CentralRejected,
    CentralUnreachable,
)
from tests.helpers import refused_url


def client_for(central, device_id, roles=("dispenser",), window=None, **kw) -> CentralClient:
    return CentralClient(central.url, central.issue_token(device_id, roles, window), 0.5, kw.get("read_timeout", 3.0))


def test_ticket_numbers_are_hall_wide_sequential_and_idempotent(central):
    a, b = client_for(central, "kiosk-a"), client_for(central, "kiosk-b")
    got, errors = [], []

    def take(client, tag):
        for i in range(15):
            try:
                got.append(client.issue_ticket("A", f"{tag}-{i}"))
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

    threads = [threading.Thread(target=take, args=(c, t)) for c, t in ((a, "a"), (b, "b"))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    assert sorted(t["number"] for t in got) == list(range(1, 31))  # no gap, no repeat, across devices
    t = next(t for t in got if t["request_id"] == "a-3")
    again = a.issue_ticket("A", "a-3")  # a retry after a timeout
    assert again == t and again["display"] == f"A{t['number']:03d}"
    assert b.issue_ticket("B", "b-new")["number"] == 1  # each category its own series
    with pytest.raises(CentralRejected) as e:
        a.issue_ticket("B", "a-3")  # same request id, other category
    assert e.value.status == 409
    first = b.issue_ticket("C", "c-1")
    second = b.issue_ticket("C", "c-2")
    assert second["people_ahead"] == first["people_ahead"] + 1 and second["est_wait_s"] > 0
    assert len(central.store.tickets()) == 33


def test_leased_numbers_are_never_issued_online(central):
    c = client_for(central, "kiosk-a")
    c.issue_ticket("B", "r0")
    # leased blocks are cut from the top of 1..899, so online numbers stay 1, 2, 3 ...
    lease = c.lease_numbers("B", 20, request_id="lease-1")
    assert lease["first"] == 880 and lease["last"] == 899 and lease["prefix"] == "B"
    assert c.lease_numbers("B", 20, request_id="lease-1") == lease  # idempotent
    other = client_for(central, "kiosk-b").lease_numbers("B", 5)
    assert (other["first"], other["last"]) == (875, 879)  # leases never overlap
    online = [c.issue_ticket("B", f"r{i}")["number"] for i in range(1, 40)]
    assert not set(online) & set(range(875, 900))
    assert online == list(range(2, 41))
    with pytest.raises(CentralRejected) as e:
        c.lease_numbers("B", 900)
    assert e.value.status in (400, 409)


def test_lease_and_offline_tickets_join_the_queue_when_their_events_arrive(central):
    c = client_for(central, "kiosk-a")
    ev = {
        "id": "0b8e9a52-36a4-4c1e-8f7b-3d3f2e1a9c01",
        "kind": "ticket.issued",
        "device_id": "kiosk-a",
        "created_at": "2026-05-12T09:00:00+08:00",
        "boot_id": "b",
        "seq": 7,
        "body": {"category": "D", "number": 950, "display": "D950", "source": "offline", "day": central.store.today()},
    }
    assert c.upload_events([ev])[0]["status"] == "accepted"
    q = c.queue_status("D")
    assert q["categories"] == [
        {"category": "D", "waiting": 1, "est_wait_s": q["categories"][0]["est_wait_s"], "last_called": None}
    ]
    s = central.call_next("07")
    assert s["ticket"] == "D950" and s["state"] == "serving"
    assert c.queue_status("D")["categories"][0]["waiting"] == 0


def test_case_lookup_masks_the_name_and_locks_after_wrong_codes(tmp_path):
    central = BenchCentral(tmp_path / "c", max_code_attempts=3, lockout_s=1).start()
    try:
        c = client_for(central, "lookup-1", ["lookup"])
        case = central.create_case(
            "不动产抵押登记", "欧阳小明", status="needs_materials", missing_materials=["抵押合同"]
        )
        assert case["qr_payload"] == (
            f"https://zwfw.example.gov.cn/q?slbh={case['receipt_no']}&cxm={case['query_code']}"
        )
        got = c.lookup_case(case["receipt_no"], case["query_code"])
        assert got["applicant_name"] == "欧**明" and got["status"] == "needs_materials"
        assert got["missing_materials"] == ["抵押合同"] and got["steps"][-1]["name_zh"] == "待补正"
        assert "query_code" not in got
        lefts = []
        for _ in range(2):
            with pytest.raises(CaseCodeWrong) as e:
                c.lookup_case(case["receipt_no"], "000000")
            lefts.append(e.value.attempts_left)
        assert lefts == [2, 1]
        with pytest.raises(CaseLocked) as e:
            c.lookup_case(case["receipt_no"], "000000")
        assert e.value.status == 423 and e.value.retry_after >= 1
        with pytest.raises(CaseLocked):  # even the right code now
            c.lookup_case(case["receipt_no"], case["query_code"])
        with pytest.raises(CaseCodeWrong):  # unknown numbers look the same
            c.lookup_case("ZW0000000000", "123456")
        time.sleep(1.1)
        assert c.lookup_case(case["receipt_no"], case["query_code"])["receipt_no"] == case["receipt_no"]
        with pytest.raises(CentralRejected) as e:
            c.lookup_case("bad number!", "x")
        assert e.value.status == 400
    finally:
        central.stop()


def test_window_session_long_poll_wakes_on_end_of_service(central):
    c = client_for(central, "pad-05", ["pad"], "05", read_timeout=2.0)
    s0 = c.window_session("05")
    assert s0["state"] == "idle"
    central.call_next("05", case_no="BJ2026-0001", item_code="330100-GJJ-003", item_version="2")
    s1 = c.window_session("05", wait=5, since=s0["rev"])  # changed already: answers at once
    assert s1["state"] == "serving" and s1["session_id"] and s1["staff_id"] == "S1005"
    assert s1["case_no"] == "BJ2026-0001" and s1["item_version"] == "2"
    result = {}

    def poll():
        t0 = time.monotonic()
        result["s"] = c.window_session("05", wait=8, since=s1["rev"])
        result["t"] = time.monotonic() - t0

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.4)
    assert t.is_alive()  # held while nothing changes
    central.end_service("05")
    t.join(5)
    assert result["s"]["state"] == "ended" and result["s"]["session_id"] == s1["session_id"]
    assert result["s"]["ended_at"] and 0.3 < result["t"] < 2
    t0 = time.monotonic()
    same = c.window_session("05", wait=0.5, since=result["s"]["rev"])  # no change: answers after `wait`
    assert same["rev"] == result["s"]["rev"] and 0.4 < time.monotonic() - t0 < 2
    assert central.pause("05")["state"] == "paused"
    assert c.window_session("05", wait=3, since=same["rev"])["state"] == "paused"
    with pytest.raises(CentralAuthError, match="only its own window"):  # not even "is there a window 99?"
        c.window_session("99")


def test_config_etag_and_staff_photo(central):
    c = client_for(central, "pad-01", ["pad"], "01")
    f = c.get_config()
    assert not f.not_modified and f.etag and f.data["version"] == f.etag.strip('"')
    assert {r["code"] for r in f.data["rating_reasons"]["reasons"]} >= {"A01", "A11"}
    assert c.get_config(f.etag).not_modified
    central.store.update_device_config(opening_hours={"days": [1, 2, 3, 4, 5, 6], "hours": ["09:00-12:00"]})
    g = c.get_config(f.etag)
    assert not g.not_modified and g.etag != f.etag and g.data["opening_hours"]["days"][-1] == 6
    card = c.staff_card("01")
    assert card.data["name"] and card.data["stars"] == 5 and c.staff_card("01", card.etag).not_modified
    photo = c.staff_photo(card.data["staff_id"])
    assert photo.data.startswith(b"\x89PNG") and photo.content_type == "image/png"
    assert c.staff_photo(card.data["staff_id"], photo.etag).not_modified


def test_restart_keeps_tokens_tickets_events_and_cases(tmp_path):
    central = BenchCentral(tmp_path / "c").start()
    token = central.issue_token("kiosk-a", ["dispenser", "lookup", "pad"], "02")
    c = CentralClient(central.url, token, 0.5, 3)
    assert c.issue_ticket("A", "x1")["number"] == 1
    ev = {
        "id": "3c2b1a00-0000-4000-8000-000000000001",
        "kind": "audit.boot",
        "device_id": "kiosk-a",
        "created_at": "2026-05-12T08:00:00+08:00",
        "boot_id": "b",
        "seq": 1,
        "body": {},
    }
    c.upload_events([ev])
    case = central.create_case()
    central.call_next("02")
    port = central.port
    central.stop()
    with pytest.raises(CentralUnreachable):
        c.whoami()
    again = BenchCentral(tmp_path / "c", port=port).start()
    try:
        assert c.whoami()["device_id"] == "kiosk-a"  # the token survived
        assert c.issue_ticket("A", "x2")["number"] == 2  # numbering continues
        assert c.issue_ticket("A", "x1")["number"] == 1  # and idempotency
        assert c.upload_events([ev])[0]["status"] == "duplicate"
        assert c.lookup_case(case["receipt_no"], case["query_code"])
        assert c.window_session("02")["state"] == "serving"
    finally:
        again.stop()


def test_client_errors_are_typed(central):
    c = client_for(central, "kiosk-a")
    with pytest.raises(CentralAuthError, match="token"):
        CentralClient(central.url, "wrong-token-1234567890", 0.5, 2).whoami()
    central.store.revoke_tokens("kiosk-a")
    with pytest.raises(CentralAuthError):
        c.whoami()
    c = client_for(central, "kiosk-b")
    central.inject("error", status=500, retry_after=3)
    with pytest.raises(CentralUnreachable) as e:
        c.queue_status()
    assert e.value.retry_after == 3
    with pytest.raises(CentralRejected) as e:
        c.issue_ticket("Q", "r1")
    assert e.value.code == "unknown_category" and "category" in e.value.message
    dead = CentralClient(refused_url(), "t" * 20, 0.3, 0.3)  # a port held closed by this run
    with pytest.raises(CentralUnreachable, match="cannot reach"):
        dead.whoami()
    cfg = SimpleNamespace(
        central=SimpleNamespace(
            url="http://x.example", allow_http=False, connect_timeout=1, read_timeout=1, ca_file=""
        ),
        read_token=lambda: "t",
    )
    with pytest.raises(ValueError, match="plain http"):
        CentralClient.from_config(cfg)
    assert "t" * 20 not in repr(dead)


def test_bench_page_and_forms(central):
    s = requests.Session()
    assert s.get(central.url + f"/bench/login?password={central.bench_password}").url.endswith("/bench/")
    page = s.get(central.url + "/bench/")
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "结束服务" in page.text and "ZW2026000101" in page.text and "张*三" in page.text
    assert "张小三" not in page.text  # names masked on the page
    r = s.post(
        central.url + "/bench/cases",
        data={
            "item_name": "测试事项",
            "applicant_name": "王五",
            "status": "completed",
            "collection": "post",
            "window": "03",
        },
    )
    assert r.status_code == 200 and "查询码" in r.text
    qr = s.get(central.url + r.text.split('img src="')[1].split('"')[0])
    assert qr.headers["Content-Type"] == "image/png" and qr.content.startswith(b"\x89PNG")
    r = s.post(central.url + "/bench/windows/04/call-next", allow_redirects=False)
    assert r.status_code == 303 and central.store.window_session("04")["state"] == "serving"
    s.post(central.url + "/bench/windows/04/end")
    assert central.store.window_session("04")["state"] == "ended"
    r = s.post(central.url + "/bench/faults", json={"kind": "error", "count": 1, "status": 502})
    assert r.json()[0]["status"] == 502
    assert s.get(central.url + "/api/v1/whoami").status_code == 502
    assert s.get(central.url + "/api/v1/whoami").status_code == 401
    assert s.post(central.url + "/bench/faults", json={"kind": "nonsense"}).status_code == 400

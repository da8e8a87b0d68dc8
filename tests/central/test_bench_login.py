"""The bench pages: behind the bench password, and masked like a public screen."""

from __future__ import annotations

import uuid

import requests

from kiosk.cli.central import exposure_warning


def signed_in(central) -> requests.Session:
    s = requests.Session()
    r = s.post(central.url + "/bench/login", data={"password": central.bench_password}, allow_redirects=False)
    assert r.status_code == 303 and "SameSite=Strict" in r.headers["Set-Cookie"]
    return s


def test_nothing_without_the_password(central):
    anon = requests.Session()
    page = anon.get(central.url + "/bench/")
    assert page.status_code == 401 and "password" in page.text and "ZW2026" not in page.text
    for method, path, kw in (
        ("GET", "/bench/events.json", {}),
        ("GET", "/bench/faults", {}),
        ("POST", "/bench/faults", {"json": {"kind": "error"}}),
        ("POST", "/bench/tokens", {"data": {"device_id": "evil", "role_dispenser": "1"}}),
        ("POST", "/bench/windows/01/call-next", {}),
        ("POST", "/bench/cases", {"data": {"item_name": "x"}}),
    ):
        r = anon.request(method, central.url + path, **kw)
        assert r.status_code == 401 and r.json()["error"] == "bench_login", path
    assert central.faults.pending() == [] and central.store.window_session("01")["state"] == "idle"
    assert [t["device_id"] for t in central.store.token_list()] == []
    wrong = anon.post(central.url + "/bench/login", data={"password": "guess"}, allow_redirects=False)
    assert wrong.status_code == 401 and "Set-Cookie" not in wrong.headers
    basic = requests.get(central.url + "/bench/faults", auth=("bench", central.bench_password), timeout=5)
    assert basic.status_code == 200  # scripts may send the password as HTTP Basic


def test_the_page_lists_no_query_code_and_no_phone(central):
    token = central.issue_token("pad-01", ["pad"], "01")
    case = central.create_case("测试事项", "欧阳小明", window="02")
    ev = {
        "id": str(uuid.uuid4()),
        "kind": "rating.submitted",
        "device_id": "pad-01",
        "created_at": "2026-05-12T10:00:00+08:00",
        "boot_id": "b",
        "seq": 1,
        "body": {"window": "01", "session_id": "L-1", "level": 1, "reasons": ["A07"], "phone": "13812345678"},
    }
    requests.post(
        central.url + "/api/v1/events", json={"events": [ev]}, headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    page = signed_in(central).get(central.url + "/bench/").text
    assert "13812345678" not in page and "138****5678" in page
    assert case["query_code"] not in page and "482913" not in page  # nor a seeded case's code
    assert case["receipt_no"] not in page.replace(f"/bench/cases/{case['receipt_no']}/qr.png", "")
    assert "欧阳小明" not in page and token not in page
    assert "pad-01" in page and "revoke device" in page


def test_revoke_from_the_page(central):
    token = central.issue_token("pad-01", ["pad"], "01")
    s = signed_in(central)
    assert s.post(central.url + "/bench/tokens/pad-01/revoke", allow_redirects=False).status_code == 303
    r = requests.get(central.url + "/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert r.status_code == 401


def test_a_token_minted_on_the_page_has_the_scope_asked_for(central):
    s = signed_in(central)
    r = s.post(central.url + "/bench/tokens", data={"device_id": "pad-07", "role_pad": "1", "window": "07"})
    token = r.text.split("<pre>")[1].split("</pre>")[0]
    assert central.store.scope_for_token(token).window == "07"
    r = s.post(central.url + "/bench/tokens", data={"device_id": "pad-x", "role_pad": "1"})
    assert r.status_code == 400 and "window" in r.json()["message"]


def test_only_loopback_goes_without_a_warning():
    assert exposure_warning("127.0.0.1") is None and exposure_warning("localhost") is None
    assert "WARNING" in exposure_warning("0.0.0.0") and "WARNING" in exposure_warning("no-such-host.invalid")

"""Per-device authorisation at the bench central: every operation tried with each wrong kind of token.

Raw HTTP (requests) against the real server on 127.0.0.1, so the status and
error code are exactly what a province's system must answer.
"""

from __future__ import annotations

import socket
import uuid

import pytest
import requests

API = "/api/v1"


@pytest.fixture
def tokens(central):
    """One token of each kind; pad01 rates window 01 (staff S1001), pad02 window 02 (S1002)."""
    t = {
        "dispenser": central.issue_token("disp-1", ["dispenser"]),
        "dispenser2": central.issue_token("disp-2", ["dispenser"]),
        "lookup": central.issue_token("look-1", ["lookup"]),
        "pad01": central.issue_token("pad-01", ["pad"], "01"),
        "pad02": central.issue_token("pad-02", ["pad"], "02"),
    }
    revoked = central.issue_token("gone-1", ["dispenser", "lookup", "pad"], "01")
    central.store.revoke_tokens("gone-1")
    t["revoked"] = revoked
    return t


DEVICE = {"dispenser": "disp-1", "dispenser2": "disp-2", "lookup": "look-1", "pad01": "pad-01", "pad02": "pad-02"}


def call(central, token, method, path, json=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, central.url + API + path, json=json, headers=headers, timeout=5)


def event(device, kind, body, eid=None):
    return {
        "id": eid or str(uuid.uuid4()),
        "kind": kind,
        "device_id": device,
        "created_at": "2026-05-12T09:00:00+08:00",
        "boot_id": "b",
        "seq": 1,
        "body": body,
    }


def operations(case):
    """(name, method, path, body) for every operation of the contract."""
    return [
        ("whoami", "GET", "/whoami", None),
        ("getConfig", "GET", "/config", None),
        ("queueStatus", "GET", "/queue", None),
        ("queueStatusOne", "GET", "/queue/A", None),
        ("heartbeat", "POST", "/heartbeat", {"version": "1"}),
        ("uploadEvents", "POST", "/events", {"events": []}),
        ("issueTicket", "POST", "/tickets", {"request_id": "r-1", "category": "A"}),
        ("leaseNumbers", "POST", "/tickets/leases", {"category": "A", "size": 5}),
        ("lookupCase", "POST", "/cases/lookup", {"receipt_no": case["receipt_no"], "query_code": case["query_code"]}),
        ("windowSession", "GET", "/windows/01/session", None),
        ("staffCard", "GET", "/windows/01/staff", None),
        ("staffPhoto", "GET", "/staff/S1001/photo", None),
    ]


# Which token kinds may call each operation; every other kind must get 403.
ALLOWED = {
    "whoami": {"dispenser", "lookup", "pad01", "pad02"},
    "getConfig": {"dispenser", "lookup", "pad01", "pad02"},
    "queueStatus": {"dispenser", "lookup", "pad01", "pad02"},
    "queueStatusOne": {"dispenser", "lookup", "pad01", "pad02"},
    "heartbeat": {"dispenser", "lookup", "pad01", "pad02"},
    "uploadEvents": {"dispenser", "lookup", "pad01", "pad02"},
    "issueTicket": {"dispenser"},
    "leaseNumbers": {"dispenser"},
    "lookupCase": {"lookup"},
    "windowSession": {"pad01"},
    "staffCard": {"pad01"},
    "staffPhoto": {"pad01"},
}


def test_every_operation_with_every_kind_of_token(central, tokens):
    case = central.create_case()
    for name, method, path, body in operations(case):
        for kind in ("dispenser", "lookup", "pad01", "pad02"):
            r = call(central, tokens[kind], method, path, body)
            if kind in ALLOWED[name]:
                assert r.status_code in (200, 201), (name, kind, r.status_code, r.text)
            else:
                assert r.status_code == 403, (name, kind, r.status_code, r.text)
                assert r.json()["error"] == "forbidden" and r.json()["message"], (name, kind)
        for bad in (None, tokens["revoked"], "not-a-token-of-this-central"):
            r = call(central, bad, method, path, body)
            assert r.status_code == 401 and r.json()["error"] == "unauthorized", (name, r.status_code)


def test_whoami_tells_the_scope(central, tokens):
    assert call(central, tokens["pad01"], "GET", "/whoami").json() | {"server_time": None} == {
        "device_id": "pad-01",
        "roles": ["pad"],
        "window": "01",
        "server_time": None,
    }


def test_a_lookup_token_cannot_drain_the_numbers(central, tokens):
    for _ in range(3):
        assert (
            call(central, tokens["lookup"], "POST", "/tickets/leases", {"category": "A", "size": 500}).status_code
            == 403
        )
    assert central.store.leases() == []
    t = call(central, tokens["dispenser"], "POST", "/tickets", {"request_id": "x", "category": "A"})
    assert t.status_code == 201 and t.json()["number"] == 1


def test_request_ids_are_per_device(central, tokens):
    mine = call(central, tokens["dispenser"], "POST", "/tickets", {"request_id": "r-7", "category": "A"}).json()
    theirs = call(central, tokens["dispenser2"], "POST", "/tickets", {"request_id": "r-7", "category": "A"})
    assert theirs.status_code == 201 and theirs.json()["number"] == mine["number"] + 1  # a new ticket, not mine
    again = call(central, tokens["dispenser"], "POST", "/tickets", {"request_id": "r-7", "category": "A"})
    assert again.status_code == 200 and again.json() == mine
    la = call(central, tokens["dispenser"], "POST", "/tickets/leases", {"category": "B", "size": 3, "request_id": "L"})
    lb = call(central, tokens["dispenser2"], "POST", "/tickets/leases", {"category": "B", "size": 3, "request_id": "L"})
    assert lb.status_code == 201 and lb.json()["lease_id"] != la.json()["lease_id"] and lb.json()["first"] == 894


def test_event_ids_are_per_device(central, tokens):
    eid = str(uuid.uuid4())
    squat = event("disp-1", "audit.boot", {"x": 1}, eid)
    assert (
        call(central, tokens["dispenser"], "POST", "/events", {"events": [squat]}).json()["results"][0]["status"]
        == "accepted"
    )
    real = event("look-1", "lookup.performed", {"outcome": "ok"}, eid)
    res = call(central, tokens["lookup"], "POST", "/events", {"events": [real]}).json()["results"]
    assert res == [{"id": eid, "status": "accepted"}]  # the victim's event is not pre-empted
    assert {(e["device_id"], e["kind"]) for e in central.events() if e["id"] == eid} == {
        ("disp-1", "audit.boot"),
        ("look-1", "lookup.performed"),
    }


def test_events_are_scoped_by_family(central, tokens):
    central.call_next("01")
    sid = central.end_service("01")["session_id"]
    rating = {"window": "01", "session_id": sid, "level": 1, "reasons": [{"code": "A07"}]}
    cases = [
        ("lookup", "rating.submitted", rating, "forbidden"),
        ("dispenser", "rating.submitted", rating, "forbidden"),
        ("pad02", "rating.submitted", rating, "forbidden"),  # the window's pad only
        ("pad01", "ticket.issued", {"category": "A", "number": 950, "source": "offline"}, "forbidden"),
        ("lookup", "ticket.issued", {"category": "A", "number": 951, "source": "offline"}, "forbidden"),
        ("pad01", "lookup.performed", {"outcome": "ok"}, "forbidden"),
        ("dispenser", "pad.paused", {}, "forbidden"),
    ]
    for kind, ev_kind, body, reason in cases:
        res = call(central, tokens[kind], "POST", "/events", {"events": [event(DEVICE[kind], ev_kind, body)]})
        got = res.json()["results"][0]
        assert got["status"] == "rejected" and got["reason"].startswith(reason + ":"), (kind, ev_kind, got)
    assert central.events("rating.submitted") == [] and central.store.tickets() == []
    for kind, ev_kind in (("lookup", "audit.boot"), ("pad01", "device.health"), ("dispenser", "printer.paper")):
        res = call(central, tokens[kind], "POST", "/events", {"events": [event(DEVICE[kind], ev_kind, {})]})
        assert res.json()["results"][0]["status"] == "accepted", (kind, ev_kind)


def test_one_rating_outcome_per_window_session(central, tokens):
    central.call_next("01")
    sid = central.end_service("01")["session_id"]
    first = event("pad-01", "rating.submitted", {"window": "01", "session_id": sid, "level": 5, "reasons": []})
    post = lambda evs: call(central, tokens["pad01"], "POST", "/events", {"events": evs}).json()["results"]
    assert post([first])[0]["status"] == "accepted"
    assert post([first])[0]["status"] == "duplicate"  # a resend is fine
    second = event("pad-01", "rating.submitted", {"window": "01", "session_id": sid, "level": 1, "reasons": ["A07"]})
    late = event("pad-01", "rating.not_rated", {"window": "01", "session_id": sid, "level": None})
    for r in post([second, late]):
        assert r["status"] == "rejected" and r["reason"].startswith("already_rated:")
    # A session the central never opened at this window, and another window's session.
    central.call_next("02")
    other = central.end_service("02")["session_id"]
    for s in ("no-such-session", other):
        ev = event("pad-01", "rating.submitted", {"window": "01", "session_id": s, "level": 5, "reasons": []})
        assert post([ev])[0]["reason"].startswith("invalid: no service session")
    # A clerk-opened offline session is the pad's own, and also rated once.
    clerk = {"window": "01", "session_id": "L-" + uuid.uuid4().hex, "level": 4, "reasons": []}
    assert post([event("pad-01", "rating.submitted", clerk)])[0]["status"] == "accepted"
    assert post([event("pad-01", "rating.submitted", clerk)])[0]["reason"].startswith("already_rated:")
    assert [e["body"]["level"] for e in central.events("rating.submitted")] == [5, 4]


def test_photo_only_of_the_staff_on_the_pads_window(central, tokens):
    assert call(central, tokens["pad01"], "GET", "/staff/S1001/photo").status_code == 200
    assert call(central, tokens["pad01"], "GET", "/staff/S1002/photo").status_code == 403
    central.store.set_staff("S1002", window="01")  # a new clerk takes window 01
    assert call(central, tokens["pad01"], "GET", "/staff/S1002/photo").status_code == 200
    assert call(central, tokens["pad01"], "GET", "/staff/S1001/photo").status_code == 403


def test_the_token_is_checked_before_the_body_is_read(central):
    # Headers announce 4 MB that never come: the answer must not wait for them.
    with socket.create_connection((central.host, central.port), timeout=3) as s:
        s.sendall(
            b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token-123456\r\n"
            b"Content-Type: application/json\r\nContent-Length: 4000000\r\n\r\n{"
        )
        head = s.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 401") and "connection: close" in head.lower()


def test_issue_token_refuses_a_bad_scope(central):
    for roles, window, msg in (
        ([], None, "give one or more"),
        (["clerk"], None, "give one or more"),
        (["pad"], None, "needs its window"),
        (["pad"], "99", "not a window of this hall"),
        (["lookup"], "01", "only a pad's token"),
    ):
        with pytest.raises(ValueError, match=msg):
            central.issue_token("dev-1", roles, window)


def test_the_contract_states_each_operations_scope():
    import yaml

    from kiosk.central.scope import OPERATION_ROLE
    from tests.helpers import ROOT

    spec = yaml.safe_load((ROOT / "docs" / "central-api.yaml").read_text(encoding="utf-8"))
    ops = {op["operationId"]: op for item in spec["paths"].values() for op in item.values()}
    assert set(ops) == set(OPERATION_ROLE)
    for name, role in OPERATION_ROLE.items():
        scope = ops[name]["x-scope"]
        assert (f"role {role}" in scope) if role else scope.startswith("any device token"), name
        assert ("403" in ops[name]["responses"]) == (role is not None), name


def test_the_contract_states_the_servers_limits():
    from kiosk.central import server
    from tests.helpers import ROOT

    text = (ROOT / "docs" / "central-api.yaml").read_text(encoding="utf-8")
    assert server.MAX_BODY == 4 * 1024 * 1024 and "at most 4 MiB" in text
    assert f"at most\n    {server.MAX_BATCH} events per batch" in text
    assert f"at most {server.MAX_WAIT} s" in text

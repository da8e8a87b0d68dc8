"""The bench central under abuse, over real sockets on 127.0.0.1.

Each test plays a misbehaving client the way an attacker (or a broken device)
would: idle sockets, headers or a body trickled a byte at a time, bodies over
the limit, a batch with one broken event, a lookup flood, bench pages polled
hard. The limits are shortened (Limits) so the tests take seconds.
"""

from __future__ import annotations

import base64
import json
import socket
import statistics
import threading
import time
import uuid

import pytest
import requests

from kiosk.central import server
from kiosk.central.limits import Limits, RateLimit
from kiosk.central.server import BenchCentral
from kiosk.sync.client import CentralBusy, CentralClient
from tests.helpers import wait_until

SHORT = Limits(max_connections=24, header_timeout=0.6, body_timeout=0.6, keep_alive=2, lookup_burst=3)


@pytest.fixture
def central(tmp_path):
    c = BenchCentral(tmp_path / "central", long_poll_cap=1, limits=SHORT).start()
    yield c
    c.stop()


def _connect(central) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", central.port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _answer(s: socket.socket, timeout: float = 5.0) -> tuple[int, dict, bytes]:
    """Read one whole answer (the status, the headers, a Content-Length body)."""
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else 0
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    n = int(headers.get("content-length", "0"))
    while len(body) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def _closed(s: socket.socket) -> bool:
    s.settimeout(0.05)
    try:
        return s.recv(65536) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def _event(device_id: str, seq: int = 1, **over) -> dict:
    ev = {
        "id": str(uuid.uuid4()),
        "kind": "audit.test",
        "device_id": device_id,
        "created_at": "2026-05-12T09:00:00+08:00",
        "boot_id": "b",
        "seq": seq,
        "body": {"n": seq},
    }
    ev.update(over)
    return ev


def test_trickled_headers_get_408_while_devices_are_answered(central):
    token = central.issue_token("hall01-kiosk01", ["dispenser"])
    request = f"GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    lorises = [_connect(central) for _ in range(10)]
    started = time.monotonic()
    client = CentralClient(central.url, token, 0.5, 2.0)
    served = []
    # A byte every 0.1 s each: every read of the server gets something, the headers never end in time.
    for i in range(len(request) - 4):
        for s in lorises:
            try:
                s.send(request[i : i + 1])
            except OSError:
                pass  # already cut off: that is the point
        if i % 3 == 0:
            t = time.monotonic()
            assert client.whoami()["device_id"] == "hall01-kiosk01"
            served.append(time.monotonic() - t)
        if time.monotonic() - started > SHORT.header_timeout + 1.0:
            break
        time.sleep(0.1)
    for s in lorises:
        status, headers, body = _answer(s)
        assert status == 408 and json.loads(body)["error"] == "too_slow"
        assert headers["connection"] == "close"
        assert wait_until(lambda s=s: _closed(s), timeout=3)
        s.close()
    assert max(served) < 1.0, served  # answered while the tricklers held their sockets
    client.close()


def test_a_flood_of_idle_connections_makes_room_for_a_device(tmp_path):
    cap = 24
    central = BenchCentral(tmp_path / "c", limits=Limits(max_connections=cap, header_timeout=5)).start()
    token = central.issue_token("hall01-kiosk01", ["dispenser"])
    client = CentralClient(central.url, token, 0.5, 2.0)
    try:
        assert client.whoami()["device_id"] == "hall01-kiosk01"  # a device, kept alive, served before the flood
        idle = [_connect(central) for _ in range(cap - 1)]  # the cap reached, with the device's connection
        # Each newcomer past the cap closes the oldest never-served connection (503), not
        # itself and not the device's: a flood cannot keep devices out, nor take file descriptors.
        extra = [_connect(central) for _ in range(5)]
        closed: set[int] = set()

        def five_cut() -> bool:
            closed.update(i for i, s in enumerate(idle) if i not in closed and _closed(s))
            return len(closed) >= 5

        assert wait_until(five_cut, timeout=3)
        assert closed == set(range(5)), closed  # the oldest five
        assert client.whoami()["device_id"] == "hall01-kiosk01"  # its kept-alive connection was left alone
        fresh = CentralClient(central.url, token, 0.5, 2.0)  # and a device connecting now still gets in
        assert fresh.whoami()["device_id"] == "hall01-kiosk01"
        fresh.close()
        for s in idle + extra:
            s.close()
    finally:
        client.close()
        central.stop()


def test_a_connection_that_sends_nothing_is_cut_at_the_header_deadline(central):
    s = _connect(central)
    started = time.monotonic()
    status, headers, body = _answer(s, timeout=SHORT.header_timeout + 3)
    assert status == 408 and headers["connection"] == "close" and json.loads(body)["error"] == "too_slow"
    assert SHORT.header_timeout - 0.1 <= time.monotonic() - started
    assert wait_until(lambda: _closed(s), timeout=3)
    s.close()


def test_when_every_connection_is_busy_a_newcomer_is_refused_503(tmp_path):
    central = BenchCentral(tmp_path / "c", long_poll_cap=5, limits=Limits(max_connections=3)).start()
    try:
        tokens = [central.issue_token(f"hall01-pad0{i}", ["pad"], f"0{i}") for i in (1, 2, 3)]
        polls = []
        for i, t in enumerate(tokens, 1):  # three long-polls hold the three connections with a request each
            s = _connect(central)
            since = central.store.window_session(f"0{i}")["rev"]
            s.sendall(
                f"GET /api/v1/windows/0{i}/session?wait=5&since={since} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {t}\r\n\r\n".encode()
            )
            polls.append(s)
        assert wait_until(lambda: central.busy() == 3)
        s = _connect(central)
        status, _, body = _answer(s)
        assert status == 503 and json.loads(body)["error"] == "busy"
        s.close()
        central.call_next("01")  # the long-polls still end normally
        assert _answer(polls[0])[0] == 200
        for p in polls:
            p.close()
    finally:
        central.stop()


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_a_trickled_body_gets_408_and_an_oversized_one_413_unread(central):
    token = central.issue_token("hall01-kiosk01", ["dispenser"])
    s = _connect(central)
    s.sendall(
        f"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode()
    )
    status, headers, body = _answer(s, timeout=SHORT.body_timeout + 3)
    assert status == 408 and "body" in json.loads(body)["message"]
    s.close()
    # Over the limit by its Content-Length: 413 before one byte of it is read.
    s = _connect(central)
    s.sendall(
        f"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Length: {server.MAX_BODY + 1}\r\n\r\n".encode()
    )
    status, headers, body = _answer(s)
    assert status == 413 and json.loads(body)["error"] == "too_large" and headers["connection"] == "close"
    s.close()
    # Chunked, so no length to refuse up front: cut when it passes the limit.
    r = requests.post(
        f"{central.url}/api/v1/events",
        data=iter([b"x" * 65536] * (server.MAX_BODY // 65536 + 2)),
        headers=_bearer(token),
        timeout=10,
    )
    assert r.status_code == 413
    # A stranger's upload is refused on its headers: 401, unread, the connection closed.
    s = _connect(central)
    s.sendall(
        b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nobody-knows-me\r\n"
        b"Content-Length: 3000000\r\n\r\n"
    )
    status, headers, _ = _answer(s)
    assert status == 401 and headers["connection"] == "close"
    s.close()


def test_one_malformed_event_is_rejected_alone(central):
    client = CentralClient(central.url, central.issue_token("hall01-kiosk01", ["dispenser"]), 0.5, 5.0)
    good = [_event("hall01-kiosk01", seq=i) for i in range(3)]
    batch = [
        good[0],
        ["not", "an", "event"],  # not an object
        _event("hall01-kiosk01", seq=2**70),  # too big for SQLite: breaks at storage, not at a check
        good[1],
        _event("hall01-kiosk01", body="text"),  # a field of the wrong type
        None,
        good[2],
    ]
    results = client.upload_events(batch)
    assert [r["status"] for r in results] == [
        "accepted",
        "rejected",
        "rejected",
        "accepted",
        "rejected",
        "rejected",
        "accepted",
    ]
    assert results[2]["reason"].startswith("invalid:")
    stored = {e["id"] for e in central.events("audit.test")}
    assert stored == {e["id"] for e in good}  # the good ones in, the broken ones not, nothing half-stored
    assert len(central.store.rejections()) == 4
    client.close()


def test_lookups_are_rate_limited_per_device_and_the_device_waits(central):
    case = central.create_case()
    a = CentralClient(central.url, central.issue_token("hall01-lookup01", ["lookup"]), 0.5, 3.0)
    b = CentralClient(central.url, central.issue_token("hall01-lookup02", ["lookup"]), 0.5, 3.0)
    for i in range(SHORT.lookup_burst):  # across receipt numbers: wrong and right alike count
        no = case["receipt_no"] if i == 0 else f"ZW2026{i:06d}"
        try:
            a.lookup_case(no, case["query_code"])
        except Exception as e:
            assert type(e).__name__ == "CaseCodeWrong"
    with pytest.raises(CentralBusy) as e:
        a.lookup_case(case["receipt_no"], case["query_code"])
    assert e.value.retry_after is not None and e.value.retry_after >= 1
    r = requests.post(
        f"{central.url}/api/v1/cases/lookup",
        json={"receipt_no": case["receipt_no"], "query_code": case["query_code"]},
        headers=_bearer(central.issue_token("hall01-lookup01", ["lookup"])),
        timeout=3,
    )
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and r.json()["error"] == "rate_limited"
    # Another kiosk is not held up by the first one's flood.
    assert b.lookup_case(case["receipt_no"], case["query_code"])["receipt_no"] == case["receipt_no"]
    a.close()
    b.close()


def test_the_rate_limit_refills():
    now = [0.0]
    rl = RateLimit(2, 3.0, clock=lambda: now[0])
    assert rl.take("a") is None and rl.take("a") is None
    assert rl.take("a") == pytest.approx(3.0)
    assert rl.take("b") is None  # per key
    now[0] = 1.5
    assert rl.take("a") == pytest.approx(1.5)
    now[0] = 3.0
    assert rl.take("a") is None


def test_polling_the_bench_pages_does_not_stall_event_uploads(central):
    dev = central.issue_token("hall01-kiosk01", ["dispenser"])
    client = CentralClient(central.url, dev, 0.5, 5.0)
    for start in range(0, 4000, 500):  # a bench central that has been running a while
        client.upload_events([_event("hall01-kiosk01", seq=start + i) for i in range(500)])
    auth = {"Authorization": "Basic " + base64.b64encode(f"x:{central.bench_password}".encode()).decode()}
    page = requests.get(f"{central.url}/bench/events.json", headers=auth, timeout=5).json()
    assert len(page) == 200 and page[0]["n"] < page[-1]["n"]  # a bounded page, oldest first
    nxt = requests.get(f"{central.url}/bench/events.json?after={page[-1]['n']}", headers=auth, timeout=5).json()
    assert nxt[0]["n"] > page[-1]["n"]
    stop = threading.Event()
    polls: list[int] = []

    def poll(path):
        with requests.Session() as s:
            while not stop.is_set():
                r = s.get(central.url + path, headers=auth, timeout=10)
                polls.append(r.status_code)
                if r.status_code == 429:
                    assert int(r.headers["Retry-After"]) >= 1

    pollers = [threading.Thread(target=poll, args=(p,)) for p in ("/bench/events.json?limit=1000", "/bench/")]
    [t.start() for t in pollers]
    took = []
    try:
        assert wait_until(lambda: len(polls) >= 4, timeout=10)
        for i in range(20):
            t = time.monotonic()
            client.upload_events([_event("hall01-kiosk01", seq=10000 + i)])
            took.append(time.monotonic() - t)
    finally:
        stop.set()
        [t.join() for t in pollers]
        client.close()
    # Before: two pollers raised an upload from 2 ms to 1.4 s, past the dispensers' online timeout.
    assert statistics.median(took) < 0.3 and max(took) < 1.0, took
    # Polled without pause, the bench pages are served a few a second, the rest told to wait.
    assert 200 in polls and 429 in polls and set(polls) <= {200, 429}

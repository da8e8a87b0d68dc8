"""CentralClient gives each thread its own requests.Session (real HTTP to the bench central)."""

from __future__ import annotations

import http.server
import threading

import pytest

from kiosk.sync.client import CaseLocked, CentralClient, CentralUnreachable


def _open_pools(session) -> int:
    return sum(len(adapter.poolmanager.pools) for adapter in session.adapters.values())


def test_each_thread_gets_its_own_session_and_close_closes_them_all(central):
    client = CentralClient(central.url, central.issue_token("kiosk-1"), 2.0, 5.0)
    seen: dict[str, tuple] = {}
    both_called = threading.Barrier(2, timeout=10)

    def call(name: str) -> None:
        who = client.whoami()
        mine = client.session
        # Both threads hold their session at once, so neither can be a leftover of the other.
        both_called.wait()
        seen[name] = (mine, who, client.session is mine)

    threads = [threading.Thread(target=call, args=(n,)) for n in ("sync", "ui")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    (s1, who1, stable1), (s2, who2, stable2) = seen["sync"], seen["ui"]
    assert s1 is not s2
    assert stable1 and stable2  # a thread keeps its session across calls
    assert who1["device_id"] == who2["device_id"] == "kiosk-1"
    for s in (s1, s2):  # same settings on every thread's session
        assert s.headers["Authorization"].startswith("Bearer ") and "hall-kiosk/" in s.headers["User-Agent"]
        assert _open_pools(s) == 1  # its kept-alive connection to the central
    assert client.session not in (s1, s2)  # this (third) thread gets its own too

    client.close()
    assert _open_pools(s1) == _open_pools(s2) == _open_pools(client.session) == 0


class _Answers(http.server.BaseHTTPRequestHandler):
    """A central that answers every request with one fixed status and JSON body."""

    status = 200
    body = b"[]"

    def _answer(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def answering():
    servers = []

    def serve(status: int, body: bytes) -> CentralClient:
        handler = type("Handler", (_Answers,), {"status": status, "body": body})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return CentralClient(f"http://127.0.0.1:{server.server_port}", "token", 2.0, 2.0)

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_an_answer_that_is_not_a_json_object_is_a_broken_answer(answering):
    with pytest.raises(CentralUnreachable, match="not a JSON object"):
        answering(200, b"[1, 2]").whoami()


def test_a_refusal_whose_body_is_not_an_object_keeps_its_meaning(answering):
    with pytest.raises(CaseLocked) as e:
        answering(423, b'["locked"]').lookup_case("ZW2026000101", "123456")
    assert e.value.body == {} and e.value.retry_after is None


def test_a_trickling_answer_ends_at_the_total_deadline_not_per_read(central):
    import time

    client = CentralClient(central.url, central.issue_token("hall01-lookup01"), connect_timeout=0.5, read_timeout=0.4)
    assert client.whoami()["device_id"] == "hall01-lookup01"  # a kept-alive connection, as in service
    central.inject("trickle", delay=0.05, path="/api/v1/whoami")  # a byte per 0.05 s, far under the 0.4 s read timeout
    start = time.monotonic()
    with pytest.raises(CentralUnreachable, match=r"did not finish answering GET /whoami within 0.9 s"):
        client.whoami()
    took = time.monotonic() - start
    assert took < 0.9 + 0.3, f"{took:.2f} s"
    # the next call on this thread works on a fresh connection, and its own deadline
    assert client.whoami()["device_id"] == "hall01-lookup01"
    client.close()

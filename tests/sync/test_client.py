"""CentralClient gives each thread its own requests.Session (real HTTP to the bench central)."""

from __future__ import annotations

import threading

from kiosk.sync.client import CentralClient


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

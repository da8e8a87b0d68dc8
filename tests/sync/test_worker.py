"""The sync worker against the bench central over real HTTP: outages, faults, exactly-once."""

from __future__ import annotations

import time

from kiosk.central.server import BenchCentral
from kiosk.core import keys
from kiosk.sync.client import CentralClient
from tests.helpers import wait_until


def central_ids(central) -> list[str]:
    return [e["id"] for e in central.events()]


def assert_exactly_once(device, ids):
    got = central_ids(device.central)
    assert sorted(got) == sorted(ids), "each event must arrive exactly once"
    stats = device.ledger.outbox_stats()
    assert stats["pending"] == 0 and stats["delivered"] == len(ids) and stats["dead"] == 0


def test_central_down_events_pile_up_then_each_arrives_exactly_once(tmp_path, device):
    central = device.central
    port = central.port
    central.stop()
    w = device.worker(batch_size=40)
    ids = device.add_events(60)
    for _ in range(3):
        s = w.run_once()
        assert not s["ok"] and s["pending"] == 60
    assert w.state()["status"] == "offline"
    assert "cannot reach" in w.state()["last_error"]
    # Nothing is lost and each attempt is recorded against the events.
    assert all(ev.attempts == 3 for ev in device.ledger.pending_events(limit=100)[:40])

    back = BenchCentral(central.data_dir, port=port).start()  # same data, same port
    try:
        device.central = back
        ids += device.add_events(5)
        s = w.run_once()
        assert s["ok"] and s["delivered"] == 65 and s["duplicates"] == 0
        assert_exactly_once(device, ids)
        assert w.state()["status"] == "online" and device.ledger.get_meta(keys.LAST_SYNC)
    finally:
        back.stop()


def test_commit_then_drop_gives_no_duplicate(device):
    central = device.central
    ids = device.add_events(30)
    central.inject("drop", path="/api/v1/events")
    w = device.worker()
    s = w.run_once()
    assert not s["ok"] and s["pending"] == 30  # the device never heard the answer
    assert len(central.events()) == 30  # but the central committed
    s = w.run_once()
    assert s["ok"] and s["duplicates"] == 30 and s["delivered"] == 0
    assert_exactly_once(device, ids)


def test_500s_with_retry_after_are_honoured_then_recovered(device):
    central = device.central
    ids = device.add_events(10)
    central.inject("error", count=2, status=503, retry_after=2, path="/api/v1/events")
    w = device.worker()
    s = w.run_once()
    assert not s["ok"] and "503" in s["error"]
    assert w.state()["next_retry_s"] >= 1.9  # Retry-After beats the 0.5 s cap
    assert not w.run_once()["ok"]
    assert w.run_once()["ok"]
    assert_exactly_once(device, ids)


def test_a_429_is_a_pause_the_central_asked_for_not_an_outage(device):
    central = device.central
    ids = device.add_events(5)
    central.inject("error", count=1, status=429, retry_after=3, path="/api/v1/events")
    w = device.worker()
    s = w.run_once()
    assert not s["ok"] and "429" in s["error"]
    st = w.state()
    assert st["status"] == "busy" and st["next_retry_s"] >= 2.9  # as long as it said, shown as busy
    assert device.ledger.outbox_stats()["pending"] == 5 and device.ledger.outbox_stats()["dead"] == 0
    assert w.run_once()["ok"] and w.state()["status"] == "online"
    assert_exactly_once(device, ids)


def test_backoff_grows_with_full_jitter_up_to_the_cap(device):
    device.central.stop()
    w = device.worker(backoff_base=0.2, backoff_cap=3.0, min_retry_gap=0.0)
    delays = []
    for _ in range(12):
        w.run_once(pull=False)
        delays.append(w.state()["next_retry_s"])
    assert all(0 <= d <= 3.0 for d in delays)
    assert max(delays[6:]) > max(delays[:2])  # it grows
    assert len({round(d, 3) for d in delays}) > 6  # and it is jittered, not lock-step


def test_slow_answer_times_out_then_no_duplicate(tmp_path, central):
    from tests.sync.conftest import Device

    d = Device(tmp_path, central, read_timeout=0.3)
    try:
        ids = d.add_events(8)
        central.inject("slow", delay=1.0, path="/api/v1/events")
        w = d.worker()
        s = w.run_once(pull=False)
        assert not s["ok"] and "in time" in s["error"]
        # The server finishes and commits meanwhile: wait until it has, not a guessed time.
        assert wait_until(lambda: len(central.events()) == 8, 10)
        s = w.run_once(pull=False)
        assert s["ok"] and s["duplicates"] == 8
        assert_exactly_once(d, ids)
    finally:
        d.close()


def test_malformed_json_answer_is_a_failure_then_recovery(device):
    ids = device.add_events(5)
    device.central.inject("malformed", path="/api/v1/events")
    w = device.worker()
    s = w.run_once(pull=False)
    assert not s["ok"] and "not JSON" in s["error"]
    assert device.ledger.outbox_stats()["pending"] == 5
    assert w.run_once(pull=False)["ok"]
    assert_exactly_once(device, ids)


def test_wrong_token_is_a_clear_error_and_loses_nothing(device):
    ids = device.add_events(4)
    bad = CentralClient(device.central.url, "not-a-valid-token-at-all", 0.5, 2.0)
    w = device.worker()
    w.client = bad
    s = w.run_once()
    assert not s["ok"]
    st = w.state()
    assert st["status"] == "auth_error" and "token" in st["last_error"]
    assert device.ledger.outbox_stats()["pending"] == 4 and device.central.events() == []
    w.client = device.client  # technician puts the right token in
    assert w.run_once()["ok"]
    assert_exactly_once(device, ids)


def test_rejected_event_goes_to_dead_letters_with_reason(device):
    good = device.add_events(3)
    bad = device.add_events(1, kind="weird.kind")
    incomplete = device.add_events(1, kind="rating.submitted", body=device.rating(level=1))
    s = device.worker().run_once(pull=False)
    assert s["ok"] and s["delivered"] == 3 and s["rejected"] == 2
    dead = {d["uuid"]: d for d in device.ledger.dead_letters()}
    assert set(dead) == set(bad + incomplete)
    assert dead[bad[0]]["reason"].startswith("unknown_kind")
    assert "reason" in dead[incomplete[0]]["reason"]
    assert sorted(central_ids(device.central)) == sorted(good)
    assert len(device.central.store.rejections()) == 2


def test_same_id_different_body_is_a_conflict(device):
    ev = {
        "id": "6f1c1d7e-7a0c-4c8e-9d55-2c9d8f0a1b22",
        "kind": "rating.submitted",
        "device_id": device.id,
        "created_at": "2026-05-12T09:30:00+08:00",
        "boot_id": "b1",
        "seq": 1,
        "body": device.rating(level=5),
    }
    assert device.client.upload_events([ev])[0]["status"] == "accepted"
    assert device.client.upload_events([ev])[0]["status"] == "duplicate"
    changed = dict(ev, body=dict(ev["body"], level=4))
    r = device.client.upload_events([changed])[0]
    assert r["status"] == "rejected" and r["reason"].startswith("conflict")
    assert device.central.events()[0]["body"]["level"] == 5
    other = dict(ev, id="7f1c1d7e-7a0c-4c8e-9d55-2c9d8f0a1b22", device_id="someone-else")
    assert "device_id" in device.client.upload_events([other])[0]["reason"]


def test_worker_thread_resumes_within_seconds_when_central_returns(device):
    central = device.central
    port = central.port
    central.stop()
    w = device.worker(interval=30, backoff_base=0.2, backoff_cap=60)
    seen = []
    w.add_listener(lambda s: seen.append(s["status"]))
    w.start()
    try:
        ids = device.add_events(20)
        w.wake()
        assert wait_until(lambda: w.state()["status"] == "offline", 5)
        back = BenchCentral(central.data_dir, port=port).start()
        device.central = back
        try:
            ids += device.add_events(1)
            t0 = time.monotonic()
            w.wake()  # a new event: try now, not after the backoff
            assert wait_until(
                lambda: w.state()["status"] == "online" and not device.ledger.outbox_stats()["pending"], 5
            )
            assert time.monotonic() - t0 < 3
            assert_exactly_once(device, ids)
            assert "offline" in seen and seen[-1] == "online"
        finally:
            back.stop()
    finally:
        w.stop()
        assert not w._thread.is_alive()


def test_wake_sends_a_new_event_at_once_while_online(device):
    w = device.worker(interval=60)
    w.start()
    try:
        assert wait_until(lambda: w.state()["status"] == "online", 5)
        ids = device.add_events(1)
        t0 = time.monotonic()
        w.wake()
        assert wait_until(lambda: device.central.events(), 5)
        assert time.monotonic() - t0 < 1.5  # not after the 60 s interval
        assert central_ids(device.central) == ids
    finally:
        w.stop()


def test_pulls_config_staff_card_and_photo_with_etags_and_sends_health(device):
    w = device.worker(window="03", pull_queue=True, health=lambda: {"printer": "ok", "paper": "near_end"})
    device.add_events(2)
    s = w.run_once()
    assert s["pulled"] == {"config": "updated", "staff": "updated", "queue": "updated"}
    cfg = device.cache.get(keys.CENTRAL_CONFIG)
    assert [c["code"] for c in cfg["categories"]] == ["A", "B", "C", "D"]
    assert cfg["rating_reasons"]["version"]
    card = device.cache.get(keys.staff_card("03"))["card"]
    assert card["window"] == "03" and card["employee_no"]
    import base64

    photo = device.cache.get(keys.staff_photo(card["staff_id"]))
    assert base64.b64decode(photo["data_b64"]).startswith(b"\x89PNG")
    s = w.run_once()
    assert s["pulled"]["config"] == "not_modified" and s["pulled"]["staff"] == "not_modified"
    device.central.store.update_device_config(messages=[{"id": "x", "zh": "今日闭馆", "en": "Closed today"}])
    device.central.store.set_staff(card["staff_id"], stars=2)
    s = w.run_once()
    assert s["pulled"]["config"] == "updated" and s["pulled"]["staff"] == "updated"
    assert device.cache.get(keys.CENTRAL_CONFIG)["messages"][0]["en"] == "Closed today"
    assert device.cache.get(keys.staff_card("03"))["card"]["stars"] == 2
    hb = device.central.store.latest_heartbeats()[0]
    assert hb["device_id"] == device.id
    h = hb["health"]
    assert h["printer"] == "ok" and h["paper"] == "near_end"
    assert h["outbox"]["pending"] == 0 and h["last_sync"] and h["disk_free_bytes"] > 0 and h["version"]


def test_unanswered_events_in_a_batch_stay_pending(device):
    """A central that answers only part of a batch must not get the rest marked delivered."""
    ids = device.add_events(4)
    device.central.inject("partial", path="/api/v1/events")  # answers only the first half
    w = device.worker()
    s = w.run_once(pull=False)
    assert not s["ok"] and s["delivered"] == 2 and s["pending"] == 2
    s = w.run_once(pull=False)
    assert s["ok"] and s["duplicates"] == 2 and s["delivered"] == 0
    assert_exactly_once(device, ids)


def test_a_refused_heartbeat_is_not_an_outage(device):
    """Health the central will not take (a wrong type) must not stop delivery or mark the device offline."""
    ids = device.add_events(2)
    w = device.worker(health=lambda: {"uptime_s": "not a number", "printer": {"state": "ok", "paper": "ok"}})
    s = w.run_once()
    assert s["ok"] and s["heartbeat"].startswith("refused") and w.state()["status"] == "online"
    assert_exactly_once(device, ids)
    w.health = lambda: {"printer": {"state": "ok", "paper": "near_end"}}  # objects are fine
    assert w.run_once()["heartbeat"] is True
    assert device.central.store.latest_heartbeats()[0]["health"]["printer"]["paper"] == "near_end"


def test_status_says_apart_whether_upload_or_download_failed(device):
    """A delivered outbox with a failing config pull is a download problem, not an upload one."""
    device.add_events(2)
    w = device.worker()
    device.central.inject("error", status=503, path="/api/v1/config")
    s = w.run_once()
    st = w.status()
    assert s["delivered"] == 2 and not s["ok"]
    assert st.upload_error is None and st.download_error and st.status == "offline"
    device.central.inject("error", status=503, path="/api/v1/events")
    device.add_events(1)
    w.run_once()
    st = w.status()
    assert st.upload_error and device.ledger.outbox_stats()["pending"] == 1
    assert w.run_once()["ok"] and w.status().upload_error is None and w.status().download_error is None

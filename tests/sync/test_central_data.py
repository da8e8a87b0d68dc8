"""What the central sends is checked before it is used (issue 15.4).

The bench central serves bad documents over real HTTP; the device keeps its
last good config, says what it refused in the heartbeat, and an out-of-service
device that keeps pulling heals when the central's config is corrected.
"""

from __future__ import annotations

import copy

import pytest

from kiosk.core import keys
from kiosk.core.bootguard import BootGuard, OutOfServiceRuntime
from kiosk.core.config import load_config
from kiosk.sync import validate
from kiosk.sync.pulls import Pulls
from tests.helpers import write_config


def heartbeat(central, device_id):
    return next(h["health"] for h in central.store.latest_heartbeats() if h["device_id"] == device_id)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"opening_hours": {"days": ["1", "2"], "hours": ["08:30-12:00"]}}, "config.opening_hours.days[0]"),
        ({"opening_hours": {"days": [1, 2], "hours": [830]}}, "config.opening_hours.hours[0]"),
        ({"opening_hours": {"days": [1, 2], "hours": ["17:00-08:30"]}}, "config.opening_hours.hours[0]"),
        ({"priority": {"prefix": 7, "number_min": 1, "number_max": 99}}, "config.priority.prefix"),
        ({"categories": []}, "config.categories"),
        ({"rating_reasons": {"version": "v2", "reasons": [{"code": "A01", "zh": "慢"}]}}, "reasons[0].en"),
        ({"messages": [{"id": "x", "zh": None, "en": "Closed"}]}, "config.messages[0].zh"),
    ],
)
def test_a_bad_config_is_refused_the_good_one_kept_and_reported(device, change, field):
    w = device.worker()
    assert w.run_once()["pulled"]["config"] == "updated"
    good = device.cache.get(keys.CENTRAL_CONFIG)
    assert validate.check_central_config(good) == []

    device.central.store.update_device_config(**change)
    s = w.run_once()
    assert s["ok"] and s["pulled"]["config"].startswith("rejected: ") and field in s["pulled"]["config"]
    assert device.cache.get(keys.CENTRAL_CONFIG) == good  # the last good one stays in use
    rejected = heartbeat(device.central, device.id)["central_data"]["rejected"]
    assert any(field in p for p in rejected["config"]["problems"])

    # Asked again with the good one's ETag, the central still sends the bad one: still refused.
    assert w.run_once()["pulled"]["config"].startswith("rejected: ")
    # Corrected at the central: taken on the next pull, and the report is cleared.
    device.central.store.update_device_config(**{k: good[k] for k in change})
    assert w.run_once()["pulled"]["config"] in ("updated", "not_modified")
    assert heartbeat(device.central, device.id)["central_data"]["rejected"] == {}


def test_numeric_category_prefix_is_refused(device):
    w = device.worker()
    w.run_once()
    cats = copy.deepcopy(device.cache.get(keys.CENTRAL_CONFIG)["categories"])
    cats[1]["prefix"] = "2"
    device.central.store.update_device_config(categories=cats)
    assert "config.categories[1].prefix" in w.run_once()["pulled"]["config"]
    assert device.cache.get(keys.CENTRAL_CONFIG)["categories"][1]["prefix"] == "B"


def test_a_bad_config_cached_by_an_older_firmware_is_dropped(device):
    device.cache.set(keys.CENTRAL_CONFIG, {"opening_hours": {"days": ["1"], "hours": ["08:30-12:00"]}})
    device.cache.set(keys.CENTRAL_CONFIG_ETAG, '"old"')
    p = Pulls(device.cache, device.client)
    assert device.cache.get(keys.CENTRAL_CONFIG) is None and device.cache.get(keys.CENTRAL_CONFIG_ETAG) is None
    assert p.rejected()["config"]["problems"]
    assert p.pull_config() == "updated" and p.rejected() == {}


def test_bad_queue_and_staff_answers_are_not_cached(device):
    w = device.worker(window="03", pull_queue=True)
    w.run_once()
    queue = device.cache.get(keys.QUEUE_STATUS)
    card = device.cache.get(keys.staff_card("03"))["card"]
    assert validate.check_queue_status(queue) == [] and validate.check_staff_card(card) == []
    # The central's staff record changes into one without a name: refused, the old card stays.
    device.central.store.set_staff(card["staff_id"], name="")
    s = w.run_once()
    assert s["pulled"]["staff"].startswith("rejected: staff card.name")
    assert device.cache.get(keys.staff_card("03"))["card"]["name"] == card["name"]
    # The problem names the field, never the person's data.
    assert card["name"] not in str(heartbeat(device.central, device.id)["central_data"])


def test_documents_from_the_bench_central_pass_and_mutants_fail(central):
    """Each validator against the real answers of the bench central, then broken copies of them."""
    session = central.store.window_session("03")
    assert validate.check_window_session(session) == []
    assert validate.check_window_session({**session, "state": "open"})
    assert validate.check_window_session({**session, "rev": "7"})
    assert validate.check_window_session({**session, "state": "serving", "session_id": None})
    q = central.store.queue_status()
    assert validate.check_queue_status(q) == []
    bad_q = copy.deepcopy(q)
    bad_q["categories"][0]["waiting"] = "3"
    assert validate.check_queue_status(bad_q) == [
        "queue.categories[0].waiting: must be a whole number from 0 to 100000 (got '3')"
    ]


def test_out_of_service_keeps_pulling_and_a_corrected_config_heals(tmp_path, central):
    from kiosk.app import _keep_syncing

    token = central.issue_token("hall01-kiosk01")
    path = write_config(tmp_path, {"central": {"url": central.url, "allow_http": True}}, token=token)
    cfg = load_config(path)
    guard = BootGuard(cfg.storage.dir, max_crashed=1)
    guard.begin()
    tripped = BootGuard(cfg.storage.dir, max_crashed=1).begin()
    assert tripped
    central.store.update_device_config(opening_hours={"days": ["1"], "hours": ["08:30-12:00"]})
    rt = OutOfServiceRuntime(cfg, tripped, guard)
    _keep_syncing(rt, guard)
    try:
        assert rt.sync is not None
        s = rt.sync.run_once()
        assert s["ok"] and s["pulled"]["config"].startswith("rejected: ")
        assert not rt.healed.is_set() and guard.state()["recent_unhealthy_starts"] >= 1
        h = heartbeat(central, "hall01-kiosk01")
        assert "crash" in h["out_of_service"] and h["central_data"]["rejected"]["config"]
        central.store.update_device_config(opening_hours={"days": [1, 2, 3], "hours": ["08:30-12:00"]})
        assert rt.sync.run_once()["pulled"]["config"] == "updated"
        assert rt.healed.is_set() and guard.state()["recent_unhealthy_starts"] == 0
    finally:
        rt.stop()

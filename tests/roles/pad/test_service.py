"""The 好差评 rules in RatingService, against a real ledger on disk (no Kivy)."""

import json
import logging
import sqlite3
import subprocess
import sys
import threading

import pytest

from kiosk.core import keys
from kiosk.core.cache import Cache
from kiosk.core.config import load_config
from kiosk.core.ledger import Ledger
from kiosk.core.privacy import mask_phone
from kiosk.roles.pad.chain import GENESIS
from kiosk.roles.pad.service import RatingError, RatingService, valid_phone
from tests.helpers import ROOT, wait_until, write_config


class FakeClock:
    """Monotonic time the test moves by hand (the service takes a clock, like a pin factory)."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def cfg(tmp_path):
    return load_config(write_config(tmp_path, {"device": {"roles": ["pad"]}}))


@pytest.fixture
def svc(cfg):
    ledger = Ledger(cfg.storage_dir / keys.LEDGER_FILE)
    cache = Cache(cfg.storage_dir / keys.CACHE_FILE)
    s = RatingService(cfg, ledger, cache, clock=FakeClock())
    yield s
    s.close()
    cache.close()
    ledger.close()


def rows(svc):
    return [dict(r) | {"body": json.loads(r["body"])} for r in svc.ledger.query("SELECT * FROM ratings ORDER BY seq")]


def events(svc):
    return [(r["kind"], json.loads(r["body"])) for r in svc.ledger.query("SELECT kind, body FROM outbox ORDER BY seq")]


def test_no_rating_without_a_session(svc):
    with pytest.raises(RatingError) as e:
        svc.submit(5)
    assert e.value.code == "no_session"
    assert rows(svc) == [] and events(svc) == []


def test_good_rating_is_one_chained_record_with_its_outbox_event(svc):
    svc.open_session(
        "S-1",
        origin="central",
        staff_id="S1001",
        ticket="A012",
        case_no="330100-2025-000123",
        item_code="11330100MB0001",
        item_version="3",
        started_at="2025-06-02T09:00:00+08:00",
    )
    rec = svc.submit(4)
    [row] = rows(svc)
    body = row["body"]
    assert row["session_id"] == "S-1" and row["uuid"] == body["uuid"] == rec["uuid"]
    assert body["level"] == 4 and body["level_text"] == "满意" and body["outcome"] == "rated"
    assert body["channel"] == "PJQ" and body["window"] == "01" and body["staff_id"] == "S1001"
    assert body["ticket"] == "A012" and body["case_no"] == "330100-2025-000123"
    assert body["item_code"] == "11330100MB0001" and body["item_version"] == "3"
    assert body["session_started_at"] == "2025-06-02T09:00:00+08:00" and body["decided_at"]
    assert body["device_id"] == "demo-kiosk"
    assert body["prev_hash"] == GENESIS == row["prev_hash"] and body["chain_index"] == 0
    [(kind, ev)] = events(svc)
    assert kind == "rating.submitted" and ev["uuid"] == body["uuid"] and ev["hash"] == row["hash"]
    assert svc.current() is None
    assert svc.ledger.get_meta(keys.RATING_CHAIN_HEAD) == f"1:{row['hash']}"


def test_second_record_chains_to_the_first(svc):
    svc.open_session("S-1", origin="central")
    svc.submit(5)
    svc.open_session("S-2", origin="central")
    svc.submit(3)
    a, b = rows(svc)
    assert b["prev_hash"] == a["hash"] and b["body"]["chain_index"] == 1


def test_bad_rating_needs_a_known_reason_and_records_its_version(svc):
    svc.open_session("S-1", origin="central")
    with pytest.raises(RatingError) as e:
        svc.submit(2)
    assert e.value.code == "reason_needed"
    with pytest.raises(RatingError) as e:
        svc.submit(1, ["NOPE"])
    assert e.value.code == "bad_reason"
    assert rows(svc) == []  # refused choices leave the session open
    rec = svc.submit(1, ["R03", "R04", "R03"])
    assert [r["code"] for r in rec["reasons"]] == ["R03", "R04"]
    assert rec["reasons_version"] == "GB/T 39734-2020 A.1"


def test_reasons_come_from_the_central_list_when_cached(svc):
    svc.cache.set(
        keys.CENTRAL_CONFIG,
        {
            "rating_reasons": {
                "version": "central-7",
                "reasons": [{"code": "A06", "zh": "排队等候时间长", "en": "Long waiting time"}],
            }
        },
    )
    assert svc.reasons().version == "central-7"
    svc.open_session("S-1", origin="central")
    with pytest.raises(RatingError):
        svc.submit(2, ["R03"])  # a config code is not on the central list
    rec = svc.submit(2, ["A06"])
    assert rec["reasons_version"] == "central-7"


def test_good_rating_takes_no_reasons_or_phone(svc):
    svc.open_session("S-1", origin="central")
    with pytest.raises(RatingError):
        svc.submit(5, ["R01"])
    with pytest.raises(RatingError):
        svc.submit(4, [], "13812345678")


def test_phone_is_validated_stored_and_never_logged(svc, caplog):
    caplog.set_level(logging.DEBUG)
    svc.open_session("S-1", origin="central")
    for bad in ("12345", "23812345678", "1381234567a", "138123456789"):
        with pytest.raises(RatingError) as e:
            svc.submit(2, ["R01"], bad)
        assert e.value.code == "bad_phone"
    rec = svc.submit(2, ["R01"], "13812345678")
    assert rows(svc)[0]["body"]["phone"] == "13812345678"
    assert "13812345678" not in caplog.text and "12345678" not in caplog.text
    assert rec["phone"] == "13812345678"


def test_phone_rules_and_mask():
    assert valid_phone("13812345678") and valid_phone("057187654321") and valid_phone("0108765432")
    assert not valid_phone("") and not valid_phone("1381234567") and not valid_phone("+8613812345678")
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("057187654321") == "********4321"  # as everywhere: tests/core/test_privacy.py
    assert "5678" not in mask_phone("5678")


def test_one_rating_per_session(svc):
    svc.open_session("S-1", origin="central")
    svc.submit(5)
    with pytest.raises(RatingError):
        svc.submit(1, ["R01"])  # the session is over
    assert svc.open_session("S-1", origin="central") is None  # and is never reopened
    assert len(rows(svc)) == 1


def test_ledger_refuses_a_second_outcome_for_a_session_even_past_the_service(svc):
    svc.open_session("S-1", origin="central")
    svc.submit(5)
    # Forge a session object with the same id, as a bug or a race would.
    svc._session = svc.open_session("S-X", origin="central")
    svc._session.session_id = "S-1"
    with pytest.raises(RatingError) as e:
        svc.submit(3, session_id="S-1")
    assert e.value.code == "already_rated"
    assert len(rows(svc)) == 1 and len(events(svc)) == 1


def test_time_out_records_not_rated_never_a_default(svc):
    svc.open_session("S-1", origin="central")
    assert svc.expire_due() is False
    svc.clock.t += svc.rating_seconds
    with pytest.raises(RatingError) as e:
        svc.submit(5)
    assert e.value.code == "expired"
    assert svc.expire_due() is True
    assert svc.expire_due() is False
    [row] = rows(svc)
    assert row["body"]["outcome"] == "not_rated" and row["body"]["level"] is None
    assert row["body"]["not_rated_reason"] == "timeout"
    assert [k for k, _ in events(svc)] == ["rating.not_rated"]
    assert svc.open_session("S-1", origin="central") is None


def test_next_service_ending_first_records_the_open_one_as_not_rated(svc):
    svc.open_session("S-1", origin="central")
    svc.open_session("S-2", origin="central")
    assert svc.current().session_id == "S-2"
    [row] = rows(svc)
    assert row["session_id"] == "S-1" and row["body"]["not_rated_reason"] == "superseded"


def test_clerk_button_opens_a_local_session_only_offline_and_only_one(svc):
    svc.store_card({"staff_id": "S1001", "name": "王丽华", "employee_no": "10201", "stars": 5}, None)
    svc.set_online(True)
    assert svc.clerk_button() is None
    svc.set_online(False)
    s = svc.clerk_button()
    assert s is not None and s.origin == "clerk" and s.staff_id == "S1001" and s.window == "01"
    assert svc.clerk_button() is None  # cannot restart a session a citizen is rating
    svc.submit(4)
    assert rows(svc)[0]["body"]["session_origin"] == "clerk"


def test_paused_window_and_a_finished_service_from_the_window_session(svc):
    seen = []
    svc.subscribe(lambda what, st: seen.append((what, st.paused, st.session and st.session.session_id)))
    svc.on_window_session({"state": "paused", "rev": 3})
    assert svc.state().paused
    assert svc.clerk_button() is None  # 暂停服务: nothing to rate
    svc.on_window_session({"state": "serving", "rev": 4, "session_id": "abc"})
    assert not svc.state().paused and svc.current() is None
    svc.on_window_session(
        {"state": "ended", "rev": 5, "session_id": "abc", "ticket": "A001", "staff_id": "S1001", "case_no": None}
    )
    assert svc.current().session_id == "abc" and svc.current().ticket == "A001"
    assert ("invite", False, "abc") in seen


def test_an_old_ended_session_seen_at_start_is_not_invited(svc):
    svc.on_window_session(
        {"state": "ended", "rev": 9, "session_id": "old", "ended_at": "2020-01-01T10:00:00+08:00"}, first=True
    )
    assert svc.current() is None


def test_concurrent_submits_record_once(svc):
    svc.open_session("S-1", origin="central")
    results = []

    def hit():
        try:
            results.append(svc.submit(5, via="keypad")["uuid"])
        except RatingError as e:
            results.append(e.code)

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(rows(svc)) == 1
    assert sum(1 for r in results if r not in ("no_session", "already_rated")) == 1


def run_verify(config):
    return subprocess.run(
        [sys.executable, "-m", "kiosk", "pad-verify", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def chain(tmp_path):
    """A config and a ledger holding five chained records."""
    config = write_config(tmp_path, {"device": {"roles": ["pad"]}})
    cfg = load_config(config)
    ledger = Ledger(cfg.storage_dir / keys.LEDGER_FILE)
    cache = Cache(cfg.storage_dir / keys.CACHE_FILE)
    s = RatingService(cfg, ledger, cache, clock=FakeClock())
    for i, lv in enumerate((5, 4, 2, 3, 1)):
        s.open_session(f"S-{i}", origin="central")
        s.submit(lv, ["R01"] if lv <= 2 else [])
    s.close()
    cache.close()
    ledger.close()
    return config, cfg.storage_dir / keys.LEDGER_FILE


def test_verify_ratings_passes_an_intact_chain(chain):
    r = run_verify(chain[0])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok: 5 record(s)" in r.stdout


def test_verify_ratings_names_an_edited_record(chain):
    config, db = chain
    conn = sqlite3.connect(db)
    body = json.loads(conn.execute("SELECT body FROM ratings WHERE seq = 3").fetchone()[0])
    body["level"] = 5  # a 差评 turned into a 好评
    conn.execute("UPDATE ratings SET body = ? WHERE seq = 3", (json.dumps(body, ensure_ascii=False),))
    conn.commit()
    conn.close()
    r = run_verify(config)
    assert r.returncode == 1
    assert "record seq 3" in r.stdout and "edited" in r.stdout
    assert "record seq 2" not in r.stdout and "record seq 4" not in r.stdout


def test_verify_ratings_names_the_record_after_a_deleted_one(chain):
    config, db = chain
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM ratings WHERE seq = 2")
    conn.commit()
    conn.close()
    r = run_verify(config)
    assert r.returncode == 1
    assert "record seq 3" in r.stdout and "deleted" in r.stdout


def test_verify_ratings_catches_the_newest_record_deleted(chain):
    config, db = chain
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM ratings WHERE seq = 5")
    conn.commit()
    conn.close()
    r = run_verify(config)
    assert r.returncode == 1 and "chain head" in r.stdout


def test_verify_ratings_catches_a_rehashed_edit(chain):
    """Editing a body and fixing its own hash still breaks the link to the next record."""
    from kiosk.roles.pad.chain import canonical, record_hash

    config, db = chain
    conn = sqlite3.connect(db)
    body = json.loads(conn.execute("SELECT body FROM ratings WHERE seq = 3").fetchone()[0])
    body["level"] = 5
    conn.execute("UPDATE ratings SET body = ?, hash = ? WHERE seq = 3", (canonical(body), record_hash(body)))
    conn.commit()
    conn.close()
    r = run_verify(config)
    assert r.returncode == 1 and "record seq 4" in r.stdout


# -- the end of the time: the choice so far is recorded (issue 15.2) ----------------


def codes(svc):
    return sorted(svc.reasons().codes())


def test_a_bad_rating_with_its_reason_chosen_but_not_submitted_is_recorded_as_auto_submitted(svc):
    svc.open_session("S-1", origin="central")
    svc.choose_level(2)
    svc.choose_reasons([codes(svc)[0]])
    svc.choose_phone("13912345678")
    svc.clock.t += svc.rating_seconds
    assert svc.expire_due() is True
    [row] = rows(svc)
    b = row["body"]
    assert (b["outcome"], b["level"], b["auto_submitted"], b["via"]) == ("rated", 2, True, "auto")
    assert [r["code"] for r in b["reasons"]] == [codes(svc)[0]] and b["phone"] == "13912345678"
    assert b["ended_by"] == "timeout"
    assert [k for k, _ in events(svc)] == ["rating.submitted"]


def test_a_good_level_chosen_on_the_keypad_is_recorded_at_the_end(svc):
    svc.open_session("S-1", origin="central")
    svc.choose_level(4)
    svc.clock.t += svc.rating_seconds
    assert svc.expire_due() is True
    [row] = rows(svc)
    assert (row["body"]["outcome"], row["body"]["level"], row["body"]["auto_submitted"]) == ("rated", 4, True)


def test_a_bad_level_without_its_reason_is_recorded_as_exactly_that(svc):
    svc.open_session("S-1", origin="central")
    svc.choose_level(1)
    svc.clock.t += svc.rating_seconds
    assert svc.expire_due() is True
    [row] = rows(svc)
    b = row["body"]
    assert (b["outcome"], b["level"], b["reasons"], b["missing"]) == ("incomplete", 1, [], "reasons")
    assert [k for k, _ in events(svc)] == ["rating.incomplete"]


def test_a_level_taken_back_is_not_recorded(svc):
    svc.open_session("S-1", origin="central")
    svc.choose_level(2)
    svc.choose_level(None)
    svc.clock.t += svc.rating_seconds
    assert svc.expire_due() is True
    [row] = rows(svc)
    assert row["body"]["outcome"] == "not_rated" and row["body"]["level"] is None


def test_the_superseded_session_keeps_its_choice(svc):
    svc.open_session("S-1", origin="central")
    svc.choose_level(2)
    svc.choose_reasons(codes(svc)[:2])
    svc.open_session("S-2", origin="central")
    [row] = rows(svc)
    assert (row["session_id"], row["body"]["level"], row["body"]["ended_by"]) == ("S-1", 2, "superseded")
    assert len(row["body"]["reasons"]) == 2


def test_activity_extends_the_time_up_to_the_maximum(svc):
    assert svc.rating_max_seconds == 180 and svc.rating_seconds == 60
    svc.open_session("S-1", origin="central")
    for _ in range(3):  # touched every 50 s: 150 s in all, past the 60 s of one window
        svc.clock.t += 50
        assert svc.activity("S-1") is True
        assert svc.expire_due() is False
    svc.clock.t += 29  # 179 s since the start: still open
    assert svc.activity("S-1") is True
    assert svc.current().seconds_left(svc.clock()) == pytest.approx(1.0)
    svc.clock.t += 1  # 180 s: the maximum, touching or not
    assert svc.activity("S-1") is False
    assert svc.expire_due() is True
    with pytest.raises(RatingError):
        svc.submit(5, session_id="S-1")


def test_without_activity_the_session_ends_after_rating_seconds(svc):
    svc.open_session("S-1", origin="central")
    svc.clock.t += svc.rating_seconds - 1
    assert svc.expire_due() is False
    svc.clock.t += 1
    assert svc.activity("S-1") is False  # a late touch does not reopen it
    assert svc.expire_due() is True


def test_max_shorter_than_the_window_is_refused_by_the_config(tmp_path):
    from kiosk.core.config import ConfigError

    with pytest.raises(ConfigError) as e:
        pad = {"rating_seconds": 90, "rating_max_seconds": 60}
        load_config(write_config(tmp_path, {"device": {"roles": ["pad"]}, "pad": pad}))
    assert "pad.rating_max_seconds" in str(e.value)


def test_storage_refusing_the_outcome_keeps_it_and_retries(svc):
    svc.open_session("S-1", origin="central")
    svc.choose_level(2)
    svc.choose_reasons([codes(svc)[0]])
    svc.clock.t += svc.rating_seconds
    conn = svc.ledger._conn()
    conn.execute("PRAGMA query_only = ON")  # this thread's writes are refused, as by a failing disk
    try:
        assert svc.expire_due() is False
        assert svc.current() is None and rows(svc) == []
    finally:
        conn.execute("PRAGMA query_only = OFF")
    # The retry runs on its own timer thread (its own connection) and commits it.
    assert wait_until(lambda: len(rows(svc)) == 1, timeout=10)
    [row] = rows(svc)
    assert (row["session_id"], row["body"]["level"], row["body"]["outcome"]) == ("S-1", 2, "rated")
    assert svc.retry_unwritten() == 0


CRASH = """
import os, signal, sys
from kiosk.core import keys
from kiosk.core.cache import Cache
from kiosk.core.config import load_config
from kiosk.core.ledger import Ledger
from kiosk.roles.pad.service import RatingService
cfg = load_config(sys.argv[1])
svc = RatingService(cfg, Ledger(cfg.storage_dir / keys.LEDGER_FILE), Cache(cfg.storage_dir / keys.CACHE_FILE))
svc.open_session("S-9", origin="central", case_no="C-1")
svc.choose_level(1)
svc.choose_reasons([sorted(svc.reasons().codes())[0]])
print("chosen", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_session_open_when_the_device_crashes_ends_recorded_at_the_next_start(cfg):
    p = subprocess.run(
        [sys.executable, "-c", CRASH, str(cfg.path)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == -9 and "chosen" in p.stdout, p.stderr
    ledger = Ledger(cfg.storage_dir / keys.LEDGER_FILE)
    cache = Cache(cfg.storage_dir / keys.CACHE_FILE)
    s = RatingService(cfg, ledger, cache, clock=FakeClock())
    try:
        assert s.outcome_of("S-9") is None
        s.start()
        assert s.outcome_of("S-9") == "rated"
        [row] = rows(s)
        b = row["body"]
        assert (b["level"], b["ended_by"], b["auto_submitted"], b["case_no"]) == (1, "restart", True, "C-1")
        assert ledger.get_meta(keys.PAD_OPEN_SESSION) == ""
        s.close()
        s2 = RatingService(cfg, ledger, cache, clock=FakeClock())
        s2.start()  # a second start records nothing more (一次一评)
        assert len(rows(s2)) == 1
        s2.close()
    finally:
        cache.close()
        ledger.close()


def test_a_submitted_rating_clears_the_open_session_record(svc):
    svc.open_session("S-1", origin="central")
    assert json.loads(svc.ledger.get_meta(keys.PAD_OPEN_SESSION))["session_id"] == "S-1"
    svc.submit(5)
    assert svc.ledger.get_meta(keys.PAD_OPEN_SESSION) == ""
    assert svc.recover_open() is False


def test_chain_continues_from_the_rows_when_the_head_in_meta_is_missing_or_stale(svc):
    # The head in meta replaces a COUNT(*) over every rating; a ledger without it
    # (or edited by hand) is counted the slow way, so the chain never skips.
    for i in range(3):
        svc.open_session(f"S-{i}", origin="central")
        svc.submit(5)
    with svc.ledger.transaction() as tx:
        tx.execute("DELETE FROM meta WHERE key = ?", (keys.RATING_CHAIN_HEAD,))
    svc.open_session("S-3", origin="central")
    assert svc.submit(5)["chain_index"] == 3
    svc.ledger.set_meta(keys.RATING_CHAIN_HEAD, "99:" + "f" * 64)  # names a hash no row has
    svc.open_session("S-4", origin="central")
    rec = svc.submit(5)
    assert rec["chain_index"] == 4 and rec["prev_hash"] == rows(svc)[3]["hash"]
    assert svc.ledger.get_meta(keys.RATING_CHAIN_HEAD) == f"5:{rec['hash']}"

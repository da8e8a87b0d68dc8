"""The lookup service against the bench central over real HTTP on loopback (no Kivy)."""

import json
import logging
from datetime import date

import pytest

from kiosk.central.server import BenchCentral
from kiosk.core import keys
from kiosk.core.config import load_config
from kiosk.roles.lookup.service import (
    AUDIT_KIND,
    Scan,
    deadline_info,
    display_from_case,
    working_days_between,
)
from kiosk.sync.client import CentralClient
from kiosk.wiring import build_runtime
from tests.helpers import device_tokens, wait_until, write_config

CODE = "482913"


def make_runtime(tmp_path, central, lookup=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    token = central.issue_token("demo-kiosk")
    path = write_config(
        tmp_path,
        {
            "device": {"roles": ["lookup"]},
            "central": {"url": central.url},
            "lookup": {"max_attempts": 3, "lockout_minutes": 10, **(lookup or {})},
        },
        token=token,
    )
    return open_runtime(path)


def open_runtime(path):
    rt = build_runtime(load_config(path))
    rt.start(without=["sync"])
    assert isinstance(rt.client, CentralClient)  # built from [central] by the runtime
    return rt


@pytest.fixture
def rt(tmp_path, central):
    r = make_runtime(tmp_path, central)
    yield r
    r.stop()


def audit_events(rt):
    return [e.body for e in rt.ledger.pending_events() if e.kind == AUDIT_KIND]


def everything_stored(rt) -> str:
    """Every byte the device keeps about lookups: outbox, meta, cache."""
    rows = rt.ledger.query("SELECT kind, body FROM outbox") + rt.ledger.query("SELECT key, value FROM meta")
    parts = [" ".join(str(v) for v in tuple(r)) for r in rows]
    parts += [k + json.dumps(rt.cache.get(k), ensure_ascii=False) for k in rt.cache]
    return "\n".join(parts)


def test_scan_of_a_receipt_shows_the_case_masked_and_audits_it(rt, central):
    case = central.create_case(
        "个体工商户设立登记",
        "张小三",
        status="reviewing",
        query_code=CODE,
        receipt_no="ZW2026123456",
        time_limit_days=5,
        window="08",
        handler="郑伟",
    )
    result = rt.lookup.service.lookup_scan(Scan(case["qr_payload"], "sim"))
    assert result.outcome == "ok"
    shown = result.case
    assert shown["item_name"] == "个体工商户设立登记"
    assert shown["applicant_masked"] == "张*三"
    assert shown["receipt_masked"] == "ZW20****3456"
    assert shown["status"] == "reviewing"
    assert [s["code"] for s in shown["steps"]][:2] == ["accepted", "reviewing"]
    assert [s["done"] for s in shown["steps"]] == [True, True, False, False, False, False]
    assert shown["handler"] == "郑伟" and shown["window"] == "08" and shown["collection"] == "window"
    assert result.deadline["state"] == "open" and 1 <= result.deadline["days"] <= 5
    # Audit: one event, receipt hashed, outcome code only.
    (event,) = audit_events(rt)
    assert event["outcome"] == "ok" and event["source"] == "sim"
    assert event["receipt_hash"] == rt.lookup.service.receipt_hash("ZW2026123456")
    stored = everything_stored(rt)
    for secret in ("ZW2026123456", CODE, "张小三"):
        assert secret not in stored


def test_hash_is_keyed_by_a_device_secret_not_guessable_from_the_number(rt, tmp_path, central):
    h1 = rt.lookup.service.receipt_hash("ZW2026000101")
    assert h1 == rt.lookup.service.receipt_hash("zw2026000101")  # one counter for both spellings
    import hashlib

    for salt in ("", "demo-kiosk"):
        assert hashlib.sha256((salt + "ZW2026000101").encode()).hexdigest()[:32] != h1
    other = make_runtime(tmp_path / "other", central)
    try:
        assert other.lookup.service.receipt_hash("ZW2026000101") != h1  # another device, another secret
    finally:
        other.stop()


def test_wrong_codes_lock_the_receipt_on_the_device_and_the_lock_survives_restart(tmp_path, central):
    rt = make_runtime(tmp_path, central)
    case = central.create_case(receipt_no="ZW2026000777", query_code=CODE)
    outcomes = [rt.lookup.service.lookup_fields("ZW2026000777", "111111") for _ in range(3)]
    assert [(r.outcome, r.attempts_left) for r in outcomes] == [("wrong_code", 2), ("wrong_code", 1), ("locked", None)]
    assert outcomes[-1].locked_minutes == 10
    # Right code now: still locked, and the central is not even asked.
    central.stop()
    assert rt.lookup.service.lookup_fields("ZW2026000777", CODE).outcome == "locked"
    rt.stop()
    rt = open_runtime(rt.cfg.path)  # same storage: a restart
    try:
        assert rt.lookup.service.lookup_fields(case["receipt_no"], CODE).outcome == "locked"
        # Time passes beyond the lockout: the right code works again.
        rt.lookup.service.now = lambda: __import__("time").time() + 11 * 60
        central.start()
        assert rt.lookup.service.lookup_fields(case["receipt_no"], CODE).outcome == "ok"
        assert [e["outcome"] for e in audit_events(rt)][-2:] == ["locked", "ok"]
    finally:
        rt.stop()


def test_the_central_lockout_is_respected(tmp_path):
    central = BenchCentral(tmp_path / "c2", max_code_attempts=2, lockout_s=300).start()
    central.issue_token = device_tokens(central)  # each test device with its usual scope
    rt = make_runtime(tmp_path, central, {"max_attempts": 5})
    try:
        central.create_case(receipt_no="ZW2026000888", query_code=CODE)
        first = rt.lookup.service.lookup_fields("ZW2026000888", "000000")
        assert (first.outcome, first.attempts_left) == ("wrong_code", 1)  # the central's count is lower
        second = rt.lookup.service.lookup_fields("ZW2026000888", "000000")
        assert second.outcome == "locked" and second.locked_minutes == 5  # central 423, its Retry-After
        assert rt.lookup.service.locked_for(rt.lookup.service.receipt_hash("ZW2026000888")) > 200
    finally:
        rt.stop()
        central.stop()


def test_offline_shows_the_last_result_as_of_its_time_but_only_with_the_right_code(rt, central):
    case = central.create_case(
        applicant_name="李四", query_code=CODE, status="needs_materials", missing_materials=["购房合同原件"]
    )
    online = rt.lookup.service.lookup_scan(Scan(case["qr_payload"], "serial"))
    assert online.outcome == "ok"
    central.stop()
    cached = rt.lookup.service.lookup_scan(Scan(case["qr_payload"], "serial"))
    assert cached.outcome == "cached"
    assert cached.as_of == online.as_of
    assert cached.case == online.case and cached.case["missing_materials"] == ["购房合同原件"]
    wrong = rt.lookup.service.lookup_fields(case["receipt_no"], "999999")
    assert wrong.outcome == "wrong_code" and wrong.attempts_left == 2
    unknown = rt.lookup.service.lookup_fields("ZW2026999999", CODE)
    assert unknown.outcome == "offline" and unknown.case is None
    assert [e["outcome"] for e in audit_events(rt)] == ["ok", "cached", "wrong_code", "offline"]
    assert audit_events(rt)[-1]["central"] == "unreachable"


def test_without_a_client_the_device_says_offline(rt):
    rt.client = None
    assert rt.lookup.service.lookup_fields("ZW2026000101", CODE).outcome == "offline"


def test_cache_entries_expire_after_a_month(rt, central):
    case = central.create_case(query_code=CODE)
    rt.lookup.service.lookup_fields(case["receipt_no"], CODE)
    central.stop()
    import time

    rt.lookup.service.now = lambda: time.time() + 31 * 24 * 3600
    assert rt.lookup.service.lookup_fields(case["receipt_no"], CODE).outcome == "offline"
    assert not [k for k in rt.cache if k.startswith(keys.LOOKUP_CASE_PREFIX)]


def test_bad_payloads_are_audited_without_content(rt):
    result = rt.lookup.service.lookup_scan(Scan("'; DROP TABLE cases;--", "wedge"))
    assert (result.outcome, result.reason) == ("bad_payload", "unknown_format")
    assert rt.lookup.service.lookup_scan(Scan(None, "serial", problem="too_long")).reason == "too_long"
    events = audit_events(rt)
    assert [(e["outcome"], e["reason"], e["receipt_hash"]) for e in events] == [
        ("bad_payload", "unknown_format", None),
        ("bad_payload", "too_long", None),
    ]


def test_nothing_personal_reaches_the_log(rt, central, caplog):
    caplog.set_level(logging.DEBUG)
    case = central.create_case(applicant_name="王小明", query_code=CODE, receipt_no="ZW2026654321")
    rt.lookup.service.lookup_scan(Scan(case["qr_payload"], "sim"))
    rt.lookup.service.lookup_fields("ZW2026654321", "123123")
    central.stop()
    rt.lookup.service.lookup_fields("ZW2026654321", CODE)
    rt.lookup.service.lookup_scan(Scan("ZW2026654321|" + "x" * 40, "sim"))
    text = caplog.text
    assert "lookup from sim: ok" in text
    for secret in ("ZW2026654321", CODE, "123123", "王小明", "王*明"):
        assert secret not in text


# ---- display and deadlines ---------------------------------------------------


def test_text_from_the_central_is_plain_bounded_and_masked():
    shown = display_from_case(
        {
            "item_name": "[b]x[/b]\x1b[2J" + "长" * 100,
            "applicant_name": "欧阳娜娜",
            "receipt_no": "ZW2026000101",
            "status": "hacked",
            "collection": "drone",
            "steps": [{"code": "<script>", "name_zh": "受理\u202e", "at": "nonsense"}, "junk"],
            "time_limit_days": True,
            "due_date": "not a date",
            "missing_materials": ["", "身份证\x00复印件"],
        }
    )
    assert shown["item_name"].startswith("[b]x[/b][2J") and len(shown["item_name"]) == 60
    assert shown["applicant_masked"] == "欧**娜"
    assert shown["status"] == "unknown" and shown["collection"] == "unknown"
    assert shown["steps"] == [{"code": "other", "name_zh": "受理", "name_en": "", "at": None, "done": True}]
    assert shown["time_limit_days"] is None and shown["due_date"] is None
    assert shown["missing_materials"] == ["身份证复印件"]


def test_working_days_and_deadline_states():
    mon, fri, next_mon = date(2026, 3, 2), date(2026, 3, 6), date(2026, 3, 9)
    assert working_days_between(mon, fri) == 4
    assert working_days_between(fri, next_mon) == 1
    assert working_days_between(mon, date(2027, 3, 1)) == 260
    d = {"status": "reviewing", "due_date": "2026-03-06"}
    assert deadline_info(d, mon) == {"state": "open", "days": 4}
    assert deadline_info(d, fri) == {"state": "due_today", "days": 0}
    assert deadline_info(d, next_mon) == {"state": "overdue", "days": 1}
    assert deadline_info({**d, "status": "completed"}, next_mon)["state"] == "done"
    assert deadline_info({**d, "due_date": None}, mon)["state"] == "unknown"


# -- bad input at the edges (issue 15.11) ---------------------------------------------


def test_personal_data_in_the_centrals_free_text_is_masked_before_cached_or_shown(rt, central):
    case = central.create_case(
        "不动产登记",
        "张小三",
        status="needs_materials",
        query_code=CODE,
        receipt_no="ZW2026654321",
        missing_materials=[
            "张小三的户口本原件",
            "身份证 110101199003071234 复印件",
            "联系电话 13812345678 的授权书",
            "配偶李四军的身份证原件",
            "委托人王五签字的授权委托书",
        ],
        refusal_reason="请申请人张小三补交材料，咨询 0571-87654321",
        remedy="携带 11010119900307123X 原件到 08 号窗口",
    )
    result = rt.lookup.service.lookup_scan(Scan(case["qr_payload"], "sim"))
    assert result.outcome == "ok"
    shown = json.dumps(result.case, ensure_ascii=False)
    stored = everything_stored(rt)
    personal_data = ("张小三", "110101199003071234", "11010119900307123X", "13812345678", "87654321", "李四军", "王五")
    for personal in personal_data:
        assert personal not in shown and personal not in stored
    assert result.case["missing_materials"][0] == "***的户口本原件"
    assert result.case["missing_materials"][3:] == ["配偶李*军的身份证原件", "委托人王*签字的授权委托书"]
    assert "138****5678" in result.case["missing_materials"][2]
    assert "08 号窗口" in result.case["remedy"]  # ordinary words and numbers stay readable


def test_a_payload_with_a_utf8_bom_is_looked_up(rt, central):
    case = central.create_case(query_code=CODE, receipt_no="ZW2026777777")
    for payload in ("\ufeff" + case["qr_payload"], b"\xef\xbb\xbf" + case["qr_payload"].encode()):
        assert rt.lookup.service.lookup_scan(Scan(payload, "serial")).outcome == "ok"


class Mono:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_a_scanner_spewing_garbage_is_rate_limited_and_coalesced(rt, caplog):
    svc = rt.lookup.service
    svc.mono = mono = Mono()
    caplog.set_level(logging.INFO, logger="kiosk")
    before = rt.ledger.outbox_stats()
    for i in range(2000):
        mono.t += 0.001
        assert svc.lookup_scan(Scan(f"garbage-{i}", "serial")).outcome == "bad_payload"
    events = audit_events(rt)
    assert len(events) == svc.BAD_BURST  # 2000 lines, 3 writes so far
    assert len([r for r in caplog.records if "rejected" in r.getMessage()]) == svc.BAD_BURST
    mono.t += svc.BAD_WINDOW
    svc.lookup_scan(Scan("garbage-again", "serial"))  # the next window writes the held count
    events = audit_events(rt)
    coalesced = [e for e in events if e["reason"] == "coalesced"]
    assert [e["count"] for e in coalesced] == [2000 - svc.BAD_BURST]
    assert sum(e.get("count", 1) for e in events) == 2001  # every line counted, none written alone
    assert rt.ledger.outbox_stats() != before


def test_a_hung_central_gives_the_cached_case_at_once_after_a_few_waits(tmp_path, central):
    import time

    r = make_runtime(tmp_path / "dev", central, lookup={"timeout": 0.5})
    try:
        case = central.create_case(applicant_name="李四", query_code=CODE, status="accepted")
        assert r.lookup.service.lookup_scan(Scan(case["qr_payload"], "serial")).outcome == "ok"
        r.client.breaker.probe_every = 0.2
        central.inject("hang", count=10_000, delay=1.5)
        took = []
        for _ in range(r.client.breaker.threshold + 3):
            start = time.monotonic()
            got = r.lookup.service.lookup_scan(Scan(case["qr_payload"], "serial"))
            took.append(time.monotonic() - start)
            assert got.outcome == "cached"
        n = r.client.breaker.threshold
        assert min(took[:n]) >= 0.45 and max(took[n:]) < 0.3, took
        assert r.health()["central_link"]["offline"] is True
        central.clear_faults()
        assert wait_until(lambda: not r.client.breaker.open, timeout=10)
        assert r.lookup.service.lookup_scan(Scan(case["qr_payload"], "serial")).outcome == "ok"
    finally:
        r.stop()


def test_a_busy_central_means_try_later_and_the_kiosk_waits_as_told(tmp_path):
    """429 + Retry-After from the central's per-device limit: "try again in N s", not
    "offline" (no alarm, no stale answer passed off), and no request until it passes."""
    from kiosk.central.limits import Limits

    central = BenchCentral(tmp_path / "c3", limits=Limits(lookup_burst=2, lookup_interval=30)).start()
    central.issue_token = device_tokens(central)
    rt = make_runtime(tmp_path, central)
    try:
        central.create_case(receipt_no="ZW2026000999", query_code=CODE)
        assert rt.lookup.service.lookup_fields("ZW2026000999", CODE).outcome == "ok"
        assert rt.lookup.service.lookup_fields("ZW2026000888", "000000").outcome == "wrong_code"
        busy = rt.lookup.service.lookup_fields("ZW2026000999", CODE)
        assert busy.outcome == "try_later" and 20 <= busy.retry_seconds <= 30  # the central's Retry-After
        asked = central.lookup_limit.take  # from now on, count what reaches the central
        calls = []
        central.lookup_limit.take = lambda key: calls.append(key) or asked(key)
        again = rt.lookup.service.lookup_fields("ZW2026000999", CODE)
        assert again.outcome == "try_later" and again.retry_seconds <= busy.retry_seconds
        assert calls == []  # honoured on the device: nothing sent before Retry-After
        outcomes = [(b["outcome"], b["central"]) for b in audit_events(rt)]
        assert outcomes[-2:] == [("try_later", "rate_limited"), ("try_later", "skipped")]
        assert rt.lookup.service.locked_for(rt.lookup.service.receipt_hash("ZW2026000999")) == 0  # no lockout
    finally:
        rt.stop()
        central.stop()


def test_a_burst_of_garbage_is_recorded_when_its_window_ends_with_no_scan_after_it(rt):
    """The held-back count is written by the lookup's own thread when the window
    ends, and whatever is still held when the device stops: never only by a next scan."""
    svc = rt.lookup.service
    svc.mono = mono = Mono()
    svc.stop()  # the runtime started it with the 10 s window: again with a short one
    svc.BAD_WINDOW = 0.2
    svc.start()
    for i in range(50):
        svc.lookup_scan(Scan(f"garbage-{i}", "serial"))
    mono.t += 1.0  # the window is over; no scan follows

    def coalesced():
        return [e["count"] for e in audit_events(rt) if e["reason"] == "coalesced"]

    assert wait_until(lambda: coalesced() == [50 - svc.BAD_BURST], timeout=5)
    for i in range(10):
        svc.lookup_scan(Scan(f"more-{i}", "serial"))  # a new window: 3 alone, 7 held
    svc.BAD_WINDOW = 3600.0  # held until the stop
    rt.stop()
    assert coalesced() == [50 - svc.BAD_BURST, 10 - svc.BAD_BURST]

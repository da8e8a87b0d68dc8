"""Golden records of each 好差评 profile, and a day's export from real ratings over HTTP."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
import requests

from kiosk.central import profiles
from kiosk.central.export import export_day
from kiosk.central.profiles import ProfileError, Rating

CST = timezone(timedelta(hours=8))
BEST = Rating(
    level=5,
    rated_at=datetime(2026, 5, 12, 9, 30, 12, tzinfo=CST),
    case_no="ZW2026000101",
    item_code="330100-SB-001",
    item_version="3",
    item_name="城乡居民基本养老保险参保登记",
    case_type="promised",
    window="01",
    staff_id="S1001",
    staff_name="王丽华",
    region_code="330100",
)
WORST = Rating(
    level=1,
    rated_at=datetime(2026, 5, 12, 16, 5, 0, tzinfo=CST),
    case_no="BJ-7",
    item_code="330100-GJJ-003",
    item_version="2",
    item_name="住房公积金提取",
    case_type="immediate",
    reasons=("A04", "A07"),
    reason_texts=("办理时间过长", "服务态度不好"),
    region_code="330100",
)


def test_national_golden():
    assert profiles.write("national", BEST) == {
        "办件编号": "ZW2026000101",
        "事项编码": "330100-SB-001",
        "事项版本": "3",
        "办件类型": "2",
        "评价渠道": "政务大厅平板电脑",
        "评价人": None,
        "评价时间": "20260512T093012",
        "评价次数": 1,
        "满意度": "非常满意",
        "满意度代码": "1",
        "文字评价": None,
        "行政区划": "330100",
    }
    worst = profiles.write("national", WORST)
    assert (worst["满意度代码"], worst["满意度"], worst["办件类型"]) == ("5", "非常不满意", "1")
    assert worst["文字评价"] == "办理时间过长；服务态度不好"


def test_zhejiang_golden():
    assert profiles.write("zhejiang", WORST, {"A04": "503", "A07": "501"}) == {
        "projectNo": "BJ-7",
        "taskCode": "330100-GJJ-003",
        "taskName": "住房公积金提取",
        "proManager": None,
        "promiseTime": "2",
        "pf": "4",
        "satisfaction": "1",
        "evalDetail": "503,501",
        "assessTime": "2026-05-12 16:05:00",
        "assessNumber": 1,
    }
    best = profiles.write("zhejiang", BEST)
    assert (best["satisfaction"], best["promiseTime"], best["proManager"]) == ("5", "1", "王丽华")


def test_anhui_golden():
    assert profiles.write("anhui", BEST) == profiles.write("national", BEST) | {
        "evaluateChannel": "PJQ",
        "version": "2",
    }


def test_the_level_codes_run_in_opposite_directions():
    for stars in range(1, 6):
        r = Rating(level=stars, rated_at=BEST.rated_at)
        national = profiles.write("national", r)["满意度代码"]
        zhejiang = profiles.write("zhejiang", r)["satisfaction"]
        assert int(national) == 6 - stars and int(zhejiang) == stars
        assert profiles.write("national", r)["满意度"] == profiles.LEVEL_WORDS[stars]


def test_zhejiang_reason_codes_come_from_the_shipped_table_without_a_flag():
    assert profiles.write("zhejiang", WORST)["evalDetail"] == "504,507"  # A04, A07 by kiosk/data/reason-maps.toml
    table = profiles.shipped_tables()["zhejiang"]
    # Every reason of the list the bench central hands out has its code, each a different 3-digit one.
    from kiosk.central.seed import RATING_REASONS

    ours = [r["code"] for r in RATING_REASONS["reasons"]]
    assert table.reasons_version == RATING_REASONS["version"] and set(table.codes) == set(ours)
    assert len(set(table.codes.values())) == len(ours) and all(
        len(c) == 3 and c.isdigit() for c in table.codes.values()
    )
    assert table.verified is False  # numbered after the one recorded example, not yet confirmed by the province


def test_what_a_profile_cannot_write_is_refused_not_guessed():
    with pytest.raises(ProfileError, match="--reason-map"):
        profiles.write("zhejiang", Rating(level=1, rated_at=BEST.rated_at, reasons=("Z99",)))
    with pytest.raises(ProfileError, match="list 'hall-2027'"):  # another list than the table's
        profiles.write(
            "zhejiang", Rating(level=2, rated_at=BEST.rated_at, reasons=("A04",), reasons_version="hall-2027")
        )
    with pytest.raises(ProfileError, match="--reason-map"):  # a given map replaces the table whole
        profiles.write("zhejiang", WORST, {"A04": "503"})
    with pytest.raises(ProfileError, match="no code for channel"):
        profiles.write("national", Rating(level=3, rated_at=BEST.rated_at, channel="SMS"))
    with pytest.raises(ProfileError, match="no profile"):
        profiles.write("guangdong", BEST)
    no_case = profiles.write("national", Rating(level=3, rated_at=BEST.rated_at))
    assert no_case["办件编号"] is None and no_case["办件类型"] is None


def test_a_days_export_carries_the_sessions_case(central):
    token = central.issue_token("pad-01", ["pad"], "01")
    case = central.create_case("住房公积金提取", "李四", window="01", time_limit_days=0, item_code="330100-GJJ-003")
    central.store.call_next("01", auto_case=True)  # as the bench page's button does
    s = central.end_service("01")
    assert s["case_no"] == case["receipt_no"] and s["item_code"] == "330100-GJJ-003"
    day = central.store.today()
    body = {
        "window": "01",
        "session_id": s["session_id"],
        "level": 2,
        "reasons": [{"code": "A04", "zh": "办理时间过长"}],
        "channel": "PJQ",
        "decided_at": f"{day}T10:00:00+08:00",
        "region_code": "330100",
        "phone": "13800138000",
    }
    ev = {
        "id": str(uuid.uuid4()),
        "kind": "rating.submitted",
        "device_id": "pad-01",
        "created_at": f"{day}T10:00:00+08:00",
        "boot_id": "b",
        "seq": 1,
        "body": body,
    }
    r = requests.post(
        central.url + "/api/v1/events", json={"events": [ev]}, headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert r.json()["results"][0]["status"] == "accepted"
    doc = export_day(central.store, "national", date.fromisoformat(day))
    assert doc["count"] == 1
    rec = doc["records"][0]
    assert (rec["办件编号"], rec["事项编码"], rec["办件类型"], rec["满意度代码"]) == (
        case["receipt_no"],
        "330100-GJJ-003",
        "1",
        "4",
    )
    assert "13800138000" not in json.dumps(doc, ensure_ascii=False)  # the callback number stays in the hall
    assert export_day(central.store, "national", date.fromisoformat(day) + timedelta(days=1))["count"] == 0

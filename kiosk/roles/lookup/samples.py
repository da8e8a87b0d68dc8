"""Sample cases for previews, reduced exactly as a real answer from the central is.

Used by `kiosk lookup-screenshot` (screens/states.py) and the benchmarks; nothing is stored.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from kiosk.roles.lookup.service import NORMAL_PATH, LookupResult, deadline_info, display_from_case

LOOKUP_STATES = (
    "scan",
    "keypad",
    "busy",
    "accepted",
    "reviewing",
    "needs_materials",
    "deciding",
    "completed",
    "ready_for_pickup",
    "delivered",
    "refused",
    "withdrawn",
    "overdue",
    "cached",
    "offline",
    "wrong_code",
    "locked",
    "bad_payload",
    "try_later",
)


def sample_result(state: str, today: date | None = None) -> LookupResult:
    """A made-up case in the given state, through the same reduction as a real answer."""
    today = today or date.today()
    if state in ("offline", "wrong_code", "locked", "bad_payload", "try_later"):
        return LookupResult(state, attempts_left=2, locked_minutes=15, reason="unknown_format", retry_seconds=20)
    status = {"overdue": "reviewing", "cached": "deciding"}.get(state, state)
    accepted = datetime.combine(today - timedelta(days=3), datetime.min.time()).replace(hour=9, minute=30)
    path = NORMAL_PATH[: NORMAL_PATH.index(status) + 1] if status in NORMAL_PATH else ("accepted", status)
    steps = [
        {"code": c, "at": (accepted + timedelta(hours=5 * i)).isoformat(), "done": True} for i, c in enumerate(path)
    ]
    due = today + timedelta(days=-4 if state == "overdue" else 4)
    case = {
        "receipt_no": "ZW2026000101",
        "item_name": "城乡居民基本养老保险参保登记",
        "applicant_name": "张小三",
        "status": status,
        "steps": steps,
        "time_limit_days": 5,
        "due_date": due.isoformat(),
        "handler": "王丽华",
        "window": "01",
        "collection": "post" if status == "delivered" else "window",
        "missing_materials": ["户口簿原件及复印件", "近期一寸免冠照片两张"] if status == "needs_materials" else [],
        "refusal_reason": "申请事项不属于本机关职权范围" if status == "refused" else None,
        "remedy": "请向户籍所在地乡镇（街道）社保服务窗口申请" if status == "refused" else None,
    }
    display = display_from_case(case)
    as_of = (datetime.now() - timedelta(hours=2)).astimezone().isoformat(timespec="seconds")
    return LookupResult(
        "cached" if state == "cached" else "ok", case=display, as_of=as_of, deadline=deadline_info(display, today)
    )

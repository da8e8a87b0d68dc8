"""Sample data for previews: a ticket as the dispenser would issue it now, nothing stored.

Used by `kiosk ticket-preview`, `kiosk dispenser-screenshot` and the benchmarks.
"""

from __future__ import annotations

from datetime import datetime

from kiosk.core.config import CategoryEntry, Config
from kiosk.roles.dispenser.persons import Citizen, Holding, Standing
from kiosk.roles.dispenser.service import Ticket

# The dispenser screen's states a screenshot can show (screens/states.py renders them).
DISPENSER_STATES = (
    "choose",
    "priority",
    "done",
    "offline",
    "failed",
    "paper_out",
    "printer_unavailable",
    "storage_full",
    "closed",
    # 预约签到 and quotas (shown as if [dispenser] entries offered appointments)
    "entry",
    "checkin",
    "appointment",
    "booking_unknown",
    "booking_used",
    "booking_expired",
    "booking_early",
    "checkin_offline",
    "used_up",
    "quota_full",
)
# 刷身份证取号 (screens/idcard.py), on a device with an ID card reader configured.
IDCARD_STATES = (
    "idcard_wait",
    "idcard_choose",
    "idcard_held",
    "idcard_limit",
    "idcard_bad_read",
    "idcard_reader_down",
)


def sample_standing(cfg: Config, *, at_limit: bool = False) -> Standing:
    """A citizen as the screen sees one (masked, an HMAC of nothing real) holding one ticket."""
    cats = cfg.dispenser.categories
    cat: CategoryEntry = (
        cats[0] if cats else {"code": "A", "prefix": "A", "name_zh": "综合受理", "name_en": "General services"}
    )
    day = datetime.now().astimezone().date().isoformat()
    held = [
        Holding(
            day,
            f"{cat.get('prefix') or cat['code']}023",
            cat["code"],
            False,
            "waiting",
            "",
            None,
            cat["name_zh"],
            cat["name_en"],
        ),
    ]
    if at_limit:
        held += [Holding(day, f"X{n:03d}", "X", False, "called", "") for n in (3, 7)]
    return Standing(Citizen("0" * 64, "110***********1234", "张*三"), held, 3, True)


def sample_ticket(cfg: Config, *, offline: bool = False, priority: bool = False, appointment: bool = False) -> Ticket:
    """A ticket as the dispenser would issue it now, for the preview (nothing is stored)."""
    cats = cfg.dispenser.categories
    cat: CategoryEntry = (
        cats[0] if cats else {"code": "A", "prefix": "A", "name_zh": "综合受理", "name_en": "General services"}
    )
    prefix = cfg.dispenser.priority_prefix if priority else (cat.get("prefix") or cat["code"])
    if appointment and cfg.dispenser.appointment_ticket == "series":
        prefix = cfg.dispenser.appointment_prefix
    number = cfg.dispenser.offline_range[0] if offline else 23
    now = datetime.now().astimezone()
    return Ticket(
        0,
        "preview",
        "preview",
        now.date().isoformat(),
        cat["code"],
        number,
        f"{prefix}{number:03d}",
        priority,
        "offline" if offline else "online",
        None if offline else 5,
        None if offline else 1500,
        now.isoformat(timespec="seconds"),
        "pending",
        0,
        cat["name_zh"],
        cat["name_en"],
        "preview" if appointment else None,
    )

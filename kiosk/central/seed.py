"""Demo data for a fresh bench central: what a real hall would configure.

Written once, when the data directory is new; a technician's later changes
(cases, windows) survive restarts because they live in the database, not here.
"""

from __future__ import annotations

import io
import zlib
from typing import NotRequired, TypedDict

CATEGORIES = [
    # code, prefix, zh, en, number range, average service time (s), windows serving it
    {
        "code": "A",
        "prefix": "A",
        "name_zh": "社保医保",
        "name_en": "Social & medical insurance",
        "number_min": 1,
        "number_max": 899,
        "avg_service_s": 300,
    },
    {
        "code": "B",
        "prefix": "B",
        "name_zh": "不动产登记",
        "name_en": "Real estate registration",
        "number_min": 1,
        "number_max": 899,
        "avg_service_s": 600,
    },
    {
        "code": "C",
        "prefix": "C",
        "name_zh": "公积金",
        "name_en": "Housing provident fund",
        "number_min": 1,
        "number_max": 899,
        "avg_service_s": 360,
    },
    {
        "code": "D",
        "prefix": "D",
        "name_zh": "综合受理",
        "name_en": "General services",
        "number_min": 1,
        "number_max": 899,
        "avg_service_s": 420,
    },
]

PRIORITY = {"prefix": "V", "name_zh": "绿色通道", "name_en": "Priority lane", "number_min": 1, "number_max": 899}

OPENING_HOURS = {"timezone": "Asia/Shanghai", "days": [1, 2, 3, 4, 5], "hours": ["08:30-12:00", "13:30-17:30"]}

# Reasons for a bad rating, in the manner of GB/T 39734-2020 Annex A.
# The version travels with every rating so a later list cannot reinterpret old codes.
RATING_REASONS = {
    "version": "GB/T 39734-2020-A.1",
    "reasons": [
        {"code": "A01", "zh": "办事指南不清晰", "en": "Unclear service guide"},
        {"code": "A02", "zh": "未一次性告知", "en": "Requirements not told at once"},
        {"code": "A03", "zh": "材料要求过多", "en": "Too many documents required"},
        {"code": "A04", "zh": "办理时间过长", "en": "Took too long"},
        {"code": "A05", "zh": "多次跑动", "en": "Had to come back several times"},
        {"code": "A06", "zh": "排队等候时间长", "en": "Long waiting time"},
        {"code": "A07", "zh": "服务态度不好", "en": "Unfriendly service"},
        {"code": "A08", "zh": "业务不熟练", "en": "Staff not competent"},
        {"code": "A09", "zh": "系统故障", "en": "System failure"},
        {"code": "A10", "zh": "办事环境差", "en": "Poor facilities"},
        {"code": "A11", "zh": "其他", "en": "Other"},
    ],
}

MESSAGES = [
    {
        "id": "welcome",
        "zh": "欢迎来到政务服务中心",
        "en": "Welcome to the Government Service Center",
        "where": ["home"],
    },
    {
        "id": "notice",
        "zh": "请携带身份证原件办理业务",
        "en": "Please bring your original ID card",
        "where": ["home", "dispenser", "lookup"],
    },
]

# Window -> categories it calls from, and its staff member.
WINDOWS = [
    ("01", ["A"], "S1001", "王丽华", "10201", 5),
    ("02", ["A"], "S1002", "陈建国", "10202", 4),
    ("03", ["B"], "S1003", "刘晓明", "10203", 5),
    ("04", ["B"], "S1004", "赵雅婷", "10204", 4),
    ("05", ["C"], "S1005", "孙志强", "10205", 3),
    ("06", ["C"], "S1006", "周美玲", "10206", 5),
    ("07", ["D", "A"], "S1007", "吴海燕", "10207", 4),
    ("08", ["D", "B", "C"], "S1008", "郑伟", "10208", 5),
]


class DemoCase(TypedDict):
    """CentralStore.create_case's arguments for one demo case."""

    receipt_no: str
    query_code: str
    item_name: str
    item_code: str
    item_version: str
    applicant_name: str
    status: str
    time_limit_days: int
    collection: str
    window: str
    handler: str
    missing_materials: NotRequired[list[str]]


DEMO_CASES: list[DemoCase] = [
    {
        "receipt_no": "ZW2026000101",
        "query_code": "482913",
        "item_name": "城乡居民基本养老保险参保登记",
        "item_code": "330100-SB-001",
        "item_version": "3",
        "applicant_name": "张小三",
        "status": "reviewing",
        "time_limit_days": 5,
        "collection": "window",
        "window": "01",
        "handler": "王丽华",
    },
    {
        "receipt_no": "ZW2026000102",
        "query_code": "730255",
        "item_name": "不动产转移登记",
        "item_code": "330100-BDC-014",
        "item_version": "2",
        "applicant_name": "李四",
        "status": "needs_materials",
        "time_limit_days": 10,
        "collection": "post",
        "window": "03",
        "handler": "刘晓明",
        "missing_materials": ["购房合同原件", "完税证明"],
    },
]


def staff_photo_png(seed: int) -> bytes:
    """A plain head-and-shoulders silhouette; a real hall uploads photos."""
    from PIL import Image, ImageDraw

    hue = (seed * 47) % 256
    bg = (200 - hue // 4, 215, 235 - hue // 5)
    img = Image.new("RGB", (120, 160), bg)
    d = ImageDraw.Draw(img)
    coat = (40 + hue // 3, 60, 110)
    d.ellipse((35, 25, 85, 80), fill=(235, 200, 170))
    d.rectangle((38, 20, 82, 38), fill=(30, 30, 30))
    d.pieslice((10, 85, 110, 200), 180, 360, fill=coat)
    d.polygon([(52, 88), (68, 88), (60, 110)], fill=(245, 245, 245))
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    return out.getvalue()


def stable_seed(text: str) -> int:
    return zlib.crc32(text.encode())


# Bookings (预约) made when a bench central is new, for its first day: code, service, slot.
# `kiosk demo` makes fresh ones for the day it runs (kiosk/cli/demo.py).
DEMO_BOOKINGS = [
    ("20260101", "A", "09:00"),
    ("20260102", "B", "10:30"),
    ("20260103", "C", "14:00"),
    ("20260104", "D", "16:00"),
]

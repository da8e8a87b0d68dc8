"""The 好差评 vocabularies ratings leave the hall in: one explicit mapping per target.

The pad records a level as stars (5 = 非常满意 … 1 = 非常不满意). The targets
disagree about nearly every code, in opposite directions, so each mapping is
a table here, never arithmetic done in passing:

- ``national``: GB/T 39046-2020 表9 field set. Its A.8 满意度代码 runs
  1 = 非常满意 … 5 = 非常不满意 (the reverse of the stars); A.6 办件类型
  1 = 即办件, 2 = 承诺件; time as YYYYMMDDThhmmss.
- ``zhejiang``: the Zhejiang/Ningbo `report` upload. `satisfaction` runs
  1 = 非常不满意 … 5 = 非常满意 (the reverse of the national code);
  `promiseTime` 承诺件 = 1, 即办件 = 2 (the reverse of A.6); channel `pf` 4 =
  政务大厅平板电脑; `evalDetail` 3-digit reason codes, comma-separated;
  time as yyyy-MM-dd HH:mm:ss; `assessNumber` 1 = first rating, 2 = 追评.
- ``anhui``: the national field set and codes (the data goes up to the national
  platform), plus `evaluateChannel` = "PJQ" and `version` = "2", which Anhui
  requires. DOMAIN.md records nothing else Anhui-specific.

Where the sources record a name but no code (the national 评价渠道 list) the
name is written. Reason codes are the hall's own (config `rating_reasons`);
Zhejiang wants its 3-digit codes: the shipped table kiosk/data/reason-maps.toml
maps them (for one version of the hall's list), a `--reason-map` file replaces
it, and a rating whose reasons neither maps is refused rather than guessed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources

# The pad's stars, as every profile starts from them.
LEVEL_WORDS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}

# GB/T 39046-2020 A.8 满意度代码: 1 is the best.
NATIONAL_LEVEL_CODE = {5: "1", 4: "2", 3: "3", 2: "4", 1: "5"}
# Zhejiang `satisfaction`: 5 is the best (the same direction as the stars).
ZHEJIANG_SATISFACTION = {5: "5", 4: "4", 3: "3", 2: "2", 1: "1"}

# 办件类型: "immediate" 即办件 (settled the same day), "promised" 承诺件.
NATIONAL_CASE_TYPE = {"immediate": "1", "promised": "2"}  # GB/T 39046-2020 A.6
ZHEJIANG_PROMISE_TIME = {"promised": "1", "immediate": "2"}  # reversed

# The pad's channel "PJQ" (评价器): a touch pad at the counter is the hall's
# tablet terminal in the national list, pf 4 in Zhejiang's.
NATIONAL_CHANNEL = {"PJQ": "政务大厅平板电脑"}
ZHEJIANG_PF = {"PJQ": "4"}
ANHUI_CHANNEL = {"PJQ": "PJQ"}


class ProfileError(ValueError):
    """A rating cannot be written in the profile; the message says what to add."""


@dataclass(frozen=True)
class Rating:
    """One rating as the central knows it, in no one's vocabulary yet."""

    level: int  # the pad's stars, 1..5
    rated_at: datetime  # with its UTC offset
    channel: str = "PJQ"
    case_no: str | None = None  # 办件编号
    item_code: str | None = None  # 事项编码
    item_version: str | None = None
    item_name: str | None = None  # 事项名称
    case_type: str | None = None  # immediate | promised | None (no case at the counter)
    window: str | None = None
    staff_id: str | None = None
    staff_name: str | None = None  # 经办人: shown on the pad's staff card anyway
    reasons: tuple[str, ...] = ()  # the hall's reason codes
    reason_texts: tuple[str, ...] = ()
    region_code: str | None = None  # 行政区划
    assess_number: int = 1  # 1 first rating, 2 追评
    reasons_version: str | None = None


def _code(table: Mapping, key, what: str, profile: str) -> str | None:
    if key is None:
        return None
    if key not in table:
        raise ProfileError(f"{profile}: no code for {what} {key!r} (known: {', '.join(map(str, table))})")
    return table[key]


def _level(r: Rating, profile: str) -> int:
    if r.level not in LEVEL_WORDS:
        raise ProfileError(f"{profile}: level {r.level!r} is not 1..5")
    return r.level


def national(r: Rating, reason_map: Mapping[str, str] | None = None) -> dict:
    """表9's fields, and the case's 事项编码, version and A.6 办件类型 that tie the rating to its case."""
    level = _level(r, "national")
    return {
        "办件编号": r.case_no,
        "事项编码": r.item_code,
        "事项版本": r.item_version,
        "办件类型": _code(NATIONAL_CASE_TYPE, r.case_type, "case type", "national"),
        "评价渠道": _code(NATIONAL_CHANNEL, r.channel, "channel", "national"),
        "评价人": None,  # the pad does not know who rated: ratings at the counter are anonymous
        "评价时间": r.rated_at.strftime("%Y%m%dT%H%M%S"),
        "评价次数": r.assess_number,
        "满意度": LEVEL_WORDS[level],
        "满意度代码": NATIONAL_LEVEL_CODE[level],
        "文字评价": "；".join(r.reason_texts) or None,
        "行政区划": r.region_code,
    }


@dataclass(frozen=True)
class ReasonTable:
    """A shipped table of kiosk/data/reason-maps.toml: the hall's reason codes to a profile's."""

    profile: str
    reasons_version: str
    codes: Mapping[str, str]
    verified: bool


@cache
def shipped_tables() -> dict[str, ReasonTable]:
    raw = tomllib.loads((resources.files("kiosk") / "data" / "reason-maps.toml").read_text(encoding="utf-8"))
    return {
        name: ReasonTable(name, t["reasons_version"], dict(t["codes"]), bool(t.get("verified", False)))
        for name, t in raw.items()
    }


def _reason_codes(profile: str, r: Rating, reason_map: Mapping[str, str] | None) -> list[str]:
    """The profile's codes for the rating's reasons: from `reason_map` if given, else the shipped table."""
    if reason_map is None:
        table = shipped_tables().get(profile)
        if table is not None and r.reasons and r.reasons_version not in (None, table.reasons_version):
            raise ProfileError(
                f"{profile}: the rating's reasons are from list {r.reasons_version!r}, the shipped table maps "
                f"{table.reasons_version!r}; give a reason map (JSON {{our code: their code}}) with --reason-map"
            )
        reason_map = table.codes if table is not None else {}
    unmapped = [c for c in r.reasons if c not in reason_map]
    if unmapped:
        raise ProfileError(
            f"{profile}: reason codes {unmapped} have no 3-digit evalDetail code; "
            "give a reason map (JSON {our code: their code}) with --reason-map"
        )
    return [reason_map[c] for c in r.reasons]


def zhejiang(r: Rating, reason_map: Mapping[str, str] | None = None) -> dict:
    level = _level(r, "zhejiang")
    codes = _reason_codes("zhejiang", r, reason_map)
    return {
        "projectNo": r.case_no,
        "taskCode": r.item_code,
        "taskName": r.item_name,
        "proManager": r.staff_name,
        "promiseTime": _code(ZHEJIANG_PROMISE_TIME, r.case_type, "case type", "zhejiang"),
        "pf": _code(ZHEJIANG_PF, r.channel, "channel", "zhejiang"),
        "satisfaction": ZHEJIANG_SATISFACTION[level],
        "evalDetail": ",".join(codes),
        "assessTime": r.rated_at.strftime("%Y-%m-%d %H:%M:%S"),
        "assessNumber": r.assess_number,
        # dataSource is in the upload too, but no source records its values: left out, not guessed.
    }


def anhui(r: Rating, reason_map: Mapping[str, str] | None = None) -> dict:
    record = national(r, reason_map)
    record["evaluateChannel"] = _code(ANHUI_CHANNEL, r.channel, "channel", "anhui")
    record["version"] = "2"  # required for data that goes up to the national platform
    return record


PROFILES: dict[str, Callable[..., dict]] = {"national": national, "zhejiang": zhejiang, "anhui": anhui}


def write(profile: str, r: Rating, reason_map: Mapping[str, str] | None = None) -> dict:
    try:
        fn = PROFILES[profile]
    except KeyError:
        raise ProfileError(f"no profile {profile!r}: use one of {', '.join(PROFILES)}") from None
    return fn(r, reason_map)

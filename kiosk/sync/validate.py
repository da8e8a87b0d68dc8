"""Checks of what the central sends, before any of it is cached or used.

The central is another system (a province's own, in production): a field of
the wrong type must not crash a role at start (opening-hours days sent as
strings did, on every dispenser), nor quietly show the hall closed (hours
``[830]``) or print a number without its letter (a numeric prefix). Each
``check_*`` returns the list of problems, empty when the document is usable;
the caller keeps what it had and reports the problems.

Problems name the field and, for the config (hall data, not personal data),
the value sent, so the central's operator can find it. For the staff card, the
window session and the case answer they name the field only: those documents
carry names and case numbers, which must not reach a log or a heartbeat.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date
from typing import Any

from kiosk.core.time import zone_problem

SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
CATEGORY_CODE = re.compile(r"^[A-Z]$")
# What a ticket shows before its number: letters (A023, VIP001), never digits alone.
PREFIX = re.compile(r"^[A-Z]{1,3}$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_ITEMS = 200  # a list longer than any hall's is a broken answer, not a long list
MAX_PEOPLE = 100000  # waiting or ahead: more is a broken answer
MAX_WAIT_S = 7 * 86400


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _hidden(v: str) -> bool:
    """Invisible control or format characters (bidi overrides, zero-width marks, ESC):
    on screen they reorder or hide what a citizen reads; line breaks and tabs are text."""
    return any(unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\n\t" for ch in v)


def _text(v: object, max_len: int = 200) -> bool:
    return isinstance(v, str) and len(v.strip()) > 0 and len(v) <= max_len and not _hidden(v)


class _Checker:
    def __init__(self, quote: bool):
        self.quote = quote
        self.problems: list[str] = []

    def bad(self, where: str, what: str, value: object = None) -> None:
        shown = f" (got {value!r:.60})" if self.quote and value is not None else ""
        self.problems.append(f"{where}: {what}{shown}")

    def obj(self, doc: object, where: str) -> dict[str, Any] | None:
        if not isinstance(doc, dict):
            self.bad(where, "must be an object", type(doc).__name__)
            return None
        return doc

    def text(self, doc: dict[str, Any], key: str, where: str, *, optional: bool = False, max_len: int = 200) -> None:
        if key not in doc or (optional and doc[key] is None):
            if not optional:
                self.bad(f"{where}.{key}", "is missing")
            return
        if not _text(doc[key], max_len):
            self.bad(
                f"{where}.{key}",
                f"must be a non-empty string of at most {max_len} characters, without control characters",
                doc[key],
            )

    def integer(self, doc: dict[str, Any], key: str, where: str, lo: int, hi: int, *, optional: bool = False) -> None:
        if key not in doc or (optional and doc[key] is None):
            if not optional:
                self.bad(f"{where}.{key}", "is missing")
            return
        v = doc[key]
        if not _is_int(v) or not lo <= v <= hi:
            self.bad(f"{where}.{key}", f"must be a whole number from {lo} to {hi}", v)

    def day(self, doc: dict[str, Any], key: str, where: str, *, optional: bool = False) -> None:
        if key not in doc or (optional and doc[key] is None):
            if not optional:
                self.bad(f"{where}.{key}", "is missing")
            return
        v = doc[key]
        try:
            ok = isinstance(v, str) and DAY.match(v) is not None and date.fromisoformat(v) is not None
        except ValueError:
            ok = False
        if not ok:
            self.bad(f"{where}.{key}", 'must be a date "YYYY-MM-DD"', v)

    def items(self, doc: dict[str, Any], key: str, where: str, *, min_items: int = 0) -> list[Any]:
        v = doc.get(key)
        if not isinstance(v, list):
            self.bad(f"{where}.{key}", "must be a list" if key in doc else "is missing", v)
            return []
        if not min_items <= len(v) <= MAX_ITEMS:
            self.bad(f"{where}.{key}", f"must have {min_items} to {MAX_ITEMS} entries", len(v))
            return []
        return v


def _series(c: _Checker, s: dict[str, Any], where: str) -> None:
    prefix = s.get("prefix")
    if not isinstance(prefix, str) or not PREFIX.match(prefix):
        c.bad(f"{where}.prefix", "must be 1 to 3 capital letters (printed before the number, e.g. A023)", prefix)
    c.integer(s, "number_min", where, 0, 99999)
    c.integer(s, "number_max", where, 0, 99999)
    lo, hi = s.get("number_min"), s.get("number_max")
    if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
        c.bad(where, f"number_min {lo} is above number_max {hi}")
    c.text(s, "name_zh", where, optional=where.endswith("priority"))
    c.text(s, "name_en", where, optional=where.endswith("priority"))


def check_central_config(doc: object) -> list[str]:
    """The device config document (GET /config): every field a role reads."""
    c = _Checker(quote=True)
    cfg = c.obj(doc, "config")
    if cfg is None:
        return c.problems
    c.text(cfg, "hall", "config", optional=True)
    c.text(cfg, "hall_en", "config", optional=True)
    seen: set[str] = set()
    for i, cat in enumerate(c.items(cfg, "categories", "config", min_items=1)):
        where = f"config.categories[{i}]"
        if c.obj(cat, where) is None:
            continue
        code = cat.get("code")
        if not isinstance(code, str) or not CATEGORY_CODE.match(code):
            c.bad(f"{where}.code", "must be one capital letter", code)
        elif code in seen:
            c.bad(f"{where}.code", "is used twice", code)
        else:
            seen.add(code)
        _series(c, cat, where)
        c.integer(cat, "avg_service_s", where, 0, 86400, optional=True)
    if "priority" in cfg:
        pr = c.obj(cfg["priority"], "config.priority")
        if pr is not None:
            _series(c, pr, "config.priority")
    # What is printed and called is prefix + number: one prefix on two series is
    # the same A001 for two queues, and a counter calling it calls two citizens.
    printed: dict[str, str] = {}
    series = [(f"config.categories[{i}]", s) for i, s in enumerate(cfg.get("categories") or [])]
    series.append(("config.priority", cfg.get("priority")))
    for where, s in series:
        prefix = s.get("prefix") if isinstance(s, dict) else None
        if not isinstance(prefix, str):
            continue
        if prefix in printed:
            c.bad(f"{where}.prefix", f"is the prefix of {printed[prefix]} too", prefix)
        printed.setdefault(prefix, where)
    oh = c.obj(cfg.get("opening_hours"), "config.opening_hours")
    if oh is not None:
        days = c.items(oh, "days", "config.opening_hours", min_items=1)
        for i, d in enumerate(days):
            if not _is_int(d) or not 1 <= d <= 7:
                c.bad(f"config.opening_hours.days[{i}]", "must be a whole number 1..7 (1 = Monday)", d)
        for i, h in enumerate(c.items(oh, "hours", "config.opening_hours", min_items=1)):
            m = SPAN.match(h) if isinstance(h, str) else None
            if m is None:
                c.bad(f"config.opening_hours.hours[{i}]", 'must be "HH:MM-HH:MM", e.g. "08:30-12:00"', h)
            elif h[:5] >= h[6:]:
                c.bad(f"config.opening_hours.hours[{i}]", "must end after it starts", h)
        c.text(oh, "timezone", "config.opening_hours", optional=True, max_len=64)
        tz = oh.get("timezone")
        if isinstance(tz, str) and zone_problem(tz):
            c.bad("config.opening_hours.timezone", "is not a known IANA time zone", tz)
    rr = c.obj(cfg.get("rating_reasons"), "config.rating_reasons")
    if rr is not None:
        c.text(rr, "version", "config.rating_reasons")
        codes: set[str] = set()
        for i, r in enumerate(c.items(rr, "reasons", "config.rating_reasons", min_items=1)):
            where = f"config.rating_reasons.reasons[{i}]"
            if c.obj(r, where) is None:
                continue
            for key in ("code", "zh", "en"):
                c.text(r, key, where, max_len=60 if key == "code" else 200)
            if isinstance(r.get("code"), str) and r["code"] in codes:
                c.bad(f"{where}.code", "is used twice", r["code"])
            codes.add(str(r.get("code")))
    for i, m in enumerate(c.items(cfg, "messages", "config")):
        where = f"config.messages[{i}]"
        if c.obj(m, where) is None:
            continue
        for key in ("id", "zh", "en"):
            c.text(m, key, where, max_len=60 if key == "id" else 500)
        places = m.get("where")
        if places is not None and not (
            isinstance(places, list) and all(p in ("home", "dispenser", "lookup", "pad") for p in places)
        ):
            c.bad(f"{where}.where", "must list screens: home, dispenser, lookup, pad", places)
    return c.problems


def check_queue_status(doc: object) -> list[str]:
    """GET /queue: the figures a dispenser shows next to each service."""
    c = _Checker(quote=True)
    q = c.obj(doc, "queue")
    if q is None:
        return c.problems
    c.day(q, "day", "queue", optional=True)
    c.integer(q, "priority_waiting", "queue", 0, 100000, optional=True)
    for i, cat in enumerate(c.items(q, "categories", "queue")):
        where = f"queue.categories[{i}]"
        if c.obj(cat, where) is None:
            continue
        c.text(cat, "category", where, max_len=1)
        c.integer(cat, "waiting", where, 0, MAX_PEOPLE)
        c.integer(cat, "est_wait_s", where, 0, MAX_WAIT_S)
        c.text(cat, "last_called", where, optional=True, max_len=20)
    return c.problems


def check_ticket(doc: object, prefix: str, lo: int = 0, hi: int = 99999) -> list[str]:
    """POST /tickets: the number a citizen is handed, printed and called.

    The number must lie in its series' range and the display must be exactly the
    prefix and that number (what the counters call): anything else printed would be
    a ticket nobody calls. The central's day moves the device's service day, so it
    must be a date, not any string."""
    c = _Checker(quote=True)  # ticket numbers are hall data, not personal data
    t = c.obj(doc, "ticket")
    if t is None:
        return c.problems
    c.integer(t, "number", "ticket", lo, hi)
    n = t.get("number")
    if isinstance(n, int) and _is_int(n) and lo <= n <= hi and t.get("display") != f"{prefix}{n:03d}":
        c.bad("ticket.display", f"must be the series prefix and the number ({prefix}{n:03d})", t.get("display"))
    c.day(t, "day", "ticket", optional=True)
    c.integer(t, "people_ahead", "ticket", 0, MAX_PEOPLE, optional=True)
    c.integer(t, "est_wait_s", "ticket", 0, MAX_WAIT_S, optional=True)
    return c.problems


def check_lease(doc: object, size: int, lo: int = 0, hi: int = 99999) -> list[str]:
    """POST /tickets/leases: a block of numbers the device hands out alone while offline."""
    c = _Checker(quote=True)
    lease = c.obj(doc, "lease")
    if lease is None:
        return c.problems
    c.text(lease, "lease_id", "lease", max_len=64)
    c.day(lease, "day", "lease")
    c.integer(lease, "first", "lease", lo, hi)
    c.integer(lease, "last", "lease", lo, hi)
    first, last = lease.get("first"), lease.get("last")
    if (
        isinstance(first, int)
        and isinstance(last, int)
        and _is_int(first)
        and _is_int(last)
        and not 1 <= last - first + 1 <= size
    ):
        c.bad("lease", f"first {first} .. last {last} must be a block of 1 to {size} numbers")
    return c.problems


SESSION_STATES = ("idle", "serving", "ended", "paused")


def check_window_session(doc: object) -> list[str]:
    """GET /windows/{w}/session: what starts and ends a rating on the pad."""
    c = _Checker(quote=False)
    s = c.obj(doc, "session")
    if s is None:
        return c.problems
    if s.get("state") not in SESSION_STATES:
        c.problems.append(f"session.state: must be one of {', '.join(SESSION_STATES)}")
    c.integer(s, "rev", "session", 0, 2**62)
    for key in ("session_id", "ticket", "case_no", "item_code", "item_version", "item_name", "staff_id"):
        c.text(s, key, "session", optional=True)
    if s.get("state") in ("serving", "ended") and not _text(s.get("session_id")):
        c.problems.append("session.session_id: is missing for a session that is serving or ended")
    return c.problems


def check_staff_card(doc: object) -> list[str]:
    """GET /windows/{w}/staff: the card a pad shows."""
    c = _Checker(quote=False)
    card = c.obj(doc, "staff card")
    if card is None:
        return c.problems
    staff_id = card.get("staff_id")
    # The id becomes part of a URL path and a cache key.
    if not isinstance(staff_id, str) or not re.match(r"^[A-Za-z0-9._-]{1,40}$", staff_id):
        c.problems.append("staff card.staff_id: must be 1 to 40 letters, digits, '.', '_' or '-'")
    c.text(card, "name", "staff card", max_len=40)
    c.text(card, "employee_no", "staff card", max_len=40)
    c.integer(card, "stars", "staff card", 0, 5, optional=True)
    return c.problems


CASE_STATUSES = (
    "accepted",
    "reviewing",
    "needs_materials",
    "deciding",
    "completed",
    "ready_for_pickup",
    "delivered",
    "refused",
    "withdrawn",
)


def check_case(doc: object) -> list[str]:
    """POST /cases/lookup: the case a lookup kiosk shows and caches."""
    c = _Checker(quote=False)
    case = c.obj(doc, "case")
    if case is None:
        return c.problems
    c.text(case, "item_name", "case", max_len=300)
    if case.get("status") not in CASE_STATUSES:
        c.problems.append("case.status: must be one of the contract's statuses")
    c.integer(case, "time_limit_days", "case", 0, 10000, optional=True)
    for key in ("status_zh", "status_en", "handler", "window", "due_date", "accepted_at", "applicant_name"):
        c.text(case, key, "case", optional=True, max_len=300)
    for key in ("refusal_reason", "remedy"):
        c.text(case, key, "case", optional=True, max_len=2000)
    if "missing_materials" in case and case["missing_materials"] is not None:
        for i, m in enumerate(c.items(case, "missing_materials", "case")):
            if not _text(m, 500):
                c.problems.append(f"case.missing_materials[{i}]: must be a non-empty string")
    if "steps" in case and case["steps"] is not None:
        for i, st in enumerate(c.items(case, "steps", "case")):
            where = f"case.steps[{i}]"
            if c.obj(st, where) is None:
                continue
            c.text(st, "name_zh", where, optional=True, max_len=200)
            c.text(st, "name_en", where, optional=True, max_len=200)
            if "done" in st and not isinstance(st["done"], bool):
                c.problems.append(f"{where}.done: must be true or false")
    return c.problems


CHECKS: dict[str, Callable[[object], list[str]]] = {
    "config": check_central_config,
    "queue": check_queue_status,
    "session": check_window_session,
    "staff": check_staff_card,
    "case": check_case,
}

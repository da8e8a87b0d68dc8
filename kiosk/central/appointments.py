"""The bench central's bookings (预约) and their check-in, and quotas per time window.

A booking is a slot on one day for one service, known by its code (typed on
the dispenser's keypad or read from the QR code on the citizen's phone) and,
when it was made with an ID card, by the person key (an HMAC of the ID
number with the hall's key: never the number itself). Check-in takes the
ticket and marks the booking used in ONE transaction, so a booking gives at
most one number, and a replayed request_id gets the same answer back.

The rules (docs/central-api.yaml, checkInAppointment):

* a booking may be checked in from ``early_minutes`` before its slot starts
  until ``late_minutes`` after; before: ``too_early`` (with the time it
  opens), after, or a booking of an earlier day: ``expired``;
* ``ticket`` says what number it gets: ``series`` (its own hall-wide series,
  prefix ``prefix``), ``priority`` (the hall-wide priority series) or
  ``service`` (the booked service's ordinary series);
* the central's config (``appointments``) decides; the device's ``policy``
  in the request fills what the central leaves unset.

Quotas: at most ``limit`` walk-in tickets of a service in a span of the day
(``hours``, e.g. "08:30-12:00"). The central's config (``quotas``) decides; a
device's request may carry the quota of its own config for the central to
enforce. Check-ins do not count and are not refused: their place was booked.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import uuid as uuidlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiosk.central.store import CentralStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS bookings (
    booking_id TEXT PRIMARY KEY, code TEXT NOT NULL UNIQUE, person TEXT, category TEXT NOT NULL,
    day TEXT NOT NULL, slot_start TEXT NOT NULL, slot_end TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'booked', created_at TEXT NOT NULL,
    checked_in_at TEXT, device_id TEXT, request_id TEXT, ticket_id INTEGER);
CREATE INDEX IF NOT EXISTS bookings_person ON bookings(person, day);
"""

CODE_RX = re.compile(r"[A-Z0-9]{6,12}")
PERSON_RX = re.compile(r"[0-9a-f]{64}")
HM_RX = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
SPAN_RX = re.compile(r"(\d\d:\d\d)-(\d\d:\d\d)")
TICKET_MODES = ("series", "priority", "service")
DEFAULT_POLICY: dict[str, Any] = {"early_minutes": 30, "late_minutes": 15, "ticket": "series", "prefix": "Y"}
APPOINTMENT_SERIES = "*appointment"


def policy_problem(policy: object) -> str | None:
    """Why a device's policy object breaks the contract, or None."""
    if policy is None:
        return None
    if not isinstance(policy, dict):
        return "policy must be an object"
    for key in ("early_minutes", "late_minutes"):
        v = policy.get(key)
        if key in policy and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 240):
            return f"policy.{key} must be 0..240 minutes"
    if "ticket" in policy and policy["ticket"] not in TICKET_MODES:
        return f"policy.ticket must be one of {', '.join(TICKET_MODES)}"
    if "prefix" in policy and not (isinstance(policy["prefix"], str) and re.fullmatch(r"[A-Z]", policy["prefix"])):
        return "policy.prefix must be one capital letter"
    return None


def quota_problem(quota: object) -> str | None:
    if quota is None:
        return None
    # A span that holds no time ("12:00-08:00") is valid and never applies.
    if not isinstance(quota, dict) or not (isinstance(quota.get("hours"), str) and SPAN_RX.fullmatch(quota["hours"])):
        return 'quota must be {"hours": "HH:MM-HH:MM", "limit": n}'
    limit = quota.get("limit")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 9999:
        return "quota.limit must be 1..9999"
    return None


def _span(hours: object) -> tuple[str, str] | None:
    m = SPAN_RX.fullmatch(hours) if isinstance(hours, str) else None
    return (m.group(1), m.group(2)) if m and m.group(1) < m.group(2) else None


def effective_policy(store: CentralStore, given: dict[str, Any] | None) -> dict[str, Any]:
    """The central's own settings first, then the device's, then the defaults."""
    central = store.device_config()[0].get("appointments")
    out = dict(DEFAULT_POLICY)
    out.update({k: v for k, v in (given or {}).items() if k in DEFAULT_POLICY})
    if isinstance(central, dict):
        out.update({k: v for k, v in central.items() if k in DEFAULT_POLICY})
    return out


def _hm(dt: datetime) -> str:
    return dt.strftime("%H:%M")


def _shift(hm: str, minutes: int) -> str:
    t = datetime.strptime(hm, "%H:%M") + timedelta(minutes=minutes)
    return "23:59" if t.day > 1 else ("00:00" if t.day < 1 else t.strftime("%H:%M"))


# ---- bookings ----------------------------------------------------------------


def create_booking(
    store: CentralStore,
    category: str,
    slot_start: str,
    slot_end: str | None = None,
    *,
    day: str | None = None,
    person: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """A booking for `day` (default: the central's today); returns it with its code and QR payload."""
    store._category(category)  # an unknown service is refused here, not at check-in
    if not HM_RX.fullmatch(slot_start or ""):
        raise ValueError("slot_start: HH:MM, e.g. 09:30")
    slot_end = slot_end or _shift(slot_start, 30)
    if not HM_RX.fullmatch(slot_end) or slot_end <= slot_start:
        raise ValueError("slot_end: HH:MM after slot_start")
    day = day or store.today()
    datetime.strptime(day, "%Y-%m-%d")  # ValueError says what is wrong
    if person is not None and not PERSON_RX.fullmatch(person):
        raise ValueError("person: the 64-hex HMAC of the ID number (never the number itself)")
    code = (code or f"{secrets.randbelow(10**8):08d}").upper()
    if not CODE_RX.fullmatch(code):
        raise ValueError("code: 6..12 letters or digits")
    booking_id = uuidlib.uuid4().hex
    from kiosk.central.store import now_iso

    with store._tx() as db:
        try:
            db.execute(
                "INSERT INTO bookings (booking_id, code, person, category, day, slot_start, slot_end, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (booking_id, code, person, category, day, slot_start, slot_end, now_iso()),
            )
        except sqlite3.IntegrityError:
            raise ValueError(f"a booking with code {code} exists already") from None
    return {
        "booking_id": booking_id,
        "code": code,
        "category": category,
        "day": day,
        "slot_start": slot_start,
        "slot_end": slot_end,
        "qr_payload": qr_payload(code),
    }


def qr_payload(code: str) -> str:
    """What the booking QR on a phone holds (docs/central-api.yaml, BookingQR)."""
    return f"APPT:{code}"


def bookings(store: CentralStore, day: str | None = None) -> list[dict[str, Any]]:
    rows = store._q("SELECT * FROM bookings WHERE day = ? ORDER BY slot_start, code", (day or store.today(),))
    return [dict(r) for r in rows]


def _answer(db: sqlite3.Connection, store: CentralStore, booking: sqlite3.Row) -> dict[str, Any]:
    ticket = db.execute("SELECT * FROM tickets WHERE id = ?", (booking["ticket_id"],)).fetchone()
    cat = store._category(booking["category"])
    return {
        "appointment": {
            "id": booking["booking_id"],
            "category": booking["category"],
            "day": booking["day"],
            "slot_start": booking["slot_start"],
            "slot_end": booking["slot_end"],
            "name_zh": cat["name_zh"],
            "name_en": cat["name_en"],
        },
        "ticket": store._ticket_json(ticket),
    }


def _refuse(status: int, code: str, message: str, **extra: Any) -> Exception:
    from kiosk.central.store import StoreError

    return StoreError(status, code, message, **extra)


def _pick(rows: list[sqlite3.Row], today: str, now_hm: str, policy: dict[str, Any]) -> sqlite3.Row:
    """The booking to check in, or the refusal that explains why none can be."""
    early, late = int(policy["early_minutes"]), int(policy["late_minutes"])
    if not rows:
        raise _refuse(404, "unknown_booking", "no booking with this code (or for this person today)")
    today_rows = [r for r in rows if r["day"] == today]
    open_now = [
        r
        for r in today_rows
        if r["state"] == "booked" and _shift(r["slot_start"], -early) <= now_hm <= _shift(r["slot_start"], late)
    ]
    if open_now:
        return min(open_now, key=lambda r: r["slot_start"])
    later = sorted(
        (r for r in today_rows if r["state"] == "booked" and now_hm < _shift(r["slot_start"], -early)),
        key=lambda r: r["slot_start"],
    )
    future = sorted((r for r in rows if r["state"] == "booked" and r["day"] > today), key=lambda r: r["day"])
    used = [r for r in rows if r["state"] == "checked_in"]
    if later:
        r = later[0]
        opens = _shift(r["slot_start"], -early)
        raise _refuse(
            409, "too_early", f"check-in opens at {opens}", opens_at=opens, day=r["day"], slot_start=r["slot_start"]
        )
    if used and not future:
        raise _refuse(
            409, "already_used", "this booking was already checked in", checked_in_at=used[0]["checked_in_at"]
        )
    if future:
        r = future[0]
        raise _refuse(
            409,
            "too_early",
            f"the booking is for {r['day']}",
            opens_at=_shift(r["slot_start"], -early),
            day=r["day"],
            slot_start=r["slot_start"],
        )
    raise _refuse(410, "expired", "the booking's check-in time has passed")


def check_in(
    store: CentralStore,
    device_id: str,
    request_id: str,
    *,
    code: str | None = None,
    person: str | None = None,
    policy: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], bool]:
    """(answer, created): the ticket for a booking, taken and the booking used in one transaction."""
    with store._tx() as db:
        done = db.execute(
            "SELECT * FROM bookings WHERE device_id = ? AND request_id = ?", (device_id, request_id)
        ).fetchone()
        if done is not None and done["state"] == "checked_in":
            return _answer(db, store, done), False
        if db.execute(
            "SELECT 1 FROM tickets WHERE device_id = ? AND request_id = ?", (device_id, request_id)
        ).fetchone():
            raise _refuse(409, "conflict", "this request_id was already used for another ticket")
        if db.execute(
            "SELECT 1 FROM abandoned_requests WHERE device_id = ? AND request_id = ?", (device_id, request_id)
        ).fetchone():
            raise _refuse(409, "abandoned", "the device reported this request_id abandoned: no check-in")
        rules = effective_policy(store, policy)
        today, now_hm = store.today(), _hm(store.now())
        if code is not None:
            rows = db.execute("SELECT * FROM bookings WHERE code = ?", (code.upper(),)).fetchall()
        else:
            rows = db.execute("SELECT * FROM bookings WHERE person = ? AND day >= ?", (person, today)).fetchall()
        booking = _pick(rows, today, now_hm, rules)
        cat = store._category(booking["category"])
        mode = rules["ticket"]
        if mode == "series":
            series, prefix, lo, hi, prio = APPOINTMENT_SERIES, rules["prefix"], 1, 899, False
        else:
            series, prefix, lo, hi = store._series(booking["category"], mode == "priority")
            prio = mode == "priority"
        number = store._take_numbers(db, today, series, lo, hi, 1)
        ahead = db.execute(
            "SELECT COUNT(*) FROM tickets WHERE day = ? AND series = ? AND state = 'waiting'", (today, series)
        ).fetchone()[0]
        est = int(ahead * cat["avg_service_s"] / store._windows_for(db, booking["category"]))
        issued = store.now().isoformat(timespec="seconds")
        cur = db.execute(
            "INSERT INTO tickets (day, series, category, number, display, priority, request_id, device_id, source,"
            " people_ahead, est_wait_s, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'appointment', ?, ?, ?)",
            (
                today,
                series,
                booking["category"],
                number,
                f"{prefix}{number:03d}",
                int(prio),
                request_id,
                device_id,
                ahead,
                est,
                issued,
            ),
        )
        db.execute(
            "UPDATE bookings SET state = 'checked_in', checked_in_at = ?, device_id = ?, request_id = ?, ticket_id = ?"
            " WHERE booking_id = ?",
            (issued, device_id, request_id, cur.lastrowid, booking["booking_id"]),
        )
        row = db.execute("SELECT * FROM bookings WHERE booking_id = ?", (booking["booking_id"],)).fetchone()
        return _answer(db, store, row), True


def release_abandoned(db: sqlite3.Connection, device_id: str, request_id: str) -> None:
    """The device gave up a check-in (its answer never arrived): the booking may be checked in again,
    unless a counter already called its ticket."""
    row = db.execute(
        "SELECT b.booking_id, t.state FROM bookings b JOIN tickets t ON t.id = b.ticket_id "
        "WHERE b.device_id = ? AND b.request_id = ? AND b.state = 'checked_in'",
        (device_id, request_id),
    ).fetchone()
    if row is not None and row["state"] in ("waiting", "void"):
        db.execute(
            "UPDATE bookings SET state = 'booked', checked_in_at = NULL, device_id = NULL, request_id = NULL,"
            " ticket_id = NULL WHERE booking_id = ?",
            (row["booking_id"],),
        )


# ---- quotas ------------------------------------------------------------------


def quota_for(store: CentralStore, category: str, given: dict[str, Any] | None) -> dict[str, Any] | None:
    """The quota of `category` whose span holds now: the central's own, else the device's given one."""
    now_hm = _hm(store.now())
    central = store.device_config()[0].get("quotas")
    candidates = [q for q in central if isinstance(q, dict)] if isinstance(central, list) else []
    if isinstance(central, list):
        candidates = [q for q in candidates if q.get("category") == category]
    elif given is not None:
        candidates = [dict(given, category=category)]
    for q in candidates:
        span = _span(q.get("hours"))
        if span and span[0] <= now_hm < span[1] and isinstance(q.get("limit"), int):
            return {"hours": q["hours"], "limit": q["limit"]}
    return None


def quota_issued(store: CentralStore, db: sqlite3.Connection, category: str, hours: str) -> int:
    """Walk-in tickets of the service taken today in the span (void ones do not count)."""
    span = _span(hours)
    if span is None:
        return 0
    n = 0
    for r in db.execute(
        "SELECT issued_at FROM tickets WHERE day = ? AND category = ? AND source != 'appointment' AND state != 'void'",
        (store.today(), category),
    ):
        try:
            t = datetime.fromisoformat(r["issued_at"])
        except ValueError:
            continue
        now = store.now()
        if t.tzinfo is not None and now.tzinfo is not None:
            t = t.astimezone(now.tzinfo)
        if span[0] <= _hm(t) < span[1]:
            n += 1
    return n


def check_quota(
    store: CentralStore, db: sqlite3.Connection, category: str, given: dict[str, Any] | None
) -> dict | None:
    """The quota that applies, with `issued` so far; StoreError 409 quota_full when it is used up."""
    q = quota_for(store, category, given)
    if q is None:
        return None
    issued = quota_issued(store, db, category, q["hours"])
    if issued >= q["limit"]:
        raise _refuse(
            409,
            "quota_full",
            f"the {q['limit']} numbers of service {category} for {q['hours']} are taken",
            quota=dict(q, issued=issued),
        )
    return dict(q, issued=issued)

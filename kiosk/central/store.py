"""Storage and rules of the bench central: SQLite under its data directory.

Everything the contract promises lives here, independent of HTTP, so the
Python API (tests, demo) and the HTTP handlers share one implementation:
hall-wide ticket numbering, leases, exactly-once event intake, case lookup
with lockout, window sessions with long-polling, staff cards, heartbeats.

One connection behind a lock: the bench central serves a handful of devices,
and serialising writes keeps numbering and dedup trivially correct.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import sqlite3
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from kiosk.central import appointments, seed
from kiosk.central.scope import EVENT_ROLE, Scope, check_roles
from kiosk.core import keys
from kiosk.core.privacy import mask_name
from kiosk.core.time import hall_now

log = logging.getLogger("kiosk.central")

# The tables whose keys changed in schema 1 (ids scoped per device) are kept
# apart so an older data directory can be rebuilt into them (see _migrate).
REBUILT = {
    "tickets": """CREATE TABLE IF NOT EXISTS tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    day TEXT NOT NULL, series TEXT NOT NULL, category TEXT NOT NULL, number INTEGER NOT NULL,
    display TEXT NOT NULL, priority INTEGER NOT NULL, request_id TEXT, device_id TEXT NOT NULL,
    source TEXT NOT NULL, people_ahead INTEGER, est_wait_s INTEGER, issued_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'waiting', called_at TEXT, window TEXT, UNIQUE (device_id, request_id))""",
    "leases": """CREATE TABLE IF NOT EXISTS leases (
    lease_id TEXT PRIMARY KEY, request_id TEXT, device_id TEXT NOT NULL, day TEXT NOT NULL,
    category TEXT NOT NULL, series TEXT NOT NULL, priority INTEGER NOT NULL,
    first INTEGER NOT NULL, last INTEGER NOT NULL, issued_at TEXT NOT NULL, UNIQUE (device_id, request_id))""",
    "events": """CREATE TABLE IF NOT EXISTS events (
    id TEXT NOT NULL, device_id TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
    created_at TEXT NOT NULL, boot_id TEXT NOT NULL, seq INTEGER NOT NULL, received_at TEXT NOT NULL,
    PRIMARY KEY (device_id, id))""",
}

SCHEMA_VERSION = 1
SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY, device_id TEXT NOT NULL, issued_at TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0,
    roles TEXT NOT NULL DEFAULT '[]', window TEXT);
CREATE TABLE IF NOT EXISTS series (
    day TEXT NOT NULL, series TEXT NOT NULL, next_number INTEGER NOT NULL, PRIMARY KEY (day, series));
"""
    + ";\n".join(REBUILT.values())
    + """;
CREATE INDEX IF NOT EXISTS tickets_queue ON tickets(day, series, state);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind);
CREATE TABLE IF NOT EXISTS lease_floor (
    day TEXT NOT NULL, series TEXT NOT NULL, lowest INTEGER NOT NULL, PRIMARY KEY (day, series));
CREATE TABLE IF NOT EXISTS abandoned_requests (
    device_id TEXT NOT NULL, request_id TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (device_id, request_id));
CREATE TABLE IF NOT EXISTS rating_outcomes (
    window TEXT NOT NULL, session_id TEXT NOT NULL, device_id TEXT NOT NULL, event_id TEXT NOT NULL,
    outcome TEXT NOT NULL, PRIMARY KEY (window, session_id));
CREATE TABLE IF NOT EXISTS rejections (
    n INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT, device_id TEXT NOT NULL, kind TEXT,
    reason TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS heartbeats (
    n INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, health TEXT NOT NULL, received_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cases (
    receipt_no TEXT PRIMARY KEY, query_code TEXT NOT NULL, data TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lookup_failures (
    receipt_no TEXT PRIMARY KEY, failures INTEGER NOT NULL, locked_until REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS staff (
    staff_id TEXT PRIMARY KEY, name TEXT NOT NULL, employee_no TEXT NOT NULL, stars INTEGER NOT NULL,
    photo BLOB NOT NULL, photo_type TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS windows (
    window TEXT PRIMARY KEY, categories TEXT NOT NULL, staff_id TEXT,
    state TEXT NOT NULL DEFAULT 'idle', session_id TEXT, ticket TEXT, case_no TEXT,
    item_code TEXT, item_version TEXT, item_name TEXT, started_at TEXT, ended_at TEXT,
    rev INTEGER NOT NULL DEFAULT 0, changed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY, window TEXT NOT NULL, staff_id TEXT, ticket TEXT, case_no TEXT,
    started_at TEXT NOT NULL, ended_at TEXT, item_code TEXT, item_version TEXT, item_name TEXT, case_type TEXT);
"""
    + appointments.SCHEMA
)

# Event kinds the central knows: <family>.<what>. An unknown family is a
# device bug (or a newer device than this central) and is rejected, not stored.
KIND_RX = re.compile(r"(ticket|rating|lookup|audit|device|printer|pad)\.[a-z][a-z0-9_]{0,39}")
# The outcomes of a rating session: exactly one per window session (一次一评).
# rating.incomplete: a ★2/★1 chosen whose required reason was not, kept for
# verification but never exported as a rating (docs/rating-sessions.md).
RATING_OUTCOMES = ("rating.submitted", "rating.incomplete", "rating.not_rated")
# Sessions a clerk opens on the pad itself (offline 请评价 button) carry this prefix.
CLERK_SESSION_PREFIX = "L-"
RECEIPT_RX = re.compile(r"[A-Za-z0-9-]{4,40}")
REQUEST_ID_RX = re.compile(r"[A-Za-z0-9._:-]{1,64}")

CASE_STATUSES = {
    "accepted": ("已受理", "Accepted"),
    "reviewing": ("审查中", "Under review"),
    "needs_materials": ("待补正", "Materials missing"),
    "deciding": ("审批中", "Awaiting decision"),
    "completed": ("已办结", "Completed"),
    "ready_for_pickup": ("待领取", "Ready for collection"),
    "delivered": ("已领取/已送达", "Collected / delivered"),
    "refused": ("不予受理", "Not accepted"),
    "withdrawn": ("已撤回", "Withdrawn"),
}
COLLECTION_METHODS = ("window", "post", "online")
WINDOW_STATES = ("idle", "serving", "ended", "paused")


def _issued_at(body: dict, created_at: str) -> str:
    """When a device issued an offline ticket: its issued_at (quota spans count by it), else the event's time."""
    v = body.get("issued_at")
    try:
        if isinstance(v, str) and len(v) <= 40:
            datetime.fromisoformat(v)
            return v
    except ValueError:
        pass
    return created_at


class StoreError(Exception):
    """A request the rules refuse; `code` is the JSON error code, `status` the HTTP status."""

    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


# The hall's zone, not the host's: the bench central may run on a UTC server and
# its service day, and the times it hands out, are the hall's (as its opening_hours say).
HALL_ZONE = ZoneInfo(str(seed.OPENING_HOURS["timezone"]))


def now_iso() -> str:
    return hall_now(HALL_ZONE).isoformat(timespec="seconds")


def canonical(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_working_days(start: date, days: int) -> date:
    d = start
    while days > 0:
        d += timedelta(days=1)
        if d.weekday() < 5:
            days -= 1
    return d


class CentralStore:
    def __init__(
        self,
        data_dir: str | Path,
        *,
        max_code_attempts: int = 5,
        lockout_s: float = 900.0,
        receipt_url: str = "https://zwfw.example.gov.cn/q?slbh={receipt_no}&cxm={query_code}",
    ):
        self.dir = Path(data_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_code_attempts = max_code_attempts
        self.lockout_s = lockout_s
        self.receipt_url = receipt_url
        self.today: Callable[[], str] = lambda: hall_now(HALL_ZONE).date().isoformat()
        # The hall's wall time, for booking slots and quota spans (tests set a fixed one).
        self.now: Callable[[], datetime] = lambda: hall_now(HALL_ZONE)
        self._lock = threading.RLock()
        self._readers = threading.local()
        self._readers_lock = threading.Lock()
        self._reader_list: list[sqlite3.Connection] = []
        self.window_changed = threading.Condition(self._lock)
        self._db = sqlite3.connect(
            str(self.dir / keys.CENTRAL_DB_FILE), isolation_level=None, check_same_thread=False, timeout=30
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL, as on the devices: a device marks an event delivered on our
        # acknowledgement, so an acknowledged event lost in a power cut here
        # would be lost for good.
        self._db.execute("PRAGMA synchronous=FULL")
        self._migrate()
        if self._meta("seeded") is None:
            self._seed()

    # -- plumbing ---------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._db.close()
        with self._readers_lock:
            for db in self._reader_list:
                db.close()
            self._reader_list.clear()

    def _r(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        """A read on this thread's own read-only connection: under WAL it sees every
        committed write and never waits for the store lock, so the bench pages and
        token checks cannot hold up the device API's writes (nor they them)."""
        db = getattr(self._readers, "db", None)
        if db is None:
            uri = (self.dir / keys.CENTRAL_DB_FILE).resolve().as_uri() + "?mode=ro"
            db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
            db.row_factory = sqlite3.Row
            self._readers.db = db
            with self._readers_lock:
                self._reader_list.append(db)
        return db.execute(sql, params).fetchall()

    def _q(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _tx(self):
        store = self

        class Tx:
            def __enter__(self):
                store._lock.acquire()
                store._db.execute("BEGIN IMMEDIATE")
                return store._db

            def __exit__(self, exc_type, exc, tb):
                try:
                    store._db.execute("ROLLBACK" if exc_type else "COMMIT")
                finally:
                    store._lock.release()

        return Tx()

    def _migrate(self) -> None:
        """Bring a data directory of an older bench central up to SCHEMA_VERSION, keeping its data.

        Schema 0 kept request ids and event ids hall-wide (one device could take
        another's ticket or pre-empt its event id) and tokens without roles. Its
        tokens keep working for whoami only: each device needs a new token with roles."""
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.dir} was written by a newer bench central (schema {version}); use that version or a new --data"
            )
        old = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        db.execute("BEGIN IMMEDIATE")
        try:
            if version == 0 and "tokens" in old:
                cols = {r[1] for r in db.execute("PRAGMA table_info(tokens)")}
                if "roles" not in cols:
                    db.execute("ALTER TABLE tokens ADD COLUMN roles TEXT NOT NULL DEFAULT '[]'")
                    db.execute("ALTER TABLE tokens ADD COLUMN window TEXT")
                if "sessions" in old:
                    for col in ("item_code", "item_version", "item_name", "case_type"):
                        db.execute(f"ALTER TABLE sessions ADD COLUMN {col} TEXT")
                for table, ddl in REBUILT.items():
                    if table in old:
                        db.execute(f"ALTER TABLE {table} RENAME TO old_{table}")
                        db.execute(ddl)
                        db.execute(f"INSERT INTO {table} SELECT * FROM old_{table}")
                        db.execute(f"DROP TABLE old_{table}")
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _meta(self, key: str) -> str | None:
        rows = self._q("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def _set_meta(self, db, key: str, value: str) -> None:
        db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def _seed(self) -> None:
        cfg = {
            "hall": "示范政务服务中心",
            "hall_en": "Demo Government Service Center",
            "categories": [
                {k: c[k] for k in ("code", "prefix", "name_zh", "name_en", "number_min", "number_max")}
                | {"avg_service_s": c["avg_service_s"]}
                for c in seed.CATEGORIES
            ],
            "priority": seed.PRIORITY,
            "opening_hours": seed.OPENING_HOURS,
            "rating_reasons": seed.RATING_REASONS,
            "messages": seed.MESSAGES,
        }
        with self._tx() as db:
            self._set_meta(db, "device_config", canonical(cfg))
            for window, cats, staff_id, name, emp, stars in seed.WINDOWS:
                db.execute(
                    "INSERT INTO staff VALUES (?, ?, ?, ?, ?, 'image/png', ?)",
                    (staff_id, name, emp, stars, seed.staff_photo_png(seed.stable_seed(staff_id)), now_iso()),
                )
                db.execute(
                    "INSERT INTO windows (window, categories, staff_id, changed_at) VALUES (?, ?, ?, ?)",
                    (window, canonical(cats), staff_id, now_iso()),
                )
            self._set_meta(db, "seeded", now_iso())
        for case in seed.DEMO_CASES:
            self.create_case(**case)
        for code, category, slot in seed.DEMO_BOOKINGS:
            self.create_booking(category, slot, code=code)

    # -- tokens -----------------------------------------------------------
    def issue_token(self, device_id: str, roles: list[str] | tuple[str, ...], window: str | None = None) -> str:
        """A new token for one device, scoped to its roles (and, for a pad, its window)."""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", device_id or ""):
            raise ValueError(f"device id {device_id!r}: use letters, digits, '.', '_' or '-'")
        role_set, window = check_roles(roles, window)
        if window is not None and not self._q("SELECT 1 FROM windows WHERE window = ?", (window,)):
            known = ", ".join(r["window"] for r in self._q("SELECT window FROM windows ORDER BY window"))
            raise ValueError(f"window {window!r} is not a window of this hall (windows: {known})")
        token = secrets.token_urlsafe(32)
        with self._tx() as db:
            # Only the hash is kept: a copy of the database lets no one act as a device.
            db.execute(
                "INSERT INTO tokens (token_hash, device_id, issued_at, revoked, roles, window)"
                " VALUES (?, ?, ?, 0, ?, ?)",
                (token_hash(token), device_id, now_iso(), canonical(sorted(role_set)), window),
            )
        return token

    def revoke_tokens(self, device_id: str) -> int:
        """Revoke every token of the device; returns how many were still valid."""
        with self._tx() as db:
            cur = db.execute("UPDATE tokens SET revoked = 1 WHERE device_id = ? AND revoked = 0", (device_id,))
            return cur.rowcount

    def scope_for_token(self, token: str) -> Scope | None:
        rows = self._r(
            "SELECT device_id, roles, window FROM tokens WHERE token_hash = ? AND revoked = 0", (token_hash(token),)
        )
        if not rows:
            return None
        r = rows[0]
        return Scope(r["device_id"], frozenset(json.loads(r["roles"])), r["window"])

    def device_for_token(self, token: str) -> str | None:
        scope = self.scope_for_token(token)
        return scope.device_id if scope else None

    def token_list(self) -> list[dict]:
        """Every token as the bench page lists it: never the token, a short prefix of its hash."""
        return [
            {
                "device_id": r["device_id"],
                "roles": json.loads(r["roles"]),
                "window": r["window"],
                "issued_at": r["issued_at"],
                "revoked": bool(r["revoked"]),
                "hash_prefix": r["token_hash"][:8],
            }
            for r in self._r("SELECT * FROM tokens ORDER BY issued_at, rowid")
        ]

    # -- device config ----------------------------------------------------
    def device_config(self) -> tuple[dict, str]:
        raw = self._meta("device_config")
        if raw is None:  # written when the store is made: only a hand-edited database lacks it
            raise RuntimeError("the bench central has no device config (its database was edited?)")
        etag = '"' + hashlib.sha256(raw.encode()).hexdigest()[:20] + '"'
        cfg = json.loads(raw)
        cfg["version"] = etag.strip('"')
        return cfg, etag

    def update_device_config(self, **changes) -> None:
        with self._tx() as db:
            cfg = json.loads(db.execute("SELECT value FROM meta WHERE key='device_config'").fetchone()[0])
            cfg.update(changes)
            self._set_meta(db, "device_config", canonical(cfg))

    def _category(self, code: str) -> dict:
        cfg, _ = self.device_config()
        for c in cfg["categories"]:
            if c["code"] == code:
                return c
        raise StoreError(404, "unknown_category", f"no service category {code!r}; the device config lists the codes")

    def _series(self, category: str, priority: bool) -> tuple[str, str, int, int]:
        """(series key, display prefix, min, max): priority tickets share one hall-wide series."""
        if priority:
            p = self.device_config()[0]["priority"]
            return "*priority", p["prefix"], p["number_min"], p["number_max"]
        c = self._category(category)
        return category, c["prefix"], c["number_min"], c["number_max"]

    # Online numbers count up from number_min; leased blocks are cut from the top
    # (number_max down). So the day's first ticket is A001 however many blocks the
    # dispensers leased at start, online numbers stay sequential, and the two
    # never meet: a request that would cross the other side is range_exhausted.
    def _lease_floor(self, db, day: str, series: str, hi: int) -> int:
        row = db.execute("SELECT lowest FROM lease_floor WHERE day = ? AND series = ?", (day, series)).fetchone()
        return row["lowest"] if row else hi + 1

    def _take_top(self, db, day: str, series: str, lo: int, hi: int, size: int) -> int:
        row = db.execute("SELECT next_number FROM series WHERE day = ? AND series = ?", (day, series)).fetchone()
        online_next = row["next_number"] if row else lo
        first = self._lease_floor(db, day, series, hi) - size
        if first < online_next:
            raise StoreError(
                409,
                "range_exhausted",
                f"numbers {lo}..{hi} for today are used up; the device should use its offline range",
            )
        db.execute(
            "INSERT INTO lease_floor VALUES (?, ?, ?) ON CONFLICT(day, series) DO UPDATE SET lowest = ?",
            (day, series, first, first),
        )
        return first

    def _take_numbers(self, db, day: str, series: str, lo: int, hi: int, size: int) -> int:
        row = db.execute("SELECT next_number FROM series WHERE day = ? AND series = ?", (day, series)).fetchone()
        first = row["next_number"] if row else lo
        if first + size - 1 >= self._lease_floor(db, day, series, hi):
            raise StoreError(
                409,
                "range_exhausted",
                f"numbers {lo}..{hi} for today are used up; the device should use its offline range",
            )
        db.execute(
            "INSERT INTO series VALUES (?, ?, ?) ON CONFLICT(day, series) DO UPDATE SET next_number = ?",
            (day, series, first + size, first + size),
        )
        return first

    def _windows_for(self, db, category: str) -> int:
        n = sum(1 for r in db.execute("SELECT categories FROM windows") if category in json.loads(r["categories"]))
        return max(1, n)

    # -- tickets ----------------------------------------------------------
    def issue_ticket(
        self, device_id: str, request_id: str, category: str, priority: bool = False, quota: dict | None = None
    ) -> tuple[dict, bool]:
        """Returns (ticket, created). A replayed request_id gets the same ticket back.

        quota: the device's own quota for this service ({"hours", "limit"}); the
        central's config (`quotas`) overrides it (kiosk/central/appointments.py)."""
        series, prefix, lo, hi = self._series(category, priority)
        cat = self._category(category)
        with self._tx() as db:
            # Request ids are the device's own: another device's id finds nothing here.
            row = db.execute(
                "SELECT * FROM tickets WHERE device_id = ? AND request_id = ?", (device_id, request_id)
            ).fetchone()
            if row is not None:
                if row["category"] != category or bool(row["priority"]) != bool(priority):
                    raise StoreError(409, "conflict", "this request_id was already used for another ticket")
                return self._ticket_json(row), False
            if db.execute(
                "SELECT 1 FROM abandoned_requests WHERE device_id = ? AND request_id = ?", (device_id, request_id)
            ).fetchone():
                # The device gave this request up (its report overtook a slow request):
                # a number made now would be held by nobody, so none is taken.
                raise StoreError(409, "abandoned", "the device reported this request_id abandoned: no ticket")
            day = self.today()
            applied = appointments.check_quota(self, db, category, quota)
            # Leased blocks come from the top (_take_top), so a leased number is never handed out here.
            number = self._take_numbers(db, day, series, lo, hi, 1)
            ahead = db.execute(
                "SELECT COUNT(*) FROM tickets WHERE day = ? AND series = ? AND state = 'waiting'", (day, series)
            ).fetchone()[0]
            est = int(ahead * cat["avg_service_s"] / self._windows_for(db, category))
            cur = db.execute(
                "INSERT INTO tickets (day, series, category, number, display, priority, request_id, device_id, source,"
                " people_ahead, est_wait_s, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'online', ?, ?, ?)",
                (
                    day,
                    series,
                    category,
                    number,
                    f"{prefix}{number:03d}",
                    int(priority),
                    request_id,
                    device_id,
                    ahead,
                    est,
                    # The hall's time (quota spans are read from it).
                    self.now().isoformat(timespec="seconds"),
                ),
            )
            row = db.execute("SELECT * FROM tickets WHERE id = ?", (cur.lastrowid,)).fetchone()
            answer = self._ticket_json(row)
            if applied is not None:
                answer["quota"] = dict(applied, issued=applied["issued"] + 1)
            return answer, True

    @staticmethod
    def _ticket_json(r) -> dict:
        return {
            "request_id": r["request_id"],
            "category": r["category"],
            "priority": bool(r["priority"]),
            "number": r["number"],
            "display": r["display"],
            "people_ahead": r["people_ahead"],
            "est_wait_s": r["est_wait_s"],
            "issued_at": r["issued_at"],
            "day": r["day"],
        }

    def lease(
        self, device_id: str, category: str, size: int, request_id: str | None = None, priority: bool = False
    ) -> tuple[dict, bool]:
        if not 1 <= size <= 500:
            raise StoreError(400, "invalid", "size must be 1..500")
        series, prefix, lo, hi = self._series(category, priority)
        with self._tx() as db:
            if request_id:
                row = db.execute(
                    "SELECT * FROM leases WHERE device_id = ? AND request_id = ?", (device_id, request_id)
                ).fetchone()
                if row is not None:
                    return self._lease_json(row, prefix), False
            day = self.today()
            first = self._take_top(db, day, series, lo, hi, size)
            lease_id = uuidlib.uuid4().hex
            db.execute(
                "INSERT INTO leases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    lease_id,
                    request_id,
                    device_id,
                    day,
                    category,
                    series,
                    int(priority),
                    first,
                    first + size - 1,
                    now_iso(),
                ),
            )
            row = db.execute("SELECT * FROM leases WHERE lease_id = ?", (lease_id,)).fetchone()
            return self._lease_json(row, prefix), True

    @staticmethod
    def _lease_json(r, prefix: str) -> dict:
        return {
            "lease_id": r["lease_id"],
            "request_id": r["request_id"],
            "category": r["category"],
            "priority": bool(r["priority"]),
            "prefix": prefix,
            "day": r["day"],
            "first": r["first"],
            "last": r["last"],
            "issued_at": r["issued_at"],
        }

    def queue_status(self, category: str | None = None) -> dict:
        cfg, _ = self.device_config()
        day = self.today()
        cats = [c for c in cfg["categories"] if category in (None, c["code"])]
        if category and not cats:
            raise StoreError(404, "unknown_category", f"no service category {category!r}")
        out = []
        with self._tx() as db:
            for c in cats:
                waiting = db.execute(
                    "SELECT COUNT(*) FROM tickets WHERE day = ? AND series = ? AND state = 'waiting'", (day, c["code"])
                ).fetchone()[0]
                last = db.execute(
                    "SELECT display FROM tickets WHERE day = ? AND series = ? AND state = 'called' "
                    "ORDER BY called_at DESC, id DESC LIMIT 1",
                    (day, c["code"]),
                ).fetchone()
                figures = {
                    "category": c["code"],
                    "waiting": waiting,
                    "est_wait_s": int(waiting * c["avg_service_s"] / self._windows_for(db, c["code"])),
                    "last_called": last["display"] if last else None,
                }
                q = appointments.quota_for(self, c["code"], None)
                if q is not None:
                    issued = appointments.quota_issued(self, db, c["code"], q["hours"])
                    figures["quota"] = dict(q, issued=issued, full=issued >= q["limit"])
                out.append(figures)
            prio = db.execute(
                "SELECT COUNT(*) FROM tickets WHERE day = ? AND series = '*priority' AND state = 'waiting'", (day,)
            ).fetchone()[0]
        return {"day": day, "updated_at": now_iso(), "categories": out, "priority_waiting": prio}

    # -- events -----------------------------------------------------------
    def _check_event(self, scope: Scope, ev: Any) -> str | None:
        """None if the event is acceptable, else why it is not (told to the device, kept as a rejection)."""
        if not isinstance(ev, dict):
            return "invalid: an event must be a JSON object"
        try:
            if str(uuidlib.UUID(str(ev.get("id")))) != str(ev.get("id")).lower():
                raise ValueError
        except ValueError:
            return "invalid: id must be a UUID in canonical form"
        kind = ev.get("kind")
        if not isinstance(kind, str) or not KIND_RX.fullmatch(kind):
            return f"unknown_kind: {str(kind)[:60]!r} is not a kind this central accepts"
        if ev.get("device_id") != scope.device_id:
            return "invalid: device_id does not match the device token"
        role = EVENT_ROLE[kind.split(".", 1)[0]]
        if role is not None and role not in scope.roles:
            return f"forbidden: {kind} events come from a {role}; this token's roles are {sorted(scope.roles)}"
        ca = ev.get("created_at")
        try:
            if not isinstance(ca, str):
                raise TypeError(ca)
            datetime.fromisoformat(ca)
        except (TypeError, ValueError):
            return "invalid: created_at must be an ISO 8601 time"
        if not isinstance(ev.get("boot_id"), str) or not ev["boot_id"]:
            return "invalid: boot_id must be a non-empty string"
        seq = ev.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            return "invalid: seq must be a non-negative integer"
        body = ev.get("body")
        if not isinstance(body, dict):
            return "invalid: body must be a JSON object"
        if kind == "ticket.issued" and (
            not isinstance(body.get("category"), str)
            or not isinstance(body.get("number"), int)
            or isinstance(body.get("number"), bool)
        ):
            return "invalid: ticket.issued needs category (string) and number (integer)"
        if kind == "ticket.abandoned" and not (
            isinstance(body.get("request_id"), str) and REQUEST_ID_RX.fullmatch(body["request_id"])
        ):
            return "invalid: ticket.abandoned needs the request_id (1..64 of A-Za-z0-9._:-) it gives up"
        if kind == "rating.submitted":
            level, reasons = body.get("level"), body.get("reasons", [])
            if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 5:
                return "invalid: rating.submitted needs level 1..5"
            if not isinstance(reasons, list) or (level <= 2 and not reasons):
                return "invalid: a rating of 1 or 2 needs at least one reason"
        if kind in RATING_OUTCOMES:
            if body.get("window") != scope.window:
                return f"forbidden: this pad rates window {scope.window} only, not {str(body.get('window'))[:8]!r}"
            sid = body.get("session_id")
            if not isinstance(sid, str) or not 1 <= len(sid) <= 64:
                return f"invalid: {kind} needs the session_id (1..64 characters) of the service it rates"
        return None

    def _check_session(self, db, scope: Scope, ev: dict) -> str | None:
        """A rating outcome must be for a session of the pad's own window (a clerk-opened
        offline session, `L-…`, is the pad's own), and only one per session (一次一评)."""
        body = ev["body"]
        sid = body["session_id"]
        if not sid.startswith(CLERK_SESSION_PREFIX):
            row = db.execute("SELECT window FROM sessions WHERE session_id = ?", (sid,)).fetchone()
            if row is None or row["window"] != scope.window:
                return f"invalid: no service session {sid[:12]}… at window {scope.window}"
        taken = db.execute(
            "SELECT device_id, event_id FROM rating_outcomes WHERE window = ? AND session_id = ?", (scope.window, sid)
        ).fetchone()
        if taken is not None:
            return "already_rated: this service session already has its rating outcome (一次一评)"
        return None

    def accept_events(self, scope: Scope, events: list) -> list[dict]:
        """Exactly-once intake per device: same id + same content is a duplicate, same id + other
        content a conflict. Ids are the device's own: another device's id never collides.

        Each event in its own savepoint: one that breaks in a way no check
        foresaw (a number SQLite cannot hold, ...) is rejected alone, and the
        rest of the batch is still taken."""
        results = []
        with self._tx() as db:
            for ev in events:
                eid = ev.get("id") if isinstance(ev, dict) else None
                eid = eid if isinstance(eid, str) else None
                db.execute("SAVEPOINT one_event")
                try:
                    result = self._accept_one(db, scope, ev, eid)
                except (sqlite3.Error, OverflowError, TypeError, ValueError, KeyError) as e:
                    db.execute("ROLLBACK TO one_event")
                    log.warning("bench central: event of %s could not be stored: %s", scope.device_id, type(e).__name__)
                    result = {"id": eid, "status": "rejected", "reason": f"invalid: the event cannot be stored ({e})"}
                    self._reject(db, scope, ev, eid, result["reason"])
                db.execute("RELEASE one_event")
                results.append(result)
        return results

    def _accept_one(self, db, scope: Scope, ev: Any, eid: str | None) -> dict:
        why = self._check_event(scope, ev)
        if why is None:
            content = canonical(ev["body"])
            row = db.execute(
                "SELECT kind, body FROM events WHERE device_id = ? AND id = ?", (scope.device_id, eid)
            ).fetchone()
            if row is not None:
                if (row["kind"], row["body"]) == (ev["kind"], content):
                    return {"id": eid, "status": "duplicate"}
                why = "conflict: this id was already received with a different body"
            elif ev["kind"] in RATING_OUTCOMES:
                why = self._check_session(db, scope, ev)
            if why is None:
                db.execute(
                    "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (eid, scope.device_id, ev["kind"], content, ev["created_at"], ev["boot_id"], ev["seq"], now_iso()),
                )
                self._apply_event(db, scope, ev)
                return {"id": eid, "status": "accepted"}
        self._reject(db, scope, ev, eid, why)
        return {"id": eid, "status": "rejected", "reason": why}

    def _reject(self, db, scope: Scope, ev: Any, eid: str | None, why: str) -> None:
        kind = ev.get("kind") if isinstance(ev, dict) and isinstance(ev.get("kind"), str) else None
        db.execute(
            "INSERT INTO rejections (event_id, device_id, kind, reason, at) VALUES (?, ?, ?, ?, ?)",
            (eid, scope.device_id, kind[:60] if kind else None, why[:300], now_iso()),
        )

    def _apply_event(self, db, scope: Scope, ev: dict) -> None:
        device_id = scope.device_id
        if ev["kind"] in RATING_OUTCOMES:
            db.execute(
                "INSERT INTO rating_outcomes VALUES (?, ?, ?, ?, ?)",
                (scope.window, ev["body"]["session_id"], device_id, ev["id"], ev["kind"]),
            )
        if ev["kind"] == "ticket.abandoned":
            self._void_abandoned(db, device_id, ev["body"])
        # Tickets a dispenser issued from a lease or its offline range join the
        # queue when their event arrives; online tickets are already in it.
        body = ev["body"]
        if ev["kind"] == "ticket.issued" and body.get("source") in ("lease", "offline"):
            prio = bool(body.get("priority"))
            series = "*priority" if prio else body["category"]
            day = body.get("day") if isinstance(body.get("day"), str) else ev["created_at"][:10]
            display = (
                body.get("display")
                if isinstance(body.get("display"), str)
                else f"{body['category']}{body['number']:03d}"
            )
            db.execute(
                "INSERT INTO tickets (day, series, category, number, display, priority, request_id, device_id,"
                " source, issued_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
                (
                    day,
                    series,
                    body["category"],
                    body["number"],
                    display,
                    int(prio),
                    device_id,
                    body["source"],
                    _issued_at(body, ev["created_at"]),
                ),
            )

    def _void_abandoned(self, db, device_id: str, body: dict) -> None:
        """No citizen holds the number of this request: void it so no counter calls it.

        The request is remembered, because the report may overtake the request
        itself (a slow answer): issue_ticket then refuses it instead of numbering.
        A ticket already called stays as it is: a counter has seen it."""
        rid = body["request_id"]
        reason = str(body.get("reason") or "unknown")
        db.execute(
            "INSERT OR IGNORE INTO abandoned_requests VALUES (?, ?, ?, ?)", (device_id, rid, reason[:40], now_iso())
        )
        appointments.release_abandoned(db, device_id, rid)
        db.execute(
            "UPDATE tickets SET state = 'void' WHERE device_id = ? AND request_id = ? AND state = 'waiting'",
            (device_id, rid),
        )
        day, display = body.get("day"), body.get("display")
        if isinstance(day, str) and isinstance(display, str):
            # An offline or leased ticket is known here by its day and display (it has no request_id).
            db.execute(
                "UPDATE tickets SET state = 'void' "
                "WHERE device_id = ? AND day = ? AND display = ? AND state = 'waiting'",
                (device_id, day, display),
            )

    def callable_tickets(self, day: str | None = None) -> list[str]:
        """The displays a counter would still call today, in the order call_next takes them."""
        rows = self._q(
            "SELECT display FROM tickets WHERE day = ? AND state = 'waiting' ORDER BY priority DESC, id",
            (day or self.today(),),
        )
        return [r["display"] for r in rows]

    def events(
        self, kind: str | None = None, limit: int = 100000, after: int = 0, *, latest: bool = False
    ) -> list[dict]:
        """Events in the order received (`n` increases), from after `n` = `after`; or
        with `latest`, the newest `limit` ones, newest first. Bounded either way."""
        where = "WHERE rowid > ?" + (" AND kind = ?" if kind else "")
        order = "DESC" if latest else "ASC"
        sql = f"SELECT rowid AS n, * FROM events {where} ORDER BY rowid {order} LIMIT ?"
        rows = self._r(sql, (after,) + ((kind,) if kind else ()) + (limit,))
        return [
            {
                "n": r["n"],
                "id": r["id"],
                "device_id": r["device_id"],
                "kind": r["kind"],
                "body": json.loads(r["body"]),
                "created_at": r["created_at"],
                "boot_id": r["boot_id"],
                "seq": r["seq"],
                "received_at": r["received_at"],
            }
            for r in rows
        ]

    def latest_ratings(self, limit: int = 100) -> list[dict]:
        rows = self._r(
            "SELECT rowid AS n, * FROM events WHERE kind LIKE 'rating.%' ORDER BY rowid DESC LIMIT ?", (limit,)
        )
        return [dict(r, body=json.loads(r["body"])) for r in rows]

    def event_count(self) -> int:
        return self._r("SELECT COUNT(*) FROM events")[0][0]

    def rejections(self, limit: int = 100) -> list[dict]:
        return [dict(r) for r in self._r("SELECT * FROM rejections ORDER BY n DESC LIMIT ?", (limit,))]

    # -- heartbeats -------------------------------------------------------
    def heartbeat(self, device_id: str, health: dict) -> dict:
        with self._tx() as db:
            db.execute(
                "INSERT INTO heartbeats (device_id, health, received_at) VALUES (?, ?, ?)",
                (device_id, canonical(health), now_iso()),
            )
        return {"received_at": now_iso(), "server_time": now_iso()}

    def latest_heartbeats(self) -> list[dict]:
        rows = self._r(
            "SELECT h.* FROM heartbeats h JOIN (SELECT device_id, MAX(n) AS n FROM heartbeats "
            "GROUP BY device_id) m ON h.n = m.n ORDER BY h.device_id"
        )
        return [
            {"device_id": r["device_id"], "received_at": r["received_at"], "health": json.loads(r["health"])}
            for r in rows
        ]

    # -- cases ------------------------------------------------------------
    def create_case(
        self,
        item_name: str,
        applicant_name: str,
        *,
        status: str = "accepted",
        item_code: str = "330100-ZH-001",
        item_version: str = "1",
        time_limit_days: int = 5,
        collection: str = "window",
        window: str = "08",
        handler: str = "郑伟",
        receipt_no: str | None = None,
        query_code: str | None = None,
        missing_materials: list[str] | None = None,
        refusal_reason: str | None = None,
        remedy: str | None = None,
    ) -> dict:
        if status not in CASE_STATUSES:
            raise ValueError(f"status {status!r}: use one of {', '.join(CASE_STATUSES)}")
        if collection not in COLLECTION_METHODS:
            raise ValueError(f"collection {collection!r}: use one of {', '.join(COLLECTION_METHODS)}")
        receipt_no = receipt_no or f"ZW{hall_now(HALL_ZONE):%Y}{secrets.randbelow(10**6):06d}"
        if not RECEIPT_RX.fullmatch(receipt_no):
            raise ValueError("receipt_no: 4..40 letters, digits or '-'")
        query_code = query_code or f"{secrets.randbelow(10**6):06d}"
        accepted = hall_now(HALL_ZONE)
        steps = [
            {
                "code": "accepted",
                "name_zh": "受理",
                "name_en": "Accepted",
                "at": accepted.isoformat(timespec="seconds"),
                "done": True,
            }
        ]
        order = ["accepted", "reviewing", "deciding", "completed", "ready_for_pickup", "delivered"]
        if status in order:
            for i, code in enumerate(order[1 : order.index(status) + 1], start=1):
                zh, en = CASE_STATUSES[code]
                steps.append(
                    {
                        "code": code,
                        "name_zh": zh,
                        "name_en": en,
                        "at": (accepted + timedelta(hours=4 * i)).isoformat(timespec="seconds"),
                        "done": True,
                    }
                )
        else:
            zh, en = CASE_STATUSES[status]
            steps.append(
                {
                    "code": status,
                    "name_zh": zh,
                    "name_en": en,
                    "at": (accepted + timedelta(hours=2)).isoformat(timespec="seconds"),
                    "done": True,
                }
            )
        data = {
            "item_name": item_name,
            "item_code": item_code,
            "item_version": item_version,
            "applicant_name": applicant_name,
            "status": status,
            "steps": steps,
            "time_limit_days": time_limit_days,
            "due_date": add_working_days(accepted.date(), time_limit_days).isoformat(),
            "accepted_at": accepted.isoformat(timespec="seconds"),
            "collection": collection,
            "window": window,
            "handler": handler,
            "missing_materials": missing_materials or [],
            "refusal_reason": refusal_reason,
            "remedy": remedy,
        }
        with self._tx() as db:
            db.execute(
                "INSERT INTO cases VALUES (?, ?, ?, ?) ON CONFLICT(receipt_no) DO UPDATE SET "
                "query_code = excluded.query_code, data = excluded.data",
                (receipt_no, query_code, canonical(data), now_iso()),
            )
        return {
            "receipt_no": receipt_no,
            "query_code": query_code,
            "qr_payload": self.qr_payload(receipt_no, query_code),
        }

    def qr_payload(self, receipt_no: str, query_code: str) -> str:
        return self.receipt_url.format(receipt_no=receipt_no, query_code=query_code)

    def set_case_status(self, receipt_no: str, status: str) -> None:
        if status not in CASE_STATUSES:
            raise ValueError(f"status {status!r}: use one of {', '.join(CASE_STATUSES)}")
        with self._tx() as db:
            row = db.execute("SELECT data FROM cases WHERE receipt_no = ?", (receipt_no,)).fetchone()
            if row is None:
                raise KeyError(receipt_no)
            data = json.loads(row["data"])
            zh, en = CASE_STATUSES[status]
            data["status"] = status
            data["steps"].append({"code": status, "name_zh": zh, "name_en": en, "at": now_iso(), "done": True})
            db.execute("UPDATE cases SET data = ? WHERE receipt_no = ?", (canonical(data), receipt_no))

    def cases(self) -> list[dict]:
        return [
            {"receipt_no": r["receipt_no"], "query_code": r["query_code"], **json.loads(r["data"])}
            for r in self._r("SELECT * FROM cases ORDER BY created_at DESC")
        ]

    def lookup_case(self, receipt_no: str, query_code: str) -> dict:
        """The case as a lookup kiosk may show it, or StoreError 403 (wrong) / 423 (locked).

        An unknown receipt number answers like a wrong code, so the answer does not
        tell a stranger which numbers exist; both count towards the lockout.
        """
        if not RECEIPT_RX.fullmatch(receipt_no or "") or not re.fullmatch(r"[A-Za-z0-9]{4,12}", query_code or ""):
            raise StoreError(400, "invalid", "receipt_no is 4..40 letters/digits/'-', query_code 4..12 letters/digits")
        refusal: StoreError | None = None
        with self._tx() as db:
            now = time.time()
            fail = db.execute("SELECT * FROM lookup_failures WHERE receipt_no = ?", (receipt_no,)).fetchone()
            if fail and fail["locked_until"] > now:
                raise StoreError(
                    423,
                    "locked",
                    "too many wrong query codes; try again later",
                    retry_after_s=int(fail["locked_until"] - now) + 1,
                )
            failures = fail["failures"] if fail and fail["locked_until"] == 0 else 0
            row = db.execute("SELECT * FROM cases WHERE receipt_no = ?", (receipt_no,)).fetchone()
            if row is None or not hmac.compare_digest(row["query_code"].encode(), query_code.encode()):
                failures += 1
                locked_until = now + self.lockout_s if failures >= self.max_code_attempts else 0
                db.execute(
                    "INSERT INTO lookup_failures VALUES (?, ?, ?) ON CONFLICT(receipt_no) DO UPDATE SET "
                    "failures = excluded.failures, locked_until = excluded.locked_until",
                    (receipt_no, failures, locked_until),
                )
                # Raised after COMMIT: the failure must count even though the request fails.
                if locked_until:
                    refusal = StoreError(
                        423, "locked", "too many wrong query codes; try again later", retry_after_s=int(self.lockout_s)
                    )
                else:
                    refusal = StoreError(
                        403,
                        "wrong_code",
                        "receipt number or query code is wrong",
                        attempts_left=self.max_code_attempts - failures,
                    )
            else:
                db.execute("DELETE FROM lookup_failures WHERE receipt_no = ?", (receipt_no,))
                data = json.loads(row["data"])
        if refusal:
            raise refusal
        zh, en = CASE_STATUSES[data["status"]]
        return {
            "receipt_no": receipt_no,
            "item_name": data["item_name"],
            "item_code": data["item_code"],
            "item_version": data["item_version"],
            "status": data["status"],
            "status_zh": zh,
            "status_en": en,
            "steps": data["steps"],
            "time_limit_days": data["time_limit_days"],
            "due_date": data["due_date"],
            "accepted_at": data["accepted_at"],
            "handler": data["handler"],
            "window": data["window"],
            "collection": data["collection"],
            "applicant_name": mask_name(data["applicant_name"]),
            "missing_materials": data["missing_materials"],
            "refusal_reason": data["refusal_reason"],
            "remedy": data["remedy"],
        }

    # -- staff ------------------------------------------------------------
    def staff_card(self, window: str) -> tuple[dict, str]:
        rows = self._q(
            "SELECT s.*, w.window FROM windows w JOIN staff s ON s.staff_id = w.staff_id WHERE w.window = ?", (window,)
        )
        if not rows:
            raise StoreError(404, "unknown_window", f"no staff member is assigned to window {window!r}")
        r = rows[0]
        photo_etag = hashlib.sha256(r["photo"]).hexdigest()[:16]
        card = {
            "staff_id": r["staff_id"],
            "name": r["name"],
            "employee_no": r["employee_no"],
            "window": r["window"],
            "stars": r["stars"],
            "photo_url": f"/api/v1/staff/{r['staff_id']}/photo",
            "photo_etag": photo_etag,
            "updated_at": r["updated_at"],
        }
        etag = '"' + hashlib.sha256(canonical(card).encode()).hexdigest()[:20] + '"'
        return card, etag

    def staff_on_window(self, window: str | None) -> str | None:
        rows = self._q("SELECT staff_id FROM windows WHERE window = ?", (window,))
        return rows[0]["staff_id"] if rows else None

    def staff_photo(self, staff_id: str) -> tuple[bytes, str, str]:
        rows = self._q("SELECT photo, photo_type FROM staff WHERE staff_id = ?", (staff_id,))
        if not rows:
            raise StoreError(404, "unknown_staff", f"no staff member {staff_id!r}")
        photo = bytes(rows[0]["photo"])
        return photo, rows[0]["photo_type"], '"' + hashlib.sha256(photo).hexdigest()[:16] + '"'

    def set_staff(
        self, staff_id: str, *, name: str | None = None, stars: int | None = None, window: str | None = None
    ) -> None:
        with self._tx() as db:
            if name is not None:
                db.execute("UPDATE staff SET name = ?, updated_at = ? WHERE staff_id = ?", (name, now_iso(), staff_id))
            if stars is not None:
                db.execute(
                    "UPDATE staff SET stars = ?, updated_at = ? WHERE staff_id = ?", (stars, now_iso(), staff_id)
                )
            if window is not None:
                db.execute("UPDATE windows SET staff_id = ? WHERE window = ?", (staff_id, window))

    # -- windows and sessions ---------------------------------------------
    def _window_row(self, db, window: str):
        row = db.execute("SELECT * FROM windows WHERE window = ?", (window,)).fetchone()
        if row is None:
            raise StoreError(404, "unknown_window", f"no window {window!r} in this hall")
        return row

    @staticmethod
    def _session_json(r) -> dict:
        return {
            "window": r["window"],
            "state": r["state"],
            "rev": r["rev"],
            "session_id": r["session_id"],
            "ticket": r["ticket"],
            "case_no": r["case_no"],
            "item_code": r["item_code"],
            "item_version": r["item_version"],
            "item_name": r["item_name"],
            "staff_id": r["staff_id"],
            "started_at": r["started_at"],
            "ended_at": r["ended_at"],
            "changed_at": r["changed_at"],
        }

    def window_session(self, window: str) -> dict:
        with self._lock:
            return self._session_json(self._window_row(self._db, window))

    def wait_window(self, window: str, since: int | None, wait: float, stopping: Callable[[], bool]) -> dict:
        """Long-poll: answer as soon as the window's rev passes `since`, or after `wait` seconds."""
        deadline = time.monotonic() + wait
        with self.window_changed:
            while True:
                s = self.window_session(window)
                left = deadline - time.monotonic()
                if since is None or s["rev"] != since or left <= 0 or stopping():
                    return s
                self.window_changed.wait(min(left, 1.0))

    def _change_window(self, window: str, **fields) -> dict:
        with self._tx() as db:
            self._window_row(db, window)
            fields["changed_at"] = now_iso()
            sets = ", ".join(f"{k} = ?" for k in fields)
            db.execute(f"UPDATE windows SET {sets}, rev = rev + 1 WHERE window = ?", (*fields.values(), window))
            row = self._window_row(db, window)
        with self.window_changed:
            self.window_changed.notify_all()
        return self._session_json(row)

    def call_next(
        self,
        window: str,
        *,
        case_no: str | None = None,
        item_code: str | None = None,
        item_version: str | None = None,
        item_name: str | None = None,
        case_type: str | None = None,
        auto_case: bool = False,
    ) -> dict:
        """Start serving the next waiting ticket (priority first); ends a session still open.

        The session carries the case the counter works on (办件编号, 事项编码 and
        version), so the rating for it does too. Given a `case_no` of a case the
        bench central holds, the rest comes from that case; with `auto_case`
        (the bench page, the demo) the newest case assigned to this window is taken."""
        with self._lock:
            case = self._case_for_session(window, case_no, auto_case)
            if case is not None:
                case_no = case_no or case["receipt_no"]
                item_code = item_code or case["item_code"]
                item_version = item_version or case["item_version"]
                item_name = item_name or case["item_name"]
                case_type = case_type or ("immediate" if case["time_limit_days"] == 0 else "promised")
            if case_type not in (None, "immediate", "promised"):
                raise ValueError(f"case_type {case_type!r}: use immediate (即办件) or promised (承诺件)")
            cur = self.window_session(window)
            if cur["state"] == "serving":
                self.end_service(window)
            day = self.today()
            with self._tx() as db:
                cats = json.loads(self._window_row(db, window)["categories"])
                marks = ",".join("?" * len(cats))
                t = db.execute(
                    f"SELECT * FROM tickets WHERE day = ? AND state = 'waiting' AND "
                    f"(series = '*priority' OR series IN ({marks})) ORDER BY priority DESC, id LIMIT 1",
                    (day, *cats),
                ).fetchone()
                if t is not None:
                    db.execute(
                        "UPDATE tickets SET state = 'called', called_at = ?, window = ? WHERE id = ?",
                        (now_iso(), window, t["id"]),
                    )
            sid = uuidlib.uuid4().hex
            s = self._change_window(
                window,
                state="serving",
                session_id=sid,
                ticket=t["display"] if t else None,
                case_no=case_no,
                item_code=item_code,
                item_version=item_version,
                item_name=item_name,
                started_at=now_iso(),
                ended_at=None,
            )
            with self._tx() as db:
                db.execute(
                    "INSERT INTO sessions (session_id, window, staff_id, ticket, case_no, started_at, item_code,"
                    " item_version, item_name, case_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        sid,
                        window,
                        s["staff_id"],
                        s["ticket"],
                        case_no,
                        s["started_at"],
                        item_code,
                        item_version,
                        item_name,
                        case_type,
                    ),
                )
            return s

    def _case_for_session(self, window: str, case_no: str | None, auto_case: bool) -> dict | None:
        if case_no is not None:
            rows = self._q("SELECT * FROM cases WHERE receipt_no = ?", (case_no,))
        elif auto_case:
            rows = [
                r
                for r in self._q("SELECT * FROM cases ORDER BY created_at DESC, rowid DESC")
                if json.loads(r["data"]).get("window") == window
            ][:1]
        else:
            return None
        return {"receipt_no": rows[0]["receipt_no"], **json.loads(rows[0]["data"])} if rows else None

    def session(self, session_id: str) -> dict | None:
        rows = self._q("SELECT * FROM sessions WHERE session_id = ?", (session_id,))
        return dict(rows[0]) if rows else None

    def staff_name(self, staff_id: str | None) -> str | None:
        rows = self._q("SELECT name FROM staff WHERE staff_id = ?", (staff_id,))
        return rows[0]["name"] if rows else None

    def end_service(self, window: str) -> dict:
        with self._lock:
            cur = self.window_session(window)
            if cur["state"] != "serving":
                raise StoreError(409, "not_serving", f"window {window} is {cur['state']}, not serving")
            ended = now_iso()
            with self._tx() as db:
                db.execute("UPDATE sessions SET ended_at = ? WHERE session_id = ?", (ended, cur["session_id"]))
            return self._change_window(window, state="ended", ended_at=ended)

    def pause(self, window: str) -> dict:
        with self._lock:
            if self.window_session(window)["state"] == "serving":
                self.end_service(window)
            return self._change_window(window, state="paused")

    def resume(self, window: str) -> dict:
        return self._change_window(
            window,
            state="idle",
            session_id=None,
            ticket=None,
            case_no=None,
            item_code=None,
            item_version=None,
            item_name=None,
            started_at=None,
            ended_at=None,
        )

    def windows(self) -> list[dict]:
        return [
            self._session_json(r) | {"categories": json.loads(r["categories"])}
            for r in self._r("SELECT * FROM windows ORDER BY window")
        ]

    def tickets(self, day: str | None = None) -> list[dict]:
        rows = self._r("SELECT * FROM tickets WHERE day = ? ORDER BY id", (day or self.today(),))
        return [dict(r) for r in rows]

    # -- bookings (预约) -------------------------------------------------------
    def create_booking(self, category: str, slot_start: str, slot_end: str | None = None, **kw) -> dict:
        return appointments.create_booking(self, category, slot_start, slot_end, **kw)

    def bookings(self, day: str | None = None) -> list[dict]:
        return appointments.bookings(self, day)

    def check_in(self, device_id: str, request_id: str, **kw) -> tuple[dict, bool]:
        return appointments.check_in(self, device_id, request_id, **kw)

    def leases(self) -> list[dict]:
        return [dict(r) for r in self._r("SELECT * FROM leases ORDER BY issued_at")]

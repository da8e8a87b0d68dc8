"""Queue tickets: choose a service, get a number, print it.

Rules this module keeps (see docs/configuration.md, [dispenser]):

* Paper first. The printer's paper sensor is asked (through the printer
  worker thread) before a number is taken: paper out or a printer that
  says it is offline refuses the ticket and consumes nothing; paper near
  its end issues and warns technicians; a printer that does not answer
  issues and says "unknown" - no answer is not "no paper".
* Numbers. Online, the central system gives the hall-wide number, asked
  with a request id written to the ledger BEFORE the call, so a resend is
  idempotent and a crash in between is found at the next start. Offline,
  the device takes numbers from blocks it leased from the central system
  while online, then from its own configured offline range; such tickets
  are marked offline.
* One number once per day. The service day is the local date, but it
  only moves forward: if the wall clock jumps back (to earlier today or to
  yesterday) the device keeps numbering in the latest day it has used, so
  a number it already printed cannot come round again. Counters live in
  the ledger, never in memory, and (day, display) is unique in the ledger.
  A clock set wrongly into the future therefore holds numbering in that
  future day until the real date catches up; the device reports
  ``clock_behind`` to technicians in that case (see status()).
* Ledger before paper. Ticket + outbox event ``ticket.issued`` commit in
  one transaction, then the ticket is printed. A failed print keeps the
  ticket (print_state 'failed'); a reprint says REPRINT / 补打.

Nothing here imports Kivy; the screen calls issue() from a background thread.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias
from zoneinfo import ZoneInfo

from kiosk.core import keys
from kiosk.core.cache import Cache
from kiosk.core.config import Config
from kiosk.core.ledger import Ledger
from kiosk.core.ports.document import Document
from kiosk.core.time import MIN_REAL_YEAR, clock_synced, hall_now, in_hall, wall_now, zone_problem
from kiosk.roles.dispenser.layout import ticket_for
from kiosk.roles.dispenser.persons import Citizen, Holding, Standing, holding_from_central, merge
from kiosk.sync.errors import CentralRejected
from kiosk.sync.validate import check_lease, check_queue_status, check_ticket

if TYPE_CHECKING:
    from kiosk.sync.client import CentralClient

log = logging.getLogger("kiosk.dispenser")

PRIORITY_SERIES = "*priority"  # local key for the hall-wide priority series (as the central calls it)
PAPER_STATES = ("ok", "near_end", "out", "unknown")


# ---- errors a citizen is told about --------------------------------------


class TicketRefused(Exception):
    """No ticket was issued and no number consumed; `reason` picks the message on screen."""

    reason = "refused"


class DispenserClosed(TicketRefused):
    reason = "closed"


class PaperOut(TicketRefused):
    reason = "paper_out"


class PrinterUnavailable(TicketRefused):
    reason = "printer_unavailable"


class NumbersExhausted(TicketRefused):
    reason = "numbers_exhausted"


class StorageFull(TicketRefused):
    """The storage folder is below storage.min_free_mb: a number shown must be committed first."""

    reason = "storage_full"


class UnknownCategory(TicketRefused, ValueError):
    reason = "unknown_category"


class PersonHasTicket(TicketRefused):
    """The citizen already holds an open ticket for this service: shown it, offered a reprint."""

    reason = "person_has_ticket"

    def __init__(self, message: str, holding: Holding | None, standing: Standing | None = None):
        super().__init__(message)
        self.holding = holding
        self.standing = standing


class PersonDailyLimit(TicketRefused):
    reason = "person_daily_limit"

    def __init__(self, message: str, standing: Standing | None = None):
        super().__init__(message)
        self.standing = standing


class QuotaFull(TicketRefused):
    """The service's numbers for this time window are taken (docs/configuration.md, [[dispenser.quotas]])."""

    reason = "quota_full"


class CheckInOffline(TicketRefused):
    """Check-in needs the central (only it knows whether the booking was used): none was reached."""

    reason = "checkin_offline"


# The central's refusal codes -> the reason the screen explains (disp.refused.<reason>).
BOOKING_REASONS = {
    "unknown_booking": "booking_unknown",
    "already_used": "booking_used",
    "expired": "booking_expired",
    "too_early": "booking_early",
}


class BookingRefused(TicketRefused):
    """The booking cannot be checked in: unknown, used, expired, too early, or a code that is not one."""

    def __init__(self, reason: str, detail: str = "", opens_at: str | None = None):
        super().__init__(detail or reason)
        self.reason = reason
        self.opens_at = opens_at


# ---- what a ticket is -----------------------------------------------------


@dataclass(frozen=True)
class Ticket:
    id: int
    uuid: str
    request_id: str
    day: str
    category: str
    number: int
    display: str
    priority: bool
    source: str  # online | lease | offline
    people_ahead: int | None
    est_wait_s: int | None
    issued_at: str
    print_state: str  # pending | printed | failed
    print_count: int
    service_zh: str
    service_en: str
    appointment: str | None = None  # the central's booking id of a check-in's ticket
    person: str | None = field(default=None, repr=False)  # the HMAC of an ID number, when taken by card

    @property
    def offline(self) -> bool:
        return self.source != "online"

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> Ticket:
        return cls(
            r["id"],
            r["uuid"],
            r["request_id"],
            r["day"],
            r["category"],
            r["number"],
            r["display"],
            bool(r["priority"]),
            r["source"],
            r["people_ahead"],
            r["est_wait_s"],
            r["issued_at"],
            r["print_state"],
            r["print_count"],
            r["service_zh"],
            r["service_en"],
            r["appointment"],
            r["person"],
        )


@dataclass
class IssueResult:
    ticket: Ticket
    printed: bool
    paper: str  # the paper state seen before issuing
    print_error: str | None = None


@dataclass
class Category:
    code: str
    prefix: str
    name_zh: str
    name_en: str
    waiting: int | None = None
    est_wait_s: int | None = None
    used_up: bool = False  # its quota for this time window is taken: the button takes no number

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh


@dataclass(frozen=True)
class DispenserView:
    """What the choose and closed states show, read together off the UI thread."""

    open: bool
    categories: list[Category]
    days: list[int]
    spans: list[str]
    entries: tuple[str, ...] = ("service",)  # [dispenser] entries: what the first screen offers


@dataclass
class PaperReport:
    state: str = "unknown"
    detail: str = ""
    checked_at: float = 0.0


# ---- opening hours ----------------------------------------------------------


def parse_spans(spans: list[str]) -> list[tuple[str, str]]:
    out = []
    for s in spans:
        m = re.fullmatch(r"(\d\d:\d\d)-(\d\d:\d\d)", s.strip())
        if m:
            out.append((m.group(1), m.group(2)))
    return out


def is_open(now: datetime, days: list[int], spans: list[str]) -> bool:
    if now.isoweekday() not in days:
        return False
    hm = now.strftime("%H:%M")
    return any(a <= hm < b for a, b in parse_spans(spans))


# ---- the service --------------------------------------------------------------


class PrinterStatusLike(Protocol):
    """What a status query answers (devices' PrinterStatus)."""

    @property
    def online(self) -> bool | None: ...  # None: the printer did not answer

    @property
    def paper(self) -> str: ...

    @property
    def detail(self) -> str: ...


class PrinterPort(Protocol):
    """The dispenser's printer: the printer worker, which does both on its own thread."""

    def submit(self, data: Document) -> Future[Any]: ...

    def check_status(self, timeout: float) -> Future[PrinterStatusLike]: ...


# The client itself, or a function asked each time (the runtime may connect
# the client after the role was attached); None: offline.
ClientSource: TypeAlias = "CentralClient | Callable[[], CentralClient | None] | None"


class TicketService:
    """One per dispenser. issue() is thread-safe; no lock is held while the central is asked."""

    def __init__(
        self,
        cfg: Config,
        ledger: Ledger,
        *,
        cache: Cache | None = None,
        client: ClientSource = None,
        printer: PrinterPort | None = None,
        now: Callable[[], datetime] = hall_now,
        mono: Callable[[], float] = time.monotonic,
        synced: Callable[[], bool | None] = clock_synced,
        wake_sync: Callable[[], None] | None = None,
    ):
        self.cfg = cfg
        self.ledger = ledger
        self.cache = cache
        # CentralClient or None (offline); a callable is asked each time, because
        # the runtime may connect the client after the role was attached.
        self._client = client
        self.printer = printer  # the printer port (submit / check_status), or None: refuse
        self.now = now  # wall time; aware (any zone) or naive (read as the hall's)
        self.mono = mono  # confirms a wall-clock day change (see _service_day)
        self.synced = synced  # whether the wall clock is synchronised (NTP): see _confirmed_wall_date
        self.wake_sync = wake_sync
        # kiosk.core.storage.DiskGuard (or anything with low()); None: not watched.
        self.disk: Any = None
        self.paper = PaperReport()
        self.clock_behind: str | None = None  # the service day, when the wall clock is behind it
        self.clock_ahead: str | None = None  # the wall date, when the monotonic clock denies it
        self.last_central_error: str | None = None
        # Hardware buttons (gpiozero thread) call press(name); the screen listens.
        self.button_listeners: list[Callable[[str], None]] = []
        # service code -> (day, span) the central said was full (its count covers every dispenser)
        self._quota_full: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._thread: threading.Thread | None = None
        self._abandon_leftover_requests()
        self._anchor_day()

    def _anchor_day(self) -> None:
        """Anchor the wall date to the monotonic clock at start, not at the first
        ticket: a wall clock that jumps a day ahead after a reboot and before any
        citizen came would otherwise be trusted and print A900 twice in one day.
        Only a synchronised clock is anchored at start: a Pi boots on yesterday's
        saved time and NTP corrects it minutes later (see _confirmed_wall_date)."""
        if self.synced() is False:
            return
        try:
            with self.ledger.transaction() as tx:
                self._confirmed_wall_date(tx, None)
        except sqlite3.Error as e:  # anchored at the first ticket instead
            log.warning("cannot anchor the service day at start: %s", type(e).__name__)

    @property
    def client(self) -> CentralClient | None:
        c = self._client
        # A client is not callable; a getter is.
        got: CentralClient | None = c() if callable(c) else c
        return got

    # -- configuration as it stands now ------------------------------------
    def _central_config(self) -> dict[str, Any]:
        if self.cache is None:
            return {}
        data = self.cache.get(keys.CENTRAL_CONFIG)
        return data if isinstance(data, dict) else {}

    def categories(self) -> list[Category]:
        """From the central config when it was fetched, else the config file; with queue figures when known."""
        central = self._central_config().get("categories")
        source = central if isinstance(central, list) and central else self.cfg.dispenser.categories
        cats = []
        for c in source:
            try:
                code = str(c["code"])
                cats.append(Category(code, str(c.get("prefix") or code), str(c["name_zh"]), str(c["name_en"])))
            except (KeyError, TypeError):
                log.warning("skipping a malformed category in the %s config", "central" if central else "file")
        queue = self.cache.get(keys.QUEUE_STATUS) if self.cache is not None else None
        if isinstance(queue, dict) and queue.get("day") in (None, self.today()):
            figures = {q.get("category"): q for q in queue.get("categories") or [] if isinstance(q, dict)}
            for cat in cats:
                q = figures.get(cat.code)
                if q:
                    cat.waiting = q.get("waiting") if isinstance(q.get("waiting"), int) else None
                    cat.est_wait_s = q.get("est_wait_s") if isinstance(q.get("est_wait_s"), int) else None
        return cats

    def category(self, code: str) -> Category:
        for c in self.categories():
            if c.code == code:
                return c
        raise UnknownCategory(f"no service category {code!r}")

    def opening(self) -> tuple[list[int], list[str]]:
        oh = self._central_config().get("opening_hours")
        if isinstance(oh, dict) and isinstance(oh.get("days"), list) and isinstance(oh.get("hours"), list):
            return [int(d) for d in oh["days"]], [str(h) for h in oh["hours"]]
        return list(self.cfg.dispenser.open_days), list(self.cfg.dispenser.open_hours)

    def zone(self) -> tzinfo:
        """The hall's zone: the central's opening_hours.timezone, else device.timezone."""
        oh = self._central_config().get("opening_hours")
        name = oh.get("timezone") if isinstance(oh, dict) else None
        if isinstance(name, str) and zone_problem(name) is None:
            return ZoneInfo(name)
        return ZoneInfo(self.cfg.device.timezone)

    def hall_time(self) -> datetime:
        return in_hall(self.now(), self.zone())

    def is_open(self) -> bool:
        days, spans = self.opening()
        return is_open(self.hall_time(), days, spans)

    def view(self) -> DispenserView:
        """The screen's snapshot: cache and ledger reads, so never called on the UI thread."""
        days, spans = self.opening()
        cats = self.categories()
        queue = self.cache.get(keys.QUEUE_STATUS) if self.cache is not None else None
        central_full = set()
        if isinstance(queue, dict) and queue.get("day") == self.today():
            for q in queue.get("categories") or []:
                quota = q.get("quota") if isinstance(q, dict) else None
                # The central's own quota (its queue shows it) in the span that holds now.
                if isinstance(quota, dict) and quota.get("full") is True and self._in_span(quota.get("hours")):
                    central_full.add(q.get("category"))
        for cat in cats:
            quota = self.quota_now(cat.code)
            cat.used_up = cat.code in central_full or (quota is not None and self.quota_used_up(cat.code, quota))
        return DispenserView(self.is_open(), cats, days, spans, tuple(self.cfg.dispenser.entries))

    # -- quotas per time window -------------------------------------------------
    def quotas(self) -> list[dict[str, Any]]:
        """The central's quotas when its config has them (they replace the file's), else [[dispenser.quotas]]."""
        central = self._central_config().get("quotas")
        source = central if isinstance(central, list) else self.cfg.dispenser.quotas
        return [dict(q) for q in source if isinstance(q, dict)]

    def quota_now(self, code: str) -> dict[str, Any] | None:
        """{"hours", "limit"} of the service's quota whose span holds the hall's time now, or None."""
        hm = self.hall_time().strftime("%H:%M")
        for q in self.quotas():
            hours = q.get("hours")
            spans = parse_spans([hours]) if isinstance(hours, str) else []
            limit = q.get("limit")
            if q.get("category") == code and spans and isinstance(limit, int) and spans[0][0] <= hm < spans[0][1]:
                return {"hours": q["hours"], "limit": limit}
        return None

    def _in_span(self, hours: object) -> bool:
        spans = parse_spans([hours]) if isinstance(hours, str) else []
        return bool(spans) and spans[0][0] <= self.hall_time().strftime("%H:%M") < spans[0][1]

    def local_issued(self, code: str, hours: str) -> int:
        """Walk-in tickets of the service this device issued today in the span (check-ins do not count)."""
        spans = parse_spans([hours])
        if not spans:
            return 0
        a, b = spans[0]
        n = 0
        for r in self.ledger.query(
            "SELECT issued_at FROM tickets WHERE day = ? AND category = ? AND appointment IS NULL",
            (self.today(), code),
        ):
            try:
                hm = in_hall(datetime.fromisoformat(r["issued_at"]), self.zone()).strftime("%H:%M")
            except ValueError:
                continue
            if a <= hm < b:
                n += 1
        return n

    def quota_used_up(self, code: str, quota: dict[str, Any]) -> bool:
        """Full by what the central said in this span, or by this device's own tickets (a lower bound
        of the hall's count, so sound online too, and the rule itself offline)."""
        if self._quota_full.get(code) == (self.today(), quota["hours"]):
            return True
        return self.local_issued(code, quota["hours"]) >= int(quota["limit"])

    def _note_quota(self, code: str, answer: object) -> None:
        if isinstance(answer, dict) and isinstance(answer.get("hours"), str):
            issued, limit = answer.get("issued"), answer.get("limit")
            if isinstance(issued, int) and isinstance(limit, int) and issued >= limit:
                self._quota_full[code] = (self.today(), answer["hours"])

    def priority_prefix(self) -> str:
        return self.cfg.dispenser.priority_prefix

    def _series_limits(self, code: str, priority: bool) -> tuple[str, int, int]:
        """(prefix, number_min, number_max) of a series as the central numbers it, for checking its answers."""
        central = self._central_config()
        doc = central.get("priority") if priority else None
        if not priority:
            for c in central.get("categories") or []:
                if isinstance(c, dict) and c.get("code") == code:
                    doc = c
        if isinstance(doc, dict):
            lo, hi = doc.get("number_min"), doc.get("number_max")
            if isinstance(lo, int) and isinstance(hi, int) and isinstance(doc.get("prefix"), str):
                return doc["prefix"], lo, hi
        if priority:
            return self.priority_prefix(), 0, 99999
        prefix = next((c.prefix for c in self.categories() if c.code == code), code)
        return prefix, 0, 99999

    # -- the service day ---------------------------------------------------
    def today(self) -> str:
        """The current service day (read only; see _service_day for the rule)."""
        wall = self._confirmed_wall_date(None, None)
        stored = self.ledger.get_meta(keys.DISPENSER_SERVICE_DAY)
        if stored and self._far_ahead(stored, wall):
            return wall  # what _service_day moves to at the next ticket
        return max(wall, stored) if stored else wall

    # A service day further ahead of the clock than this was set by a clock that was
    # wrong at some start (a Pi has no RTC: 2099 from a bad NTP answer or a typo in
    # `date -s`). Kept, it would freeze numbering in that day for years: no midnight
    # reset, and the offline range used up for good after a few hundred tickets.
    MAX_DAYS_AHEAD = 1

    def _far_ahead(self, stored: str, base: str) -> bool:
        from datetime import date

        try:
            if date.fromisoformat(base).year < MIN_REAL_YEAR:
                return False  # the clock is the wrong one (not set yet): the service day stays
            return (date.fromisoformat(stored) - date.fromisoformat(base)).days > self.MAX_DAYS_AHEAD
        except ValueError:
            return True  # not a date at all (written by an older firmware from a junk answer)

    def _service_day(self, tx: sqlite3.Connection, hint: str | None = None) -> str:
        """max(wall date, latest day used, the central's day): the day only moves forward.

        The wall date moves the day forward only when the monotonic clock agrees:
        a wall clock that jumps a day ahead and back again would otherwise start
        the new day's numbers (A900 …) and print them twice on one real day. The
        anchor is the wall time at a monotonic instant of this boot; the date of
        anchor + elapsed monotonic time is the real date as far as the device can
        tell. A central's day (an online ticket, a lease) still moves it."""
        wall = self._confirmed_wall_date(tx, hint)
        row = tx.execute("SELECT value FROM meta WHERE key = ?", (keys.DISPENSER_SERVICE_DAY,)).fetchone()
        stored = row[0] if row else ""
        base = max(wall, hint or "")
        if stored and self._far_ahead(stored, base):
            # Back to the clock's day; the offline counters carry on from where the
            # far day left them, so no number printed today is printed twice.
            log.error(
                "service day %s is far ahead of the clock's %s (a clock set wrong at some start): numbering returns "
                "to %s and carries on after the numbers used",
                stored[:10],
                base,
                base,
            )
            tx.execute(
                "INSERT INTO day_counters (day, category, next_number) "
                "SELECT ?, category, next_number FROM day_counters WHERE day = ? AND true "
                "ON CONFLICT(day, category) DO UPDATE SET next_number = MAX(next_number, excluded.next_number)",
                (base, stored),
            )
            stored = ""
        day = max(wall, stored, hint or "")
        if day != stored:
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (keys.DISPENSER_SERVICE_DAY, day),
            )
        if wall < day:
            if self.clock_behind != day:
                log.warning("wall clock date %s is behind the service day %s: numbering stays in %s", wall, day, day)
            self.clock_behind = day
        else:
            self.clock_behind = None
        return day

    DAY_JUMP_TOLERANCE = 600.0  # s: NTP steps and small corrections are not a jump

    def _confirmed_wall_date(self, tx: sqlite3.Connection | None, hint: str | None) -> str:
        """The wall date, unless the monotonic clock denies it. tx None: read only (today())."""
        import json

        def meta(key: str) -> str | None:
            if tx is None:
                return self.ledger.get_meta(key)
            r = tx.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return str(r[0]) if r else None

        now = self.hall_time()
        wall = now.date().isoformat()
        mono = self.mono()
        raw = meta(keys.DISPENSER_DAY_ANCHOR)
        try:
            anchor = json.loads(raw) if raw else None
            if not isinstance(anchor, dict) or anchor.get("boot") != self.ledger.boot_id:
                anchor = None
            elif mono < float(anchor["mono"]):
                anchor = None  # another monotonic clock (a test's, a new process without boot id)
        except (ValueError, KeyError, TypeError):
            anchor = None
        synced = self.synced()
        if anchor is not None and anchor.get("synced") is False and synced:
            # Anchored on a clock nobody had set yet (a Pi's saved boot time); it is
            # synchronised now: its step forward is the correction, not a jump.
            anchor = None
        if anchor is not None:
            est = float(anchor["wall"]) + (mono - float(anchor["mono"]))
            est_date = in_hall(datetime.fromtimestamp(est, UTC), self.zone()).date().isoformat()
            if wall > est_date and now.timestamp() - est > self.DAY_JUMP_TOLERANCE and wall != hint:
                if tx is not None and self.clock_ahead != wall:
                    log.warning("wall clock jumped ahead to %s; the monotonic clock says %s: day kept", wall, est_date)
                self.clock_ahead = wall
                return est_date
        if tx is None:
            return wall
        self.clock_ahead = None
        stored = meta(keys.DISPENSER_SERVICE_DAY)
        behind = stored is not None and wall < stored
        if (anchor is None and not behind) or (hint is not None and hint == wall):
            # Anchor on a wall clock we trust: the first of this boot, or one the central's day confirms.
            # Never on a clock behind the service day: the real next day would then look like a jump.
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (
                    keys.DISPENSER_DAY_ANCHOR,
                    json.dumps(
                        {
                            "boot": self.ledger.boot_id,
                            "wall": now.timestamp(),
                            "mono": mono,
                            "synced": synced is not False,
                        }
                    ),
                ),
            )
        return wall

    # -- the printer --------------------------------------------------------
    def check_paper(self) -> PaperReport:
        """Ask the printer (on its own thread) and record changes for technicians."""
        timeout = self.cfg.printer.status_timeout
        online: bool | None
        if self.printer is None:
            state, detail, online = "unknown", "no printer configured", False
        else:
            try:
                st = self.printer.check_status(timeout).result(timeout=timeout * 2 + 10)
                state, detail, online = st.paper, st.detail, st.online
            except Exception as e:  # a worker that is gone: treat as not there
                state, detail, online = "unknown", f"printer worker failed: {type(e).__name__}", False
        if state not in PAPER_STATES:
            state = "unknown"
        if online is False and state != "out":
            state = "offline"
        self._note_paper(state, detail)
        return self.paper

    def _note_paper(self, state: str, detail: str) -> None:
        previous = self.paper.state if self.paper.checked_at else None
        self.paper = PaperReport(state, detail, time.monotonic())
        if state != previous:
            if state in ("near_end", "out", "offline"):
                log.warning("printer paper state %s (%s)", state, detail)
            with self.ledger.transaction() as tx:
                self.ledger.add_event(
                    tx,
                    "printer.paper_state",
                    {"state": state, "previous": previous, "detail": detail[:200], "device_id": self.cfg.device.id},
                )
            self._wake()

    def _print(self, data: Document) -> str | None:
        """Print through the worker; None when done, else the error for technicians."""
        if self.printer is None:
            return "no printer configured"
        try:
            self.printer.submit(data).result(timeout=120)
            return None
        except Exception as e:
            return str(e) or type(e).__name__

    # -- issuing --------------------------------------------------------------
    def issue(self, category: str, priority: bool = False, person: str | None = None) -> IssueResult:
        """person: the HMAC of the citizen's ID number (persons.py), for the per-person rules."""
        # No lock across this: the central call can take up to online_timeout, and a
        # second citizen (a button, another screen) must not wait behind it. Numbers
        # are taken in one ledger transaction each (BEGIN IMMEDIATE serialises them)
        # and the printer worker prints jobs one at a time, in order.
        if not self.is_open():
            raise DispenserClosed("the hall is closed now")
        cat = self.category(category)
        if self.disk is not None and self.disk.low():
            # Refused before a number is taken: SQLite failing the commit after the
            # number was leased would lose it (see kiosk/core/storage.py).
            raise StorageFull(f"storage below {self.cfg.storage.min_free_mb} MB free")
        quota = self.quota_now(cat.code)
        if quota is not None and self.quota_used_up(cat.code, quota):
            raise QuotaFull(f"the {quota['limit']} numbers of {cat.code} for {quota['hours']} are taken")
        paper = self._paper_for_issue()
        if person is not None:
            self._check_person(person, cat.code)
        ticket = self._take_number(cat, priority, quota, person)
        self._wake()
        error = self._print(ticket_for(ticket, self.cfg, reprint=False))
        ticket = self._set_printed(ticket, error)
        return IssueResult(ticket, error is None, paper.state, error)

    def _paper_for_issue(self) -> PaperReport:
        """The paper check before a number is taken; raises when none may be."""
        paper = self.check_paper()
        if paper.state == "out":
            raise PaperOut(paper.detail or "paper out")
        if paper.state == "offline":
            raise PrinterUnavailable(paper.detail or "printer not available")
        if paper.state == "unknown" and self.cfg.printer.on_unknown_status == "refuse":
            # The hall chose: a ticket that may not print is worse than none (printer.on_unknown_status).
            raise PrinterUnavailable(paper.detail or "printer status unknown")
        return paper

    # -- appointments (预约签到) --------------------------------------------------
    def check_in(self, code: str | None = None, person: str | None = None) -> IssueResult:
        """The ticket of a booking, by its code (keypad, QR) or the person key (ID card).

        Needs the central (CheckInOffline otherwise). The request is written down
        before the call; an answer that never arrives is reported ticket.abandoned,
        so the central voids its ticket and frees the booking for the next try."""
        from kiosk.roles.dispenser import booking
        from kiosk.sync.errors import CentralAuthError

        if code is not None:
            norm = booking.normal_code(code)
            if norm is None:
                raise BookingRefused("booking_bad_code", "not a booking code")
            code = norm
        elif person is None or not booking.PERSON_RX.fullmatch(person):
            raise BookingRefused("booking_unknown", "no person key")
        if not self.is_open():
            raise DispenserClosed("the hall is closed now")
        client = self.client
        if client is None:
            raise CheckInOffline("no central configured or connected")
        paper = self._paper_for_issue()
        request_id = uuidlib.uuid4().hex
        with self.ledger.transaction() as tx:
            tx.execute(
                "INSERT INTO ticket_requests (request_id, category, priority, created_at, boot_id) "
                "VALUES (?, ?, 0, ?, ?)",
                (request_id, "*appointment", wall_now(), self.ledger.boot_id),
            )
        timeout = self.cfg.dispenser.checkin_timeout
        try:
            answer = client.check_in_appointment(
                request_id,
                code=code,
                person=person,
                policy=booking.policy(self.cfg),
                read_timeout=timeout,
                connect_timeout=min(timeout, self.cfg.central.connect_timeout),
                total_timeout=timeout,
            )
            t, appt = answer.get("ticket"), answer.get("appointment")
            if not (
                isinstance(t, dict)
                and isinstance(appt, dict)
                and isinstance(t.get("number"), int)
                and isinstance(t.get("display"), str)
                and re.fullmatch(r"[A-Z]\d{1,4}", t["display"])
                and isinstance(appt.get("id"), str)
            ):
                raise ValueError("central check-in answer without ticket number/display or appointment id")
            # The checks of an ordinary ticket: number and display agree, the day is a date
            # (it moves the service day), no negative people ahead. The series may be the
            # appointments' own (Y001), so the prefix is the display's.
            problems = check_ticket(t, re.sub(r"\d+$", "", t["display"]))
            if problems:
                raise ValueError("central check-in ticket refused: " + "; ".join(problems))
        except CentralRejected as e:
            with self.ledger.transaction() as tx:  # refused: no number was taken for it
                tx.execute("UPDATE ticket_requests SET state = 'done' WHERE request_id = ?", (request_id,))
            reason = BOOKING_REASONS.get(e.code, "refused")
            log.info("check-in refused by the central: %s", e.code)
            opens = e.body.get("opens_at")
            raise BookingRefused(reason, e.code, opens if isinstance(opens, str) else None) from None
        except Exception as e:  # unreachable, slow, auth, a broken answer: the citizen is not kept waiting
            self.last_central_error = f"{type(e).__name__}: {e}"[:300]
            log.info("check-in not done (%s): the citizen is offered an ordinary ticket", type(e).__name__)
            with self.ledger.transaction() as tx:
                self._report_abandoned(tx, request_id, "*appointment", False, "fallback")
            self._wake()
            self._kick.set()
            if isinstance(e, CentralAuthError):
                log.error("check-in: %s", e)
            raise CheckInOffline(str(e)) from None
        try:
            cat = self.category(str(appt.get("category")))
        except UnknownCategory:
            cat = Category(
                str(appt.get("category")), "", str(appt.get("name_zh") or "预约"), str(appt.get("name_en") or "")
            )
        try:
            with self.ledger.transaction() as tx:
                ticket = self._store(
                    tx, request_id, cat, bool(t.get("priority")), t, "online", appointment=str(appt["id"])[:64]
                )
        except sqlite3.IntegrityError:
            log.error("central check-in number %s collides with a local ticket", t.get("display"))
            with self.ledger.transaction() as tx:
                self._report_abandoned(tx, request_id, "*appointment", False, "fallback")
            raise TicketRefused("the central's number collides with one this device used") from None
        self._wake()
        error = self._print(ticket_for(ticket, self.cfg, reprint=False))
        ticket = self._set_printed(ticket, error)
        return IssueResult(ticket, error is None, paper.state, error)

    def reprint(self, ticket_id: int) -> IssueResult:
        """Print a ticket again (after a failed print); the slip says REPRINT / 补打."""
        with self._lock:
            ticket = self.get(ticket_id)
            paper = self.check_paper()
            if paper.state == "out":
                raise PaperOut(paper.detail or "paper out")
            if paper.state == "offline":
                raise PrinterUnavailable(paper.detail or "printer not available")
            error = self._print(ticket_for(ticket, self.cfg, reprint=True))
            ticket = self._set_printed(ticket, error)
            with self.ledger.transaction() as tx:
                self.ledger.add_event(
                    tx,
                    "ticket.reprinted",
                    {"ticket_uuid": ticket.uuid, "display": ticket.display, "day": ticket.day, "ok": error is None},
                )
            self._wake()
            return IssueResult(ticket, error is None, paper.state, error)

    def _set_printed(self, ticket: Ticket, error: str | None) -> Ticket:
        with self.ledger.transaction() as tx:
            if error is None:
                tx.execute(
                    "UPDATE tickets SET print_state = 'printed', print_count = print_count + 1 WHERE id = ?",
                    (ticket.id,),
                )
            else:
                log.warning("ticket %s kept but not printed: %s", ticket.display, error)
                tx.execute("UPDATE tickets SET print_state = 'failed' WHERE id = ?", (ticket.id,))
        return self.get(ticket.id)

    def get(self, ticket_id: int) -> Ticket:
        rows = self.ledger.query("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
        if not rows:
            raise KeyError(f"no ticket {ticket_id}")
        return Ticket.from_row(rows[0])

    def tickets(self, day: str | None = None) -> list[Ticket]:
        rows = self.ledger.query("SELECT * FROM tickets WHERE day = ? ORDER BY id", (day or self.today(),))
        return [Ticket.from_row(r) for r in rows]

    # -- per person (tickets taken by ID card; see persons.py) --------------------
    def daily_max(self) -> int:
        """Tickets per person per day: the central's person_limits.daily_max, else idcard.daily_max."""
        limits = self._central_config().get("person_limits")
        n = limits.get("daily_max") if isinstance(limits, dict) else None
        if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 50:
            return n
        return self.cfg.idcard.daily_max

    def _local_holdings(self, person: str, day: str) -> list[Holding]:
        rows = self.ledger.query("SELECT * FROM tickets WHERE person = ? AND day = ? ORDER BY id", (person, day))
        return [
            Holding(
                day=r["day"],
                display=r["display"],
                category=r["category"],
                priority=bool(r["priority"]),
                state="local",
                issued_at=r["issued_at"],
                ticket_id=r["id"],
                service_zh=r["service_zh"],
                service_en=r["service_en"],
                device_id=self.cfg.device.id,
            )
            for r in rows
        ]

    def standing(self, citizen: Citizen) -> Standing:
        """What this person holds today: hall-wide when the central answers, else from this ledger.

        Runs on the ID card desk's thread (a network call and ledger reads)."""
        day = self.today()
        local = self._local_holdings(citizen.person, day)
        client = self.client
        if client is not None:
            try:
                answer = client.person_tickets(citizen.person, total_timeout=self.cfg.dispenser.online_timeout)
                central = [h for h in (holding_from_central(t) for t in answer.get("tickets") or []) if h]
                limit = answer.get("daily_max")
                if not (isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1):
                    limit = self.daily_max()
                # A local ticket the central voided, or that a counter called, is as the central says.
                return Standing(citizen, merge(central, local), limit, True)
            except Exception as e:
                log.info("person's tickets not fetched (%s): this device's own count", type(e).__name__)
        return Standing(citizen, local, self.daily_max(), False)

    def _check_person(self, person: str, category: str) -> None:
        """Refuse a second open ticket for the service and a ticket over the daily limit."""
        standing = self.standing(Citizen(person, "", ""))
        held = standing.open_for(category)
        if held is not None:
            raise PersonHasTicket(f"holds {held.display} for {category}", held, standing)
        if standing.at_limit:
            raise PersonDailyLimit(f"{standing.taken} of {standing.daily_max} tickets today", standing)

    def reprint_holding(self, holding: Holding) -> IssueResult:
        """A held ticket printed again, marked REPRINT / 补打, instead of a second number.

        One from this device's ledger is reprinted from there; one another dispenser
        issued is printed from what the central told, and the reprint recorded here."""
        if holding.ticket_id is not None:
            return self.reprint(holding.ticket_id)
        with self._lock:
            paper = self.check_paper()
            if paper.state in ("out", "offline"):
                raise PaperOut(paper.detail) if paper.state == "out" else PrinterUnavailable(paper.detail)
            cat = next((c for c in self.categories() if c.code == holding.category), None)
            ticket = Ticket(
                0,
                "",
                "",
                holding.day,
                holding.category,
                0,
                holding.display,
                holding.priority,
                "online",
                None,
                None,
                holding.issued_at,
                "printed",
                1,
                holding.service_zh or (cat.name_zh if cat else holding.category),
                holding.service_en or (cat.name_en if cat else ""),
            )
            error = self._print(ticket_for(ticket, self.cfg, reprint=True))
            with self.ledger.transaction() as tx:
                self.ledger.add_event(
                    tx,
                    "ticket.reprinted",
                    {
                        "display": holding.display,
                        "day": holding.day,
                        "ok": error is None,
                        "issued_by": holding.device_id,
                    },
                )
            self._wake()
            return IssueResult(ticket, error is None, paper.state, error)

    # -- numbering --------------------------------------------------------------
    def _take_number(
        self, cat: Category, priority: bool, quota: dict[str, Any] | None = None, person: str | None = None
    ) -> Ticket:
        request_id = uuidlib.uuid4().hex
        online = None
        client = self.client
        if client is not None:
            # Written down first: if we die after the central answered, the next
            # start sees the request and tells the central it was abandoned.
            with self.ledger.transaction() as tx:
                tx.execute(
                    "INSERT INTO ticket_requests (request_id, category, priority, created_at, boot_id) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (request_id, cat.code, int(priority), wall_now(), self.ledger.boot_id),
                )
            try:
                online = self._ask_central(client, request_id, cat.code, priority, quota, person)
            except QuotaFull:
                with self.ledger.transaction() as tx:  # refused: the central took no number for it
                    tx.execute("UPDATE ticket_requests SET state = 'done' WHERE request_id = ?", (request_id,))
                raise
        try:
            with self.ledger.transaction() as tx:
                if online is not None:
                    try:
                        return self._store(tx, request_id, cat, priority, online, "online", person=person)
                    except sqlite3.IntegrityError:
                        # The central gave a number this device already used today
                        # (an overlapping offline range?): number offline instead.
                        log.error(
                            "central number %s collides with a local ticket; numbering offline", online.get("display")
                        )
                        self.ledger.add_event(
                            tx,
                            "ticket.number_collision",
                            {"request_id": request_id, "display": str(online.get("display"))},
                        )
                ticket = self._take_offline(tx, request_id, cat, priority, person)
                if client is not None:
                    # The central may have committed a number for this request
                    # that never reached us (a slow or lost answer, a collision):
                    # nobody holds it, so the central must void it before a
                    # counter calls it. Same transaction as the offline ticket,
                    # so the report exists exactly when the fallback does.
                    self._report_abandoned(tx, request_id, cat.code, priority, "fallback")
                return ticket
        finally:
            if client is not None and online is None:
                self._kick.set()  # maybe the central is back: let the refresh thread look

    def _ask_central(
        self,
        client: CentralClient,
        request_id: str,
        category: str,
        priority: bool,
        quota: dict[str, Any] | None = None,
        person: str | None = None,
    ) -> dict[str, Any] | None:
        try:
            timeout = self.cfg.dispenser.online_timeout
            t = client.issue_ticket(
                category,
                request_id,
                priority=priority,
                read_timeout=timeout,
                connect_timeout=min(timeout, self.cfg.central.connect_timeout),
                total_timeout=timeout,  # the citizen's wait: connect, send and the whole answer
                quota=quota,
                person=person,
            )
        except CentralRejected as e:
            if e.code == "quota_full":  # final: the hall's count says so; numbering offline would break it
                self._note_quota(category, e.body.get("quota"))
                self._quota_full.setdefault(category, (self.today(), str((e.body.get("quota") or {}).get("hours"))))
                raise QuotaFull(e.message) from None
            if e.code in ("person_has_ticket", "person_daily_limit"):
                # The hall-wide rule said no (another dispenser was quicker): no number anywhere.
                with self.ledger.transaction() as tx:
                    tx.execute("UPDATE ticket_requests SET state = 'abandoned' WHERE request_id = ?", (request_id,))
                held = [h for h in (holding_from_central(t) for t in e.body.get("tickets") or []) if h is not None]
                if e.code == "person_has_ticket":
                    raise PersonHasTicket("the central says the person holds one", held[0] if held else None) from None
                raise PersonDailyLimit("the central says this person reached the daily limit") from None
            self.last_central_error = f"{type(e).__name__}: {e}"[:300]
            log.info("central did not give a number (%s): numbering offline", e.code)
            return None
        except Exception as e:  # any failure at all means: number offline, never keep a citizen waiting
            self.last_central_error = f"{type(e).__name__}: {e}"[:300]
            log.info("central did not give a number (%s): numbering offline", type(e).__name__)
            return None
        prefix, lo, hi = self._series_limits(category, priority)
        problems = check_ticket(t, prefix, lo, hi)
        if problems:
            # Never printed: a number outside the series, a display the counters do not
            # call, a junk day that would move the service day. Numbered offline, and
            # the request reported abandoned, as for a lost answer.
            self.last_central_error = ("central ticket refused: " + "; ".join(problems))[:300]
            log.error("central ticket answer refused, numbering offline: %s", "; ".join(problems))
            return None
        self.last_central_error = None
        self._note_quota(category, t.get("quota"))
        return t

    def _store(
        self,
        tx: sqlite3.Connection,
        request_id: str,
        cat: Category,
        priority: bool,
        t: dict[str, Any],
        source: str,
        lease_id: str | None = None,
        appointment: str | None = None,
        *,
        person: str | None = None,
    ) -> Ticket:
        central_day = t.get("day") if source == "online" and isinstance(t.get("day"), str) else None
        day = self._service_day(tx, central_day)
        ahead = t.get("people_ahead") if isinstance(t.get("people_ahead"), int) else None
        est = t.get("est_wait_s") if isinstance(t.get("est_wait_s"), int) else None
        tid = str(uuidlib.uuid4())
        # The service's own clock (the wall clock on a device): quota spans are read from it.
        now = in_hall(self.now(), self.zone())
        issued = (now if now.tzinfo else now.replace(tzinfo=self.zone())).isoformat(timespec="milliseconds")
        cur = tx.execute(
            "INSERT INTO tickets (uuid, request_id, day, category, number, display, priority, source, people_ahead,"
            " est_wait_s, issued_at, boot_id, service_zh, service_en, lease_id, appointment, person)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                tid,
                request_id,
                day,
                cat.code,
                t["number"],
                t["display"],
                int(priority),
                source,
                ahead,
                est,
                issued,
                self.ledger.boot_id,
                cat.name_zh,
                cat.name_en,
                lease_id,
                appointment,
                person,
            ),
        )
        tx.execute("UPDATE ticket_requests SET state = 'done' WHERE request_id = ?", (request_id,))
        body: dict[str, Any] = {}
        if person is not None:
            body["person"] = person  # the HMAC only: the central's per-person count, hall-wide
        self.ledger.add_event(
            tx,
            "ticket.issued",
            body
            | {
                "ticket_uuid": tid,
                "request_id": request_id,
                "day": day,
                "category": cat.code,
                "priority": priority,
                "number": t["number"],
                "display": t["display"],
                "source": source,
                "lease_id": lease_id,
                "people_ahead": ahead,
                "est_wait_s": est,
                "issued_at": issued,
                "device_id": self.cfg.device.id,
                "appointment": appointment,  # the central's booking id, never the code
            },
        )
        row = tx.execute("SELECT * FROM tickets WHERE id = ?", (cur.lastrowid,)).fetchone()
        return Ticket.from_row(row)

    def _display_used(self, tx: sqlite3.Connection, day: str, display: str) -> bool:
        return tx.execute("SELECT 1 FROM tickets WHERE day = ? AND display = ?", (day, display)).fetchone() is not None

    def _take_offline(
        self, tx: sqlite3.Connection, request_id: str, cat: Category, priority: bool, person: str | None = None
    ) -> Ticket:
        day = self._service_day(tx)
        series = PRIORITY_SERIES if priority else cat.code
        prefix = self.priority_prefix() if priority else cat.prefix
        # 1. leased blocks for this day, oldest first
        for lease in tx.execute(
            "SELECT * FROM leases WHERE day = ? AND category = ? AND next_number <= last ORDER BY first", (day, series)
        ).fetchall():
            n = lease["next_number"]
            while n <= lease["last"]:
                display = f"{prefix}{n:03d}"
                if not self._display_used(tx, day, display):
                    tx.execute("UPDATE leases SET next_number = ? WHERE lease_id = ?", (n + 1, lease["lease_id"]))
                    return self._store(
                        tx,
                        request_id,
                        cat,
                        priority,
                        {"number": n, "display": display},
                        "lease",
                        lease["lease_id"],
                        person=person,
                    )
                n += 1
            tx.execute("UPDATE leases SET next_number = ? WHERE lease_id = ?", (n, lease["lease_id"]))
        # 2. this device's own offline range
        first, last = self.cfg.dispenser.offline_range
        row = tx.execute(
            "SELECT next_number FROM day_counters WHERE day = ? AND category = ?", (day, series)
        ).fetchone()
        n = max(first, row[0]) if row else first
        while n <= last:
            display = f"{prefix}{n:03d}"
            if not self._display_used(tx, day, display):
                tx.execute(
                    "INSERT INTO day_counters (day, category, next_number) VALUES (?, ?, ?) "
                    "ON CONFLICT(day, category) DO UPDATE SET next_number = excluded.next_number",
                    (day, series, n + 1),
                )
                return self._store(
                    tx, request_id, cat, priority, {"number": n, "display": display}, "offline", person=person
                )
            n += 1
        raise NumbersExhausted(f"offline numbers {first}..{last} for {series} on {day} are used up")

    def _report_abandoned(
        self,
        tx: sqlite3.Connection,
        request_id: str,
        category: str,
        priority: bool,
        reason: str,
        ticket: Ticket | None = None,
    ) -> None:
        """Tell the central (through the outbox) that no citizen holds the number of this request.

        reason: "fallback" (numbered offline instead), "interrupted" (crashed before the
        commit) or "not_printed" (committed, crashed before the paper came out)."""
        tx.execute("UPDATE ticket_requests SET state = 'abandoned' WHERE request_id = ?", (request_id,))
        body: dict[str, Any] = {"request_id": request_id, "category": category, "priority": priority, "reason": reason}
        if ticket is not None:
            # An offline or leased number is known to the central by its day and display only.
            body.update({"ticket_uuid": ticket.uuid, "day": ticket.day, "display": ticket.display})
        self.ledger.add_event(tx, "ticket.abandoned", body)

    def _abandon_leftover_requests(self) -> None:
        """What a crash left behind, reported to the central so its counters never call a number nobody holds:
        requests sent and never committed, and tickets committed but never printed."""
        rows = self.ledger.query("SELECT * FROM ticket_requests WHERE state = 'pending'")
        unprinted = [
            Ticket.from_row(r) for r in self.ledger.query("SELECT * FROM tickets WHERE print_state = 'pending'")
        ]
        if not rows and not unprinted:
            return
        with self.ledger.transaction() as tx:
            for r in rows:
                self._report_abandoned(tx, r["request_id"], r["category"], bool(r["priority"]), "interrupted")
            for t in unprinted:
                # The paper may or may not have come out before the crash; the device cannot
                # know. A number called for nobody stalls a counter, so it is voided; a
                # citizen holding the paper is served at the counter on sight of it.
                tx.execute("UPDATE tickets SET print_state = 'failed' WHERE id = ?", (t.id,))
                self._report_abandoned(tx, t.request_id, t.category, t.priority, "not_printed", t)
        if rows:
            log.warning("%d ticket request(s) were interrupted before commit; reported as abandoned", len(rows))
        if unprinted:
            log.warning("%d ticket(s) were committed but not printed before a restart; reported", len(unprinted))

    # -- leases and queue figures (background, while online) ---------------------
    def refresh(self) -> None:
        """Top up leased blocks for today and fetch queue figures; quietly does nothing offline."""
        client = self.client
        if client is None:
            return
        try:
            queue = client.queue_status()
            problems = check_queue_status(queue)
            if problems:  # keep the last good figures; the sync worker's pull reports the rejection
                log.warning("central queue status refused: %s", "; ".join(problems[:3]))
            elif self.cache is not None:
                self.cache.set(keys.QUEUE_STATUS, queue)
        except Exception as e:
            log.debug("queue status not fetched: %s", type(e).__name__)
            return
        size = self.cfg.dispenser.lease_size
        if size <= 0:
            return
        day = self.today()
        with self.ledger.transaction() as tx:
            tx.execute("DELETE FROM leases WHERE day < ?", (day,))
        cats = self.categories()
        # The priority series is hall-wide; the central wants a category with it, any will do.
        wanted = [(c.code, False) for c in cats] + ([(cats[0].code, True)] if cats else [])
        for code, prio in wanted:
            series = PRIORITY_SERIES if prio else code
            left = self.ledger.query(
                "SELECT COALESCE(SUM(last - next_number + 1), 0) FROM leases "
                "WHERE day = ? AND category = ? AND next_number <= last",
                (day, series),
            )[0][0]
            if left * 2 > size:
                continue
            try:
                lease = client.lease_numbers(code, size, request_id=uuidlib.uuid4().hex, priority=prio)
            except Exception as e:
                log.info("no lease for %s: %s", series, type(e).__name__)
                continue
            self.add_lease(lease, series, size)

    def add_lease(self, lease: dict[str, Any], series: str, size: int | None = None) -> None:
        code = next((c.code for c in self.categories()), "") if series == PRIORITY_SERIES else series
        _, lo, hi = self._series_limits(code, series == PRIORITY_SERIES)
        problems = check_lease(lease, size or 500, lo, hi)
        if isinstance(lease, dict):
            # A block of another series (a mixed-up answer) printed with this prefix
            # would duplicate numbers the other series' devices print.
            if series != PRIORITY_SERIES and lease.get("category", code) != code:
                problems.append(f"lease.category: is {str(lease.get('category'))[:10]!r}, not the {code!r} asked for")
            if lease.get("priority", series == PRIORITY_SERIES) is not (series == PRIORITY_SERIES):
                problems.append("lease.priority: is not the series asked for")
        if problems:
            # A block outside the series (negative, reversed, huge) would be printed
            # as numbers the counters never call; its day would move the service day.
            log.error("central lease refused: %s", "; ".join(problems))
            return
        first, last, lday, lease_id = lease["first"], lease["last"], lease["day"], lease["lease_id"]
        with self.ledger.transaction() as tx:
            day = self._service_day(tx, lday)
            if lday != day:
                return  # a block for another day is no use: numbers reset at midnight
            tx.execute(
                "INSERT OR IGNORE INTO leases (lease_id, day, category, first, last, next_number) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (lease_id, day, series, first, last, first),
            )

    def leased_left(self) -> dict[str, int]:
        rows = self.ledger.query(
            "SELECT category, SUM(last - next_number + 1) AS n FROM leases "
            "WHERE day = ? AND next_number <= last GROUP BY category",
            (self.today(),),
        )
        return {r["category"]: r["n"] for r in rows}

    def start(self, interval: float | None = None) -> None:
        """A small thread that keeps leases topped up and queue figures fresh."""
        if self._thread is not None:
            return
        every = interval or self.cfg.central.sync_interval

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.refresh()
                except Exception:
                    log.exception("ticket refresh failed")
                self._kick.wait(every)
                self._kick.clear()

        self._thread = threading.Thread(target=loop, name="tickets-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _wake(self) -> None:
        if self.wake_sync is not None:
            try:
                self.wake_sync()
            except Exception:
                log.exception("waking the sync worker failed")

    def press(self, name: str) -> None:
        """A hardware button: a category code or "priority". Called on gpiozero's thread."""
        for fn in list(self.button_listeners):
            try:
                fn(name)
            except Exception:
                log.exception("button listener failed")

    # -- for technicians ---------------------------------------------------------
    def status(self) -> dict[str, Any]:
        counts = {
            r["print_state"]: r["n"]
            for r in self.ledger.query(
                "SELECT print_state, COUNT(*) AS n FROM tickets WHERE day = ? GROUP BY print_state", (self.today(),)
            )
        }
        return {
            "day": self.today(),
            "clock_behind": self.clock_behind,
            "clock_ahead": self.clock_ahead,
            "paper": self.paper.state,
            "paper_detail": self.paper.detail,
            "tickets_today": counts,
            "leased_left": self.leased_left(),
            "last_central_error": self.last_central_error,
        }


# ---- wiring -------------------------------------------------------------------

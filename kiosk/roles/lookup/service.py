"""Case progress lookup: a receipt reference in, what the screen may show out.

The flow for one lookup (on a worker thread; never on the UI thread):

1. a scanner payload or the keypad's two fields are parsed (kiosk.roles.lookup.receipt);
2. a receipt number locked on this device (too many wrong 查询码) is refused
   without asking anyone;
3. the central system is asked with a short timeout; its answer is reduced
   to the fields the screen shows, masked (``display_from_case``), and kept in
   the cache for offline use, keyed by a hash of the receipt number;
4. when the central cannot be reached, the cached result for that case is
   shown "as of" its time — only if the 查询码 matches the one it was fetched
   with, so being offline does not open a way around the code;
5. one ``lookup.performed`` audit event goes to the outbox, with the receipt
   number hashed and the outcome as a code, in the same transaction as any
   change to the wrong-code counter.

Why the hashes use a per-device secret rather than the device id as salt:
receipt numbers are short and guessable (ZW + year + six digits is a
million values), so a hash salted with something public — the device id is
printed on the case and sent with every event — could be reversed by anyone
who sees an audit event or the cache file, just by trying every number. A
random 256-bit secret made on the device, kept in its ledger and never sent,
makes the hash useless off the device, while on the device the same case
still gives the same hash, so repeated tries on one case can be counted and
audited. Losing the ledger loses the secret, and with it only the lockout
counters and the cache keys, which are rebuilt as people scan again.

Nothing here imports Kivy; nothing here logs a receipt number, a code or a name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from kiosk.core import keys
from kiosk.core.cache import Cache
from kiosk.core.config import Config
from kiosk.core.ledger import Ledger
from kiosk.core.privacy import MASK, forget_in_logs, mask_name, mask_names_in_text, mask_receipt, scrub
from kiosk.core.time import hall_now, hall_today
from kiosk.roles.lookup.receipt import ReceiptRef, Rejection, check_fields, parse_payload
from kiosk.sync.validate import CASE_STATUSES

if TYPE_CHECKING:
    from kiosk.sync.client import CentralClient

log = logging.getLogger("kiosk.lookup")

AUDIT_KIND = "lookup.performed"
CACHE_MAX_AGE_S = 30 * 24 * 3600  # an "as of" older than a month helps nobody
BUSY_DEFAULT_S = 10  # a 429 without Retry-After: wait this long

# Outcome codes: the screen shows a message per code, the audit event carries it.
OUTCOMES = ("ok", "cached", "offline", "wrong_code", "locked", "rejected", "bad_payload", "try_later")

# The usual path of a case, for the timeline's steps still to come.
NORMAL_PATH = ("accepted", "reviewing", "deciding", "completed", "ready_for_pickup", "delivered")
IN_PROGRESS = ("accepted", "reviewing", "needs_materials", "deciding")
# Every status the contract knows is checked by kiosk/sync/validate.py; the role reads the same list.
STATUSES = CASE_STATUSES
COLLECTIONS = ("window", "post", "online")

_CONTROL_RX = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Scan:
    """One payload from any input, handed from a device thread to the screen."""

    payload: str | bytes | None
    source: str  # serial | wedge | sim | keypad
    problem: str | None = None  # set when the device already found it unusable
    # Set by LookupService.intake for a payload that is no receipt: already recorded
    # (rate-limited) on the device's thread, so the screen only shows the message.
    verdict: LookupResult | None = None

    def __repr__(self) -> str:  # the payload may hold a receipt number and its code
        return f"Scan(source={self.source!r}, problem={self.problem!r})"


@dataclass
class LookupResult:
    outcome: str  # one of OUTCOMES
    case: dict[str, Any] | None = None  # display fields, masked (see display_from_case)
    as_of: str | None = None  # when the shown data came from the central (ISO)
    deadline: dict[str, Any] | None = None  # see deadline_info
    attempts_left: int | None = None  # after a wrong code
    locked_minutes: int | None = None  # after a lockout
    retry_seconds: int | None = None  # "try_later": the central asked this kiosk to wait this long
    reason: str | None = None  # rejection reason code (bad_payload / rejected)
    elapsed_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class ScanHub:
    """Fan-out of scans from device threads to whoever listens (the screen)."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[Scan], None]] = []
        self._claimant: Callable[[Scan], None] | None = None
        self._lock = threading.Lock()

    def claim(self, fn: Callable[[Scan], None]) -> None:
        """Every scan goes to fn alone, unjudged, until release: the technician's
        scanner test, during which nothing is looked up or recorded."""
        with self._lock:
            self._claimant = fn

    def release(self, fn: Callable[[Scan], None]) -> None:
        with self._lock:
            if self._claimant == fn:
                self._claimant = None

    @property
    def claimed(self) -> bool:
        return self._claimant is not None

    def subscribe(self, fn: Callable[[Scan], None]) -> None:
        with self._lock:
            if fn not in self._listeners:
                self._listeners.append(fn)

    def unsubscribe(self, fn: Callable[[Scan], None]) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def publish(self, scan: Scan) -> None:
        with self._lock:
            listeners = [self._claimant] if self._claimant is not None else list(self._listeners)
        for fn in listeners:
            try:
                fn(scan)
            except Exception:  # one broken listener must not stop the scanner thread
                log.exception("scan listener failed")


# ---- what the screen shows ------------------------------------------------


def _clean(value: object, limit: int = 80) -> str:
    """Text from the central is shown as plain text (never markup), bounded, without control characters."""
    if value is None:
        return ""
    s = _CONTROL_RX.sub("", str(value)).strip()
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _iso(value: object) -> str | None:
    try:
        return datetime.fromisoformat(str(value)).isoformat(timespec="minutes")
    except (TypeError, ValueError):
        return None


def display_from_case(case: dict[str, Any]) -> dict[str, Any]:
    """The central's answer reduced to what the screen shows, masked again here
    (the device does not rely on the central having masked the name).

    The free-text fields (missing materials, refusal reason, remedy, step names)
    are typed by clerks and can carry an ID number, a phone number or the
    applicant's name ("张小三的户口本"): they are scrubbed before the result is
    cached or shown. The applicant's name is caught wherever it appears; another
    person's name where clerks write one (after 配偶/代理人/姓名…, or before a
    personal document or a signature: see privacy.mask_names_in_text)."""
    applicant = _clean(case.get("applicant_name"), 30)
    # The central may send the name already masked (张*三): the full name in free
    # text is then found by its pattern, one character per star.
    name_rx = (
        re.compile("".join(r"[^\s*]" if c == "*" else re.escape(c) for c in applicant))
        if len(applicant) >= 2 and "*" in applicant and applicant.strip("*")
        else None
    )

    def free(value: object, limit: int) -> str:
        text = scrub(_clean(value, limit * 2), [applicant], codes=False)
        return _clean(mask_names_in_text(name_rx.sub(MASK, text) if name_rx else text), limit)

    status = case.get("status") if case.get("status") in STATUSES else "unknown"
    collection = case.get("collection") if case.get("collection") in COLLECTIONS else "unknown"
    steps = []
    for s in (case.get("steps") or [])[:20]:
        if not isinstance(s, dict):
            continue
        code = s.get("code") if s.get("code") in STATUSES else "other"
        steps.append(
            {
                "code": code,
                "name_zh": free(s.get("name_zh"), 20),
                "name_en": free(s.get("name_en"), 40),
                "at": _iso(s.get("at")),
                "done": bool(s.get("done", True)),
            }
        )
    # Steps still to come on the usual path, so the citizen sees what is next.
    if status in IN_PROGRESS or status in ("completed", "ready_for_pickup"):
        done = {s["code"] for s in steps}
        last = max((NORMAL_PATH.index(c) for c in done if c in NORMAL_PATH), default=0)
        for code in NORMAL_PATH[last + 1 :]:
            if code == "ready_for_pickup" and collection != "window":
                continue
            steps.append({"code": code, "name_zh": "", "name_en": "", "at": None, "done": False})
    due = case.get("due_date")
    try:
        due = date.fromisoformat(str(due)).isoformat()
    except (TypeError, ValueError):
        due = None
    limit = case.get("time_limit_days")
    return {
        "item_name": _clean(case.get("item_name"), 60),
        "receipt_masked": mask_receipt(_clean(case.get("receipt_no"), 40)),
        "applicant_masked": mask_name(applicant),
        "status": status,
        "status_zh": _clean(case.get("status_zh"), 20),
        "status_en": _clean(case.get("status_en"), 40),
        "steps": steps,
        "time_limit_days": limit
        if isinstance(limit, int) and not isinstance(limit, bool) and 0 <= limit < 1000
        else None,
        "due_date": due,
        "handler": _clean(case.get("handler"), 20),
        "window": _clean(case.get("window"), 8),
        "collection": collection,
        "missing_materials": [free(m, 60) for m in (case.get("missing_materials") or [])[:10] if _clean(m)],
        "refusal_reason": free(case.get("refusal_reason"), 200),
        "remedy": free(case.get("remedy"), 200),
    }


def working_days_between(start: date, end: date) -> int:
    """Mon–Fri days after `start` up to and including `end` (public holidays are
    the central's business: its due date already accounts for them)."""
    if end <= start:
        return 0
    n, d = 0, start
    # Whole weeks at once: a due date years away must not loop for long.
    weeks = (end - start).days // 7
    n += weeks * 5
    d += timedelta(days=weeks * 7)
    while d < end:
        d += timedelta(days=1)
        if d.weekday() < 5:
            n += 1
    return n


def deadline_info(display: dict[str, Any], today: date) -> dict[str, Any]:
    """state: done (no deadline any more), open (days = working days left),
    due_today, overdue (days = working days over), unknown."""
    if display.get("status") not in IN_PROGRESS:
        return {"state": "done", "days": None}
    try:
        due = date.fromisoformat(display.get("due_date") or "")
    except ValueError:
        return {"state": "unknown", "days": None}
    if due == today:
        return {"state": "due_today", "days": 0}
    if due > today:
        return {"state": "open", "days": working_days_between(today, due)}
    return {"state": "overdue", "days": max(1, working_days_between(due, today))}


# ---- the service ----------------------------------------------------------


class LookupService:
    def __init__(
        self,
        cfg: Config,
        ledger: Ledger,
        cache: Cache,
        *,
        client: Callable[[], CentralClient | None] = lambda: None,
        wake: Callable[[], None] = lambda: None,
        now: Callable[[], float] = time.time,
        today: Callable[[], date] = hall_today,  # the hall's date, not the host's
        mono: Callable[[], float] = time.monotonic,
    ):
        self.cfg = cfg
        self.ledger = ledger
        self.cache = cache
        self._client = client
        self._wake = wake
        self.now = now
        self.today = today
        # Set by the composition root when the scanner is shared with another role: which
        # payloads are that role's (see kiosk/wiring.py, build_lookup).
        self.not_mine: Callable[[object], bool] | None = None
        self.scans = ScanHub()
        self._secret: bytes | None = None
        self._lock = threading.Lock()  # one lock-counter update at a time
        self.mono = mono
        # Until when (monotonic) the central asked this kiosk to send no lookups (429 Retry-After).
        self._busy_until = 0.0
        # Bad payloads per source: [window start (monotonic), seen in the window, not yet written].
        self._bad: dict[str, list[float]] = {}
        self._bad_shown: dict[str, float] = {}  # when the screen was last told of a bad scan, per source
        self._stopping = threading.Event()
        self._flusher: threading.Thread | None = None

    # -- the housekeeping thread ----------------------------------------------
    def start(self) -> None:
        """Write the held-back counts of bad payloads when their window ends, not only
        when the next scan comes: a burst at closing time is still recorded that day."""
        if self._flusher is not None:
            return
        self._stopping.clear()
        self._flusher = threading.Thread(target=self._flush_loop, name="lookup-flush", daemon=True)
        self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._stopping.wait(self.BAD_WINDOW / 2):
            try:
                self.flush_rejections()
            except Exception as e:  # storage trouble: the counts stay held and are tried again
                log.warning("cannot record the bad-payload counts: %s", type(e).__name__)

    def stop(self) -> None:
        """Stop the thread and write every count still held (the app is closing)."""
        self._stopping.set()
        if self._flusher is not None:
            self._flusher.join(5)
            self._flusher = None
        try:
            self.flush_rejections(force=True)
        except Exception as e:
            log.warning("cannot record the bad-payload counts at stop: %s", type(e).__name__)

    # -- hashing ------------------------------------------------------------
    @property
    def secret(self) -> bytes:
        if self._secret is None:
            value = self.ledger.get_meta(keys.LOOKUP_SECRET)
            if not value:
                # Made once per device; INSERT OR IGNORE so two threads agree on one.
                with self.ledger.transaction() as tx:
                    tx.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                        (keys.LOOKUP_SECRET, secrets.token_hex(32)),
                    )
                value = self.ledger.get_meta(keys.LOOKUP_SECRET)
                if value is None:  # only if the meta table lost the row we just committed
                    raise RuntimeError("the ledger does not keep the lookup secret")
            self._secret = bytes.fromhex(value)
        return self._secret

    def receipt_hash(self, receipt_no: str) -> str:
        # Upper-cased so that zw… and ZW… share one lockout counter.
        return hmac.new(self.secret, b"receipt\0" + receipt_no.upper().encode(), hashlib.sha256).hexdigest()[:32]

    def _code_check(self, ref: ReceiptRef) -> str:
        msg = b"code\0" + ref.receipt_no.upper().encode() + b"\0" + ref.query_code.encode()
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()

    # -- entry points ---------------------------------------------------------
    def intake(self, scan: Scan) -> None:
        """A scan from a device thread (serial reader, simulator): garbage is judged
        and recorded here, before anything is handed to the screen, so a scanner
        that spews lines costs the UI one message per frame at most, never a
        queue of callbacks; a receipt goes to the listeners for the lookup."""
        if self.scans.claimed:  # the technician's test: shown as it came, nothing recorded
            self.scans.publish(scan)
            return
        if not scan.problem and self.not_mine is not None and self.not_mine(scan.payload):
            # Another role's code on a shared scanner (a booking QR on a dispenser kiosk):
            # not a bad receipt, so not recorded as one; the screen routes it.
            self.scans.publish(scan)
            return
        if scan.problem or isinstance(self._parse(scan.payload), Rejection):
            verdict = self.lookup_scan(scan)
            now = self.mono()
            with self._lock:
                shown = self._bad_shown.get(scan.source, -1e9)
                burst = (self._bad.get(scan.source) or [0, 0, 0])[1] > self.BAD_BURST
                if now - shown >= self.BAD_SHOW_EVERY:
                    self._bad_shown[scan.source] = now
                    burst = False  # this one is shown
            if burst:
                # A storm: the message is already on screen. Read on at most a line a
                # millisecond (30x a real 9600-baud scanner), leaving the UI its frames.
                time.sleep(0.001)
                return
            scan = Scan(None, scan.source, scan.problem or "rejected", verdict=verdict)
        self.scans.publish(scan)

    def _parse(self, payload: str | bytes | None) -> ReceiptRef | Rejection:
        return parse_payload(
            payload, receipt_param=self.cfg.lookup.receipt_param, code_param=self.cfg.lookup.code_param
        )

    def lookup_scan(self, scan: Scan) -> LookupResult:
        if scan.verdict is not None:
            return scan.verdict  # judged and recorded at intake
        if scan.problem:
            reason = "too_long" if scan.problem == "too_long" else "binary"
            return self.reject(Rejection(reason, f"device: {scan.problem}"), scan.source)
        ref = self._parse(scan.payload)
        if isinstance(ref, Rejection):
            return self.reject(ref, scan.source)
        return self.lookup(ref, scan.source)

    def lookup_fields(self, receipt_no: str, query_code: str, source: str = "keypad") -> LookupResult:
        ref = check_fields(receipt_no, query_code)
        if isinstance(ref, Rejection):
            return self.reject(ref, source)
        return self.lookup(ref, source)

    # A scanner that spews garbage (a loose cable, a wrong baud rate, a code held
    # under it) must not turn each line into a ledger write, an outbox event and
    # a log line: the first few of a window are recorded one by one, the rest
    # counted and recorded as one event when the window ends.
    BAD_BURST = 3
    BAD_WINDOW = 10.0  # s
    BAD_SHOW_EVERY = 0.5  # s: in a storm, the screen is told this often at most

    def reject(self, rejection: Rejection, source: str) -> LookupResult:
        now = self.mono()
        with self._lock:
            st = self._bad.get(source)
            if st is None or now - st[0] >= self.BAD_WINDOW:
                held = int(st[2]) if st else 0
                st = self._bad[source] = [now, 0, 0]
            else:
                held = 0
            st[1] += 1
            one_by_one = st[1] <= self.BAD_BURST
            if not one_by_one:
                st[2] += 1
        if held:
            self._write_coalesced(source, held)
        if one_by_one:
            log.info("lookup payload rejected from %s: %s (%s)", source, rejection.reason, rejection.detail)
            self._audit(None, "bad_payload", source, central="skipped", reason=rejection.reason)
        return LookupResult("bad_payload", reason=rejection.reason)

    def flush_rejections(self, *, force: bool = False) -> int:
        """Write the counts of bad payloads held back (windows that ended, or all if force)."""
        now, due = self.mono(), []
        with self._lock:
            for source, st in list(self._bad.items()):
                if st[2] and (force or now - st[0] >= self.BAD_WINDOW):
                    due.append((source, int(st[2])))
                    st[2] = 0
        for source, n in due:
            self._write_coalesced(source, n)
        return sum(n for _, n in due)

    def _write_coalesced(self, source: str, n: int) -> None:
        log.info("lookup: %d more bad payloads from %s in %.0f s (coalesced)", n, source, self.BAD_WINDOW)
        self._audit(None, "bad_payload", source, central="skipped", reason="coalesced", count=n)

    def lookup(self, ref: ReceiptRef, source: str) -> LookupResult:
        self.flush_rejections()
        # The receipt number asked about is masked in every later log line of
        # this process, whoever logs it (a library, an exception text, a
        # central answer quoted in an error), not only in our own messages.
        forget_in_logs(ref.receipt_no)
        started = time.monotonic()
        result = self._lookup(ref, source)
        result.elapsed_ms = (time.monotonic() - started) * 1000
        log.info("lookup from %s: %s in %.0f ms", source, result.outcome, result.elapsed_ms)
        return result

    # -- the steps ------------------------------------------------------------
    def _lookup(self, ref: ReceiptRef, source: str) -> LookupResult:
        from kiosk.sync.errors import (
            CaseCodeWrong,
            CaseLocked,
            CentralAuthError,
            CentralBusy,
            CentralRejected,
            CentralUnreachable,
        )

        h = self.receipt_hash(ref.receipt_no)
        left = self.locked_for(h)
        if left:
            self._audit(h, "locked", source, central="skipped")
            return LookupResult("locked", locked_minutes=_minutes(left))

        client = self._client()
        central_state = "unreachable"
        wait = self._busy_until - self.mono()
        if client is not None and wait > 0:
            # Honour the central's Retry-After: no request until it has passed.
            self._audit(h, "try_later", source, central="skipped")
            return LookupResult("try_later", retry_seconds=max(1, math.ceil(wait)))
        if client is not None:
            try:
                case = self._ask_central(client, ref)
            except CaseLocked as e:
                # The central's lockout is the authority: mirror it on the device.
                seconds = e.retry_after or self.cfg.lookup.lockout_minutes * 60
                self._lock_now(h, seconds, source, central="locked")
                return LookupResult("locked", locked_minutes=_minutes(seconds))
            except CaseCodeWrong as e:
                return self._wrong_code(h, source, "wrong_code", e.attempts_left)
            except CentralBusy as e:
                # The central is up and asks this kiosk to wait: "try again in N s",
                # not an outage (no cached answer passed off as the best there is).
                seconds = max(1, math.ceil(e.retry_after if e.retry_after is not None else BUSY_DEFAULT_S))
                self._busy_until = self.mono() + seconds
                self._audit(h, "try_later", source, central="rate_limited")
                return LookupResult("try_later", retry_seconds=seconds)
            except CentralAuthError:
                central_state = "auth_error"
            except CentralUnreachable:
                central_state = "unreachable"
            except CentralRejected as e:
                self._audit(h, "rejected", source, central=f"rejected_{e.status}")
                return LookupResult("rejected", reason=_clean(e.code, 30))
            else:
                return self._found(h, ref, case, source)
        else:
            central_state = "no_client"
        return self._offline(h, ref, source, central_state)

    def _ask_central(self, client: CentralClient, ref: ReceiptRef) -> dict[str, Any]:
        """The one call to the central system (contract: POST /cases/lookup)."""
        # The client raises CentralUnreachable for an answer that is not a JSON object;
        # an object that breaks the contract is no better: the citizen gets the
        # cached answer or "offline", never a half-drawn case.
        from kiosk.sync.errors import CentralUnreachable
        from kiosk.sync.validate import check_case

        case = client.lookup_case(ref.receipt_no, ref.query_code, read_timeout=self.cfg.lookup.timeout)
        problems = check_case(case)
        if problems:  # field names only: the answer carries personal data
            raise CentralUnreachable("the central's case answer is unusable: " + "; ".join(problems))
        return case

    def _found(self, h: str, ref: ReceiptRef, case: dict[str, Any], source: str) -> LookupResult:
        display = display_from_case({**case, "receipt_no": ref.receipt_no})
        as_of = hall_now(wall=self.now()).isoformat(timespec="seconds")
        # Only the masked display fields and a keyed hash of the code are kept.
        self.cache.set(
            keys.LOOKUP_CASE_PREFIX + h,
            {"case": display, "as_of": as_of, "saved": self.now(), "code_check": self._code_check(ref)},
        )
        with self._lock, self.ledger.transaction() as tx:
            tx.execute("DELETE FROM meta WHERE key = ?", (keys.LOOKUP_LOCK_PREFIX + h,))
            self._audit_tx(tx, h, "ok", source, central="ok")
        self._wake()
        return LookupResult("ok", case=display, as_of=as_of, deadline=deadline_info(display, self.today()))

    def _offline(self, h: str, ref: ReceiptRef, source: str, central_state: str) -> LookupResult:
        entry = self.cache.get(keys.LOOKUP_CASE_PREFIX + h)
        if isinstance(entry, dict) and self.now() - float(entry.get("saved", 0)) > CACHE_MAX_AGE_S:
            self.cache.delete(keys.LOOKUP_CASE_PREFIX + h)
            entry = None
        if not isinstance(entry, dict) or not isinstance(entry.get("case"), dict):
            self._audit(h, "offline", source, central=central_state)
            return LookupResult("offline")
        if not hmac.compare_digest(str(entry.get("code_check", "")), self._code_check(ref)):
            # Offline, the device itself checks the code against the one the
            # cached answer was fetched with; a wrong one counts like online.
            return self._wrong_code(h, source, "wrong_code_offline", None)
        display = entry["case"]
        self._audit(h, "cached", source, central=central_state)
        return LookupResult(
            "cached", case=display, as_of=entry.get("as_of"), deadline=deadline_info(display, self.today())
        )

    # -- wrong codes and lockout ------------------------------------------------
    def _read_lock(self, h: str) -> dict[str, Any]:
        raw = self.ledger.get_meta(keys.LOOKUP_LOCK_PREFIX + h)
        try:
            state = json.loads(raw) if raw else {}
        except ValueError:
            state = {}
        return state if isinstance(state, dict) else {}

    def locked_for(self, h: str) -> float:
        """Seconds this receipt hash stays locked on the device (0 = not locked)."""
        return max(0.0, float(self._read_lock(h).get("locked_until", 0)) - self.now())

    def _wrong_code(self, h: str, source: str, central: str, central_left: int | None) -> LookupResult:
        now = self.now()
        window = self.cfg.lookup.lockout_minutes * 60
        with self._lock, self.ledger.transaction() as tx:
            row = tx.execute("SELECT value FROM meta WHERE key = ?", (keys.LOOKUP_LOCK_PREFIX + h,)).fetchone()
            try:
                state = json.loads(row["value"]) if row else {}
            except ValueError:
                state = {}
            # Failures older than the lockout time are forgotten: one typo last week
            # does not bring a citizen closer to a lockout today.
            if now - float(state.get("since", now)) > window:
                state = {}
            failures = int(state.get("failures", 0)) + 1
            state = {"failures": failures, "since": state.get("since", now), "locked_until": 0}
            local_left = self.cfg.lookup.max_attempts - failures
            locked = local_left <= 0 or central_left == 0
            if locked:
                state["locked_until"] = now + window
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (keys.LOOKUP_LOCK_PREFIX + h, json.dumps(state)),
            )
            self._prune_locks(tx, now, window)
            self._audit_tx(tx, h, "locked" if locked else "wrong_code", source, central=central)
        self._wake()
        if locked:
            return LookupResult("locked", locked_minutes=_minutes(window))
        left = local_left if central_left is None else min(local_left, central_left)
        return LookupResult("wrong_code", attempts_left=left)

    def _lock_now(self, h: str, seconds: float, source: str, central: str) -> None:
        now = self.now()
        with self._lock, self.ledger.transaction() as tx:
            state = {"failures": self.cfg.lookup.max_attempts, "since": now, "locked_until": now + seconds}
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (keys.LOOKUP_LOCK_PREFIX + h, json.dumps(state)),
            )
            self._audit_tx(tx, h, "locked", source, central=central)
        self._wake()

    @staticmethod
    def _prune_locks(tx: sqlite3.Connection, now: float, window: float) -> None:
        """Drop counters that can no longer matter, so the table does not grow for ever."""
        for row in tx.execute(
            "SELECT key, value FROM meta WHERE key LIKE ?", (keys.LOOKUP_LOCK_PREFIX + "%",)
        ).fetchall():
            try:
                s = json.loads(row["value"])
                stale = float(s.get("locked_until", 0)) < now and now - float(s.get("since", 0)) > window
            except (ValueError, TypeError, AttributeError):
                stale = True
            if stale:
                tx.execute("DELETE FROM meta WHERE key = ?", (row["key"],))

    # -- audit ----------------------------------------------------------------
    def _audit(self, h: str | None, outcome: str, source: str, **extra: object) -> None:
        with self.ledger.transaction() as tx:
            self._audit_tx(tx, h, outcome, source, **extra)
        self._wake()

    def _audit_tx(self, tx: sqlite3.Connection, h: str | None, outcome: str, source: str, **extra: object) -> None:
        body = {"receipt_hash": h, "outcome": outcome, "source": source, "device_id": self.cfg.device.id, **extra}
        self.ledger.add_event(tx, AUDIT_KIND, body)

    def prune_cache(self) -> int:
        """Forget cached results older than CACHE_MAX_AGE_S; returns how many."""
        n = 0
        for key in self.cache:
            if key.startswith(keys.LOOKUP_CASE_PREFIX):
                entry = self.cache.get(key)
                if not isinstance(entry, dict) or self.now() - float(entry.get("saved", 0)) > CACHE_MAX_AGE_S:
                    self.cache.delete(key)
                    n += 1
        return n


def _minutes(seconds: float) -> int:
    return max(1, int(-(-seconds // 60)))


# ---- wiring -----------------------------------------------------------------

"""The counter satisfaction pad (政务服务"好差评" 评价器): sessions, rules, records.

A rating exists only inside a RatingSession: one service at one window,
opened when the counter ends a service on the central system (the window
session, long-polled by a watcher thread) or, offline, by the clerk's
请评价 button. The rules of 国办发〔2019〕51号 / GB/T 39734-2020 live here,
not in the screen, so that the touchscreen and the hardware keypad obey
the same ones:

- five levels, ★5 非常满意 … ★1 非常不满意; ★2 and ★1 need at least one
  reason from the versioned list, and may leave a callback phone number;
- one outcome per session (一次一评), enforced by ``ratings.session_id
  UNIQUE`` in the ledger, not only by this code;
- the invitation lasts ``rating_seconds`` from the citizen's last touch,
  never more than ``rating_max_seconds`` from its start; when it ends, the
  citizen's own choice so far is recorded, exactly as far as it went
  (docs/rating-sessions.md): a complete choice as ``rated`` with
  ``auto_submitted``, a ★2/★1 without its reason as ``incomplete`` with that
  level, nothing chosen as ``not_rated``; there is never a default rating;
- an open session and its choice so far are kept in the ledger, so a crash
  still ends in a recorded outcome (at the next start), and an outcome the
  storage refused is retried, not dropped;
- nothing here lets staff pick, change or delete a rating: the clerk's
  button can only open a session, and only when no session is open.

Every outcome is one ledger transaction: the chained record in ``ratings``
plus its outbox event, committed before the pad thanks the citizen.
The phone number is stored in the record (the central system needs it for
the callback) and is never logged; anything shown has it masked.
"""

from __future__ import annotations

import base64
import logging
import re
import sqlite3
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.core import keys
from kiosk.core.backoff import Backoff
from kiosk.core.cache import Cache
from kiosk.core.config import Config
from kiosk.core.ledger import Ledger
from kiosk.core.time import wall_now
from kiosk.roles.pad.chain import GENESIS, record_hash
from kiosk.sync.errors import CentralUnreachable

if TYPE_CHECKING:
    from kiosk.sync.client import CentralClient

log = logging.getLogger("kiosk.pad")

CHANNEL = "PJQ"  # 评价器, as the provincial platforms name the channel
LEVELS = (5, 4, 3, 2, 1)
BAD_LEVELS = (2, 1)
LEVEL_WORDS = {
    5: ("非常满意", "Very satisfied"),
    4: ("满意", "Satisfied"),
    3: ("基本满意", "Acceptable"),
    2: ("不满意", "Dissatisfied"),
    1: ("非常不满意", "Very dissatisfied"),
}


# Mainland mobile numbers, or a landline with its area code (digits only:
# the pad's keypad has no other keys).
PHONE_RX = re.compile(r"1[3-9]\d{9}|0\d{9,11}")


class RatingError(Exception):
    """A rating the rules refuse; ``code`` says which rule (for the screen's words)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


def valid_phone(phone: str) -> bool:
    return bool(PHONE_RX.fullmatch(phone or ""))


def stars(n: int | float | str | None, total: int = 5) -> str:
    """★★★☆☆ for 3: the level drawn the way the citizen knows it."""
    try:
        k = max(0, min(total, int(n or 0)))
    except (TypeError, ValueError):
        k = 0
    return "★" * k + "☆" * (total - k)


@dataclass
class RatingSession:
    """One service at one window that may be rated once."""

    session_id: str
    window: str
    staff_id: str | None
    origin: str  # "central" (window session) or "clerk" (offline button)
    started_at: str  # when the service began (wall time), if known
    invited_at: str  # when the pad opened the invitation (wall time)
    deadline: float  # monotonic
    hard_deadline: float = float("inf")  # monotonic: activity never extends past it
    ticket: str | None = None
    case_no: str | None = None  # 办件编号
    item_code: str | None = None  # 事项编码
    item_version: str | None = None
    level: int | None = None  # chosen on the keypad, waiting for reasons
    reasons: tuple[str, ...] = ()  # chosen so far (★2/★1), not yet submitted
    phone: str | None = None  # accepted on the keypad, not yet submitted
    state: str = "open"  # open | rated | not_rated
    extensions: int = 0  # times the citizen asked for more time

    def seconds_left(self, now: float | None = None) -> float:
        return max(0.0, self.deadline - (time.monotonic() if now is None else now))


@dataclass(frozen=True)
class Reasons:
    version: str
    items: tuple[dict[str, Any], ...]  # each with str "code", "zh", "en"

    def codes(self) -> set[str]:
        return {r["code"] for r in self.items}


@dataclass
class PadState:
    """What the screen shows; a copy, safe to hand to the UI thread."""

    paused: bool = False
    online: bool = False
    card: dict[str, Any] | None = None  # staff card + "photo_path"
    session: RatingSession | None = None
    last_outcome: dict[str, Any] | None = field(default=None)
    # Read with the rest on the service's thread: the screen never reads the cache itself.
    reasons: Reasons | None = None


class RatingService:
    """Owns the pad's session and writes every outcome to the ledger."""

    def __init__(
        self,
        cfg: Config,
        ledger: Ledger,
        cache: Cache,
        *,
        client: CentralClient | None = None,
        wake: Callable[[], None] | None = None,
        storage_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.cfg = cfg
        self.ledger = ledger
        self.cache = cache
        self.client = client  # CentralClient, or None: offline, the clerk's button starts sessions
        self._wake = wake  # a rating was committed: deliver it now (the sync worker)
        self.window = cfg.pad.window
        self.device_id = cfg.device.id
        self.rating_seconds = cfg.pad.rating_seconds
        self.rating_max_seconds = max(cfg.pad.rating_max_seconds, cfg.pad.rating_seconds)
        self.storage_dir = Path(storage_dir or cfg.storage.dir)
        self.clock = clock
        self._lock = threading.RLock()
        self._session: RatingSession | None = None
        self._paused = False
        self._online = False
        self._listeners: list[Callable[[str, PadState], None]] = []
        self._timer: threading.Timer | None = None
        self._watcher: WindowWatcher | None = None
        self._card_seen: tuple[object, ...] | None = None
        self._closed = False
        # Outcomes the ledger refused (full or failing storage): session_id -> (body, kind).
        # Retried with backoff until committed; the open-session record stays in the ledger meanwhile.
        self._unwritten: dict[str, tuple[dict[str, Any], str]] = {}
        self._retry_timer: threading.Timer | None = None
        self._retry_backoff = Backoff(base=1.0, cap=30.0, floor=0.2)

    # -- observers --------------------------------------------------------
    def subscribe(self, fn: Callable[[str, PadState], None]) -> None:
        """fn(what, state) runs on whichever thread changed things: the screen
        hands it to the UI thread with Clock.schedule_once."""
        self._listeners.append(fn)

    def unsubscribe(self, fn: Callable[[str, PadState], None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def _notify(self, what: str, outcome: dict[str, Any] | None = None) -> None:
        if self._closed or not self._listeners:
            return
        st = self.state()
        st.last_outcome = outcome
        for fn in list(self._listeners):
            try:
                fn(what, st)
            except Exception:
                log.exception("pad listener failed on %s", what)

    def state(self) -> PadState:
        with self._lock:
            s = replace(self._session) if self._session else None
            return PadState(
                paused=self._paused, online=self._online, card=self.staff_card(), session=s, reasons=self.reasons()
            )

    # -- reasons and staff card --------------------------------------------
    def reasons(self) -> Reasons:
        """The central system's versioned list when it has sent one, else the config's."""
        snap = self.cache.get(keys.CENTRAL_CONFIG) or {}
        rr = snap.get("rating_reasons") if isinstance(snap, dict) else None
        if isinstance(rr, dict) and isinstance(rr.get("version"), str) and isinstance(rr.get("reasons"), list):
            items = tuple(
                r
                for r in rr["reasons"]
                if isinstance(r, dict)
                and isinstance(r.get("code"), str)
                and isinstance(r.get("zh"), str)
                and isinstance(r.get("en"), str)
            )
            if items:
                return Reasons(rr["version"], items)
        return Reasons(self.cfg.pad.reasons_version, tuple(dict(r) for r in self.cfg.pad.reasons))

    def staff_card(self) -> dict[str, Any] | None:
        """The window's staff card as the sync worker (or the watcher) cached it,
        with ``photo_path``: the photo written out as a file for the screen."""
        entry = self.cache.get(keys.staff_card(self.window))
        card = entry.get("card") if isinstance(entry, dict) else None
        if not isinstance(card, dict) or not card.get("staff_id"):
            return None
        card = {k: card.get(k) for k in ("staff_id", "name", "employee_no", "window", "stars", "photo_etag")}
        path = self._photo_file(str(card["staff_id"]))
        if path:
            card["photo_path"] = path
        return card

    def _photo_file(self, staff_id: str) -> str | None:
        """Write the cached photo (base64 in the cache) to a file once per version."""
        entry = self.cache.get(keys.staff_photo(staff_id))
        if not isinstance(entry, dict) or not isinstance(entry.get("data_b64"), str):
            return None
        ctype = entry.get("content_type") or ""
        ext = "png" if "png" in ctype else "jpg" if ("jpeg" in ctype or "jpg" in ctype) else None
        if ext is None:
            return None
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", staff_id)
        tag = re.sub(r"[^A-Za-z0-9]", "", str(entry.get("etag") or ""))[:16] or "x"
        path = self.storage_dir / keys.STAFF_PHOTO_DIR / f"{safe}-{tag}.{ext}"
        if not path.exists():
            try:
                data = base64.b64decode(entry["data_b64"], validate=True)
            except ValueError:
                return None
            # What the central labelled a photo may be an error page: only real PNG or
            # JPEG bytes become the file the screen loads.
            if not data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
                return None
            # Several threads may get here at once (sync listener, watcher, UI):
            # each writes its own temporary file; the rename is atomic, so the
            # screen never loads half a photo, and the last rename wins.
            tmp = path.with_name(f".{path.name}.{uuidlib.uuid4().hex}.tmp")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(data)
                tmp.replace(path)
            except OSError as e:
                # A full or broken storage: the card shows without its photo; the rating
                # it belongs to (state() runs on every notification) is never failed by it.
                log.warning("staff photo not written (%s)", type(e).__name__)
                try:
                    tmp.unlink(missing_ok=True)
                except OSError:
                    pass  # its folder cannot be written or is not a folder: nothing was made
                return None
            for old in path.parent.glob(f"{safe}-*.{ext}"):
                if old != path:
                    old.unlink(missing_ok=True)
        return str(path)

    def store_card(
        self,
        card: dict[str, Any],
        photo: bytes | None,
        *,
        etag: str | None = None,
        photo_type: str | None = None,
        photo_etag: str | None = None,
    ) -> None:
        """Keep a fetched card (and photo) in the same cache entries the sync worker fills."""
        self.cache.set(keys.staff_card(self.window), {"card": card, "etag": etag, "fetched_at": wall_now()})
        if photo is not None:
            self.cache.set(
                keys.staff_photo(str(card["staff_id"])),
                {
                    "content_type": photo_type or ("image/png" if photo.startswith(b"\x89PNG") else "image/jpeg"),
                    "etag": photo_etag,
                    "data_b64": base64.b64encode(photo).decode("ascii"),
                },
            )
        self.card_maybe_changed()

    def card_maybe_changed(self, *args: object) -> None:
        """Tell the screen when the card or photo it shows has changed (the sync
        worker refreshes them in the background)."""
        card = self.staff_card()
        key = (
            None
            if card is None
            else (
                card.get("staff_id"),
                card.get("name"),
                card.get("employee_no"),
                card.get("stars"),
                card.get("photo_path"),
            )
        )
        if key != self._card_seen:
            self._card_seen = key
            self._notify("card")

    # -- the window session (from the watcher) -------------------------------
    def set_online(self, online: bool) -> None:
        with self._lock:
            changed = online != self._online
            self._online = online
        if changed:
            self._notify("online")

    def on_window_session(self, s: dict[str, Any], *, first: bool = False) -> None:
        """React to the central system's window session (one long-poll answer)."""
        state = s.get("state")
        with self._lock:
            was_paused = self._paused
            self._paused = state == "paused"
        if was_paused != (state == "paused"):
            self._notify("paused")
        if state != "ended" or not s.get("session_id"):
            return
        sid = str(s["session_id"])
        if first and not self._recently_ended(s.get("ended_at")):
            return  # a service that ended long before this pad started: not ours to invite
        self.open_session(
            sid,
            origin="central",
            staff_id=s.get("staff_id"),
            started_at=s.get("started_at"),
            ticket=s.get("ticket"),
            case_no=s.get("case_no"),
            item_code=s.get("item_code"),
            item_version=s.get("item_version"),
        )

    def _recently_ended(self, ended_at: object) -> bool:
        from datetime import datetime

        if not isinstance(ended_at, str):
            return False
        try:
            ended = datetime.fromisoformat(ended_at).timestamp()
        except ValueError:
            return False
        return abs(time.time() - ended) < self.rating_seconds

    # -- sessions -------------------------------------------------------------
    def open_session(
        self,
        session_id: str,
        *,
        origin: str,
        staff_id: str | None = None,
        started_at: str | None = None,
        ticket: str | None = None,
        case_no: str | None = None,
        item_code: str | None = None,
        item_version: str | None = None,
    ) -> RatingSession | None:
        """Invite a rating. A session already decided (rated or timed out) is never reopened."""
        if self.outcome_of(session_id) is not None:
            return None
        superseded = None
        with self._lock:
            cur = self._session
            if cur is not None and cur.session_id == session_id:
                return None
            if cur is not None:
                superseded = cur
        if superseded is not None:
            # The next service ended before this one was rated: it was not rated.
            self._close_not_rated(superseded, "superseded")
        now_wall = wall_now()
        sess = RatingSession(
            session_id=session_id,
            window=self.window,
            staff_id=staff_id,
            origin=origin,
            started_at=started_at or now_wall,
            invited_at=now_wall,
            deadline=self.clock() + self.rating_seconds,
            hard_deadline=self.clock() + self.rating_max_seconds,
            ticket=ticket,
            case_no=case_no,
            item_code=item_code,
            item_version=item_version,
        )
        with self._lock:
            self._session = sess
        self._persist(sess)
        self._arm_timer(self.rating_seconds)
        log.info("rating session opened (%s) at window %s", origin, self.window)
        self._notify("invite")
        return sess

    def clerk_button(self) -> RatingSession | None:
        """The clerk's 请评价 button: a local session, only while the central system is
        unreachable (online, the window session already invites) and none is open."""
        with self._lock:
            if self._online or self._session is not None or self._paused:
                return None
        card = self.staff_card() or {}
        return self.open_session("L-" + uuidlib.uuid4().hex, origin="clerk", staff_id=card.get("staff_id"))

    def current(self) -> RatingSession | None:
        with self._lock:
            return replace(self._session) if self._session else None

    def outcome_of(self, session_id: str) -> str | None:
        rows = self.ledger.query("SELECT body FROM ratings WHERE session_id = ?", (session_id,))
        if not rows:
            return None
        import json

        outcome = json.loads(rows[0]["body"]).get("outcome")
        return str(outcome) if outcome is not None else None

    def choose_level(self, level: int | None, session_id: str | None = None) -> RatingSession:
        """A level picked on the keypad that still needs reasons (★2/★1): remembered
        on the session so the touchscreen asks for them. None: the citizen took it back."""
        with self._lock:
            sess = self._require_open(session_id)
            if level is not None and level not in LEVELS:
                raise RatingError("bad_level", f"level {level!r} is not one of 1..5")
            if level != sess.level:
                sess.reasons, sess.phone = (), None
            sess.level = level
            self._extend(sess)
            out = replace(sess)
        self._persist(out)
        self._notify("level")
        return out

    def choose_reasons(self, reasons: list[str] | tuple[str, ...], session_id: str | None = None) -> RatingSession:
        """The reasons ticked so far (not yet submitted): kept, so that the end of
        the time records them with the level instead of losing them."""
        known = self.reasons().codes()
        with self._lock:
            sess = self._require_open(session_id)
            if sess.level not in BAD_LEVELS:
                raise RatingError("bad_reason", "reasons are only taken for ★2 and ★1")
            unknown = [c for c in reasons if c not in known]
            if unknown:
                raise RatingError("bad_reason", f"reason codes {unknown} are not in the list")
            sess.reasons = tuple(dict.fromkeys(reasons))
            self._extend(sess)
            out = replace(sess)
        self._persist(out)
        return out

    def choose_phone(self, phone: str | None, session_id: str | None = None) -> RatingSession:
        """The callback number accepted on the keypad (or cleared), not yet submitted."""
        if phone and not valid_phone(phone):
            raise RatingError("bad_phone", "the callback number is not a mobile or landline number")
        with self._lock:
            sess = self._require_open(session_id)
            if phone and sess.level not in BAD_LEVELS:
                raise RatingError("bad_phone", "a callback number is only taken for ★2 and ★1")
            sess.phone = phone or None
            self._extend(sess)
            out = replace(sess)
        self._persist(out)
        return out

    def activity(self, session_id: str | None = None) -> bool:
        """The citizen touched the pad: the invitation runs rating_seconds from now,
        never past rating_max_seconds from its start. Cheap (no storage): the screen
        calls it on every touch. Returns whether the session is still open."""
        with self._lock:
            sess = self._session
            if sess is None or (session_id is not None and sess.session_id != session_id):
                return False
            if self.clock() >= sess.deadline:
                return False  # over is over: a late touch does not reopen it
            self._extend(sess)
            return True  # still open (perhaps already at its maximum)

    def _extend(self, sess: RatingSession) -> bool:
        new = min(self.clock() + self.rating_seconds, sess.hard_deadline)
        if new <= sess.deadline:
            return False
        sess.deadline = new
        self._arm_timer(new - self.clock())
        return True

    MAX_EXTENSIONS = 2  # the rating keeps a time window (GB/T 39734): more time, not endless time

    def extend(self, session_id: str | None = None) -> RatingSession:
        """The citizen asked for more time: the deadline moves to a full rating window
        from now, at most MAX_EXTENSIONS times per session (then "no_more_time")."""
        with self._lock:
            sess = self._require_open(session_id)
            if sess.extensions >= self.MAX_EXTENSIONS:
                raise RatingError("no_more_time", "this rating has had all the extra time it can have")
            if self.clock() + 1.0 >= sess.hard_deadline:
                raise RatingError("no_more_time", "this rating has reached pad.rating_max_seconds")
            sess.extensions += 1
            # Like any activity, never past rating_max_seconds from the invitation.
            sess.deadline = max(sess.deadline, min(self.clock() + self.rating_seconds, sess.hard_deadline))
            left = sess.seconds_left(self.clock())
            out = replace(sess)
        self._arm_timer(left)
        return out

    def submit(
        self,
        level: int,
        reasons: list[str] | tuple[str, ...] = (),
        phone: str | None = None,
        *,
        session_id: str | None = None,
        via: str = "touch",
    ) -> dict[str, Any]:
        """Record the citizen's rating; returns the committed record body."""
        if not isinstance(level, int) or isinstance(level, bool) or level not in LEVELS:
            raise RatingError("bad_level", f"level {level!r} is not one of 1..5")
        rs = self.reasons()
        reasons = list(dict.fromkeys(reasons or ()))
        if level in BAD_LEVELS:
            if not reasons:
                raise RatingError("reason_needed", "a rating of ★2 or ★1 needs at least one reason")
            unknown = [c for c in reasons if c not in rs.codes()]
            if unknown:
                raise RatingError("bad_reason", f"reason codes {unknown} are not in list {rs.version}")
        elif reasons:
            raise RatingError("bad_reason", "reasons are only taken for ★2 and ★1")
        if phone:
            if level not in BAD_LEVELS:
                raise RatingError("bad_phone", "a callback number is only taken for ★2 and ★1")
            if not valid_phone(phone):
                raise RatingError("bad_phone", "the callback number is not a mobile or landline number")
        with self._lock:
            sess = self._require_open(session_id)
            self._session = None
            self._cancel_timer()
        body = self._body(sess, "rated")
        body.update(
            level=level,
            level_text=LEVEL_WORDS[level][0],
            via=via,
            reasons=[{"code": c, "zh": next(r["zh"] for r in rs.items if r["code"] == c)} for c in reasons],
            reasons_version=rs.version if level in BAD_LEVELS else None,
            phone=phone or None,
        )
        try:
            rec = self._write(body, "rating.submitted")
        except RatingError:
            raise
        except Exception as e:
            # Nothing was committed: give the session back so the citizen can try again.
            with self._lock:
                given_back = self._session is None
                if given_back:
                    self._session = sess
                    self._arm_timer(sess.seconds_left(self.clock()))
                else:
                    # The next service opened its session meanwhile: this citizen has
                    # gone, so their complete rating is kept and written when the
                    # storage takes it, as an ended session's outcome is.
                    log.warning("rating not written (%s) and superseded; retrying", type(e).__name__)
                    self._unwritten[body["session_id"]] = (body, "rating.submitted")
                    self._arm_retry(self._retry_backoff.failure())
            raise
        log.info("rating recorded at window %s: level %d via %s", self.window, level, via)
        self._notify("rated", rec)
        return rec

    def expire_due(self) -> bool:
        """End the open session if its time has run out, recording the choice so far."""
        with self._lock:
            sess = self._session
            if sess is None or self.clock() < sess.deadline:
                return False
        return self._close_not_rated(sess, "timeout")

    def _close_not_rated(self, sess: RatingSession, why: str) -> bool:
        """End a session the citizen did not submit: record exactly what was chosen."""
        with self._lock:
            if self._session is not None and self._session.session_id == sess.session_id:
                self._session = None
                self._cancel_timer()
        body, kind = self._unsubmitted_outcome(sess, why)
        return self._record_end(body, kind)

    def _unsubmitted_outcome(self, sess: RatingSession, why: str) -> tuple[dict[str, Any], str]:
        """The record for a session that ended without the citizen's submit.

        A level the citizen chose is theirs, whether or not they pressed 提交: a
        complete choice is recorded as the rating, marked auto-submitted; a ★2/★1
        whose required reason is missing stays that level, as ``incomplete`` (the
        platforms cannot take it as a rating, but the 差评 is never lost nor made
        into another level). Nothing chosen: ``not_rated``, never a default."""
        rs = self.reasons()
        level = sess.level if sess.level in LEVELS else None
        reasons = [c for c in sess.reasons if c in rs.codes()] if level in BAD_LEVELS else []
        phone = sess.phone if level in BAD_LEVELS and valid_phone(sess.phone or "") else None
        if level is None:
            body = self._body(sess, "not_rated")
            body.update(level=None, reasons=[], reasons_version=None, phone=None, not_rated_reason=why)
            return body, "rating.not_rated"
        complete = level not in BAD_LEVELS or bool(reasons)
        body = self._body(sess, "rated" if complete else "incomplete")
        body.update(
            level=level,
            level_text=LEVEL_WORDS[level][0],
            via="auto",
            auto_submitted=True,
            ended_by=why,
            reasons=[{"code": c, "zh": next(r["zh"] for r in rs.items if r["code"] == c)} for c in reasons],
            reasons_version=rs.version if level in BAD_LEVELS else None,
            phone=phone,
        )
        if not complete:
            body["missing"] = "reasons"
        return body, "rating.submitted" if complete else "rating.incomplete"

    def _record_end(self, body: dict[str, Any], kind: str) -> bool:
        """Commit an outcome nobody waits for; if the storage fails, keep it and retry."""
        try:
            rec = self._write(body, kind)
        except RatingError:
            self._unwritten.pop(body["session_id"], None)
            return False  # already decided (e.g. rated a moment ago on another thread)
        except Exception as e:
            # Full or failing storage: the outcome stays in memory (and the open
            # session in the ledger, if it got there) and is written when it can be.
            log.warning("rating outcome not written (%s); retrying", type(e).__name__)
            with self._lock:
                self._unwritten[body["session_id"]] = (body, kind)
                self._arm_retry(self._retry_backoff.failure())
            return False
        self._unwritten.pop(body["session_id"], None)
        self._retry_backoff.success()
        log.info("rating session at window %s ended: %s (%s)", self.window, body["outcome"], kind)
        # "not_rated" to listeners whatever was recorded: for the screen (and the
        # voice) the session ended without the citizen's submit, so no thank-you
        # is shown or said; a thank-you here would also cover the next invitation.
        # Written late (a retry) while the next citizen's session is open, it is
        # only "recorded": "not_rated" would send that invitation back to rest.
        with self._lock:
            other_open = self._session is not None and self._session.session_id != body["session_id"]
        self._notify("recorded" if other_open else "not_rated", rec)
        return True

    def retry_unwritten(self) -> int:
        """Write the outcomes the storage refused earlier; returns how many are left."""
        with self._lock:
            pending = list(self._unwritten.values())
        for body, kind in pending:
            self._record_end(body, kind)
        return len(self._unwritten)

    def _arm_retry(self, seconds: float) -> None:
        if self._closed:
            return
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        t = threading.Timer(seconds, self.retry_unwritten)
        t.daemon = True
        t.start()
        self._retry_timer = t

    # -- the open session, kept in the ledger ---------------------------------
    def _persist(self, sess: RatingSession) -> None:
        """Keep the open session and the choice so far in the ledger: a crash
        must still end it as a recorded outcome (recover_open at the next start).
        A storage failure here does not stop the citizen rating."""
        import json

        data = {
            f: getattr(sess, f)
            for f in (
                "session_id",
                "window",
                "staff_id",
                "origin",
                "started_at",
                "invited_at",
                "ticket",
                "case_no",
                "item_code",
                "item_version",
                "level",
                "reasons",
                "phone",
            )
        }
        data["reasons"] = list(sess.reasons)
        try:
            self.ledger.set_meta(keys.PAD_OPEN_SESSION, json.dumps(data, ensure_ascii=False))
        except Exception as e:
            log.warning("open rating session not kept (%s)", type(e).__name__)

    def recover_open(self) -> bool:
        """A session left open by a crash (or a stop mid-rating) ends now, as far as it went."""
        import json

        raw = self.ledger.get_meta(keys.PAD_OPEN_SESSION)
        if not raw:
            return False
        try:
            d = json.loads(raw)
            sess = RatingSession(
                session_id=str(d["session_id"]),
                window=str(d.get("window") or self.window),
                staff_id=d.get("staff_id"),
                origin=str(d.get("origin") or "central"),
                started_at=str(d.get("started_at") or ""),
                invited_at=str(d.get("invited_at") or ""),
                deadline=0.0,
                ticket=d.get("ticket"),
                case_no=d.get("case_no"),
                item_code=d.get("item_code"),
                item_version=d.get("item_version"),
                level=d.get("level") if d.get("level") in LEVELS else None,
                reasons=tuple(str(c) for c in d.get("reasons") or ()),
                phone=d.get("phone") if isinstance(d.get("phone"), str) else None,
            )
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable open rating session in the ledger; cleared")
            self.ledger.set_meta(keys.PAD_OPEN_SESSION, "")
            return False
        if self.outcome_of(sess.session_id) is not None:
            self.ledger.set_meta(keys.PAD_OPEN_SESSION, "")
            return False
        with self._lock:
            if self._session is not None:
                return False
        body, kind = self._unsubmitted_outcome(sess, "restart")
        return self._record_end(body, kind)

    def _require_open(self, session_id: str | None) -> RatingSession:
        sess = self._session
        if sess is None:
            raise RatingError("no_session", "no rating session is open: a rating needs a finished service")
        if session_id is not None and sess.session_id != session_id:
            raise RatingError("no_session", "that rating session is over")
        if self.clock() >= sess.deadline:
            raise RatingError("expired", "the time for this rating has run out")
        return sess

    def _body(self, sess: RatingSession, outcome: str) -> dict[str, Any]:
        return {
            "uuid": str(uuidlib.uuid4()),
            "session_id": sess.session_id,
            "outcome": outcome,
            "channel": CHANNEL,
            "device_id": self.device_id,
            "window": sess.window,
            "staff_id": sess.staff_id,
            "ticket": sess.ticket,
            "case_no": sess.case_no,
            "item_code": sess.item_code,
            "item_version": sess.item_version,
            "session_origin": sess.origin,
            "session_started_at": sess.started_at,
            "invited_at": sess.invited_at,
            "decided_at": wall_now(),
            "region_code": self.cfg.device.region_code or None,
        }

    def _write(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        """Chain, store and queue the record in ONE transaction."""
        try:
            with self.ledger.transaction() as tx:
                n, newest = self._chain_head(tx)
                body["chain_index"] = n
                body["prev_hash"] = newest or GENESIS
                h = record_hash(body)
                tx.execute(
                    "INSERT INTO ratings (uuid, session_id, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?)",
                    (body["uuid"], body["session_id"], _canonical(body), body["prev_hash"], h),
                )
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (keys.RATING_CHAIN_HEAD, f"{n + 1}:{h}"),
                )
                # The open-session record of this session ends in the same commit as its outcome.
                tx.execute(
                    "UPDATE meta SET value = '' WHERE key = ? AND json_valid(value) "
                    "AND json_extract(value, '$.session_id') = ?",
                    (keys.PAD_OPEN_SESSION, body["session_id"]),
                )
                event = dict(body.items())
                event["hash"] = h
                self.ledger.add_event(tx, kind, event)
        except sqlite3.IntegrityError as e:
            if "session_id" in str(e):
                raise RatingError("already_rated", "this service has already been rated (一次一评)") from None
            raise
        if self._wake is not None:
            self._wake()
        return dict(body, hash=h)

    @staticmethod
    def _chain_head(tx: sqlite3.Connection) -> tuple[int, str | None]:
        """(records so far, hash of the newest) for the next record's chain fields.

        The head in meta is written in the same transaction as each record, so
        it is read instead of a COUNT(*) over every rating ever made (a year of
        a busy hall is 100,000s). It is trusted only while it names the newest
        row's hash (a seek on the primary key); a ledger from before the head
        was kept, or one edited by hand, is counted once the slow way.
        """
        newest = tx.execute("SELECT hash FROM ratings ORDER BY seq DESC LIMIT 1").fetchone()
        head = tx.execute("SELECT value FROM meta WHERE key = ?", (keys.RATING_CHAIN_HEAD,)).fetchone()
        # Retention removes the chain's start and keeps its checkpoint: with every
        # record pruned, the newest hash is the checkpoint's.
        cp = tx.execute("SELECT value FROM meta WHERE key = ?", (keys.RATING_CHAIN_CHECKPOINT,)).fetchone()
        pruned, _, cp_hash = str(cp["value"]).partition(":") if cp is not None else ("0", "", "")
        last = newest["hash"] if newest else (cp_hash or None)
        if head is not None:
            count, _, h = str(head["value"]).partition(":")
            if count.isdigit() and (h or None) == last:
                return int(count), h or None
        n: int = tx.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]
        return n + (int(pruned) if pruned.isdigit() else 0), last

    # -- timer ----------------------------------------------------------------
    def _arm_timer(self, seconds: float) -> None:
        self._cancel_timer()
        t = threading.Timer(max(0.0, seconds) + 0.05, self.expire_due)
        t.daemon = True
        t.start()
        self._timer = t

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        """Start watching the window session (without a client the watcher reports offline)."""
        try:
            self.recover_open()
        except Exception as e:
            log.warning("open rating session not recovered (%s)", type(e).__name__)
        if self._watcher is None:
            self._watcher = WindowWatcher(self, lambda: self.client, poll_wait=self.cfg.pad.poll_wait)
            self._watcher.start()

    def close(self) -> None:
        # Nobody hears from a closed service: a long-poll answer arriving after
        # close must not reach a screen that is gone.
        self._listeners.clear()
        self._closed = True
        self._cancel_timer()
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        if self._watcher is not None:
            self._watcher.stop()
            if self._watcher.is_alive():
                # A long-poll in flight ends with its read timeout; the thread is a
                # daemon and reports to nobody once closed, so a short join is enough.
                self._watcher.join(1.0)
            self._watcher = None


def _canonical(body: dict[str, Any]) -> str:
    from kiosk.roles.pad.chain import canonical

    return canonical(body)


class WindowWatcher(threading.Thread):
    """Long-polls the window session and keeps the staff card fresh.

    Every central call is in the three small methods at the bottom, so the
    contract can change in one place. Failures mark the pad offline (the
    clerk's button then works) and back off up to 30 s; the UI never waits.
    """

    CARD_EVERY = 300.0  # s between staff card refreshes when nothing changes

    NO_CLIENT_WAIT = 2.0

    def __init__(
        self,
        service: RatingService,
        client_getter: Callable[[], CentralClient | None],
        *,
        poll_wait: int,
        backoff: Backoff | None = None,
    ):
        super().__init__(name="pad-watcher", daemon=True)
        self.service = service
        self.client_getter = client_getter
        self.poll_wait = poll_wait
        # Jittered: after a central or network outage, the pads of a hall must not reconnect in lockstep.
        self.backoff = backoff or Backoff(base=1.0, cap=30.0, floor=0.2)
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        rev = None
        card_due = 0.0
        staff = None
        first = True
        while not self._stop_event.is_set():
            client = self.client_getter()
            if client is None:  # no token yet: offline, the clerk's button works
                self.service.set_online(False)
                self._stop_event.wait(self.NO_CLIENT_WAIT)
                continue
            try:
                s = self.fetch_session(client, rev)
                self.service.set_online(True)
                self.backoff.success()
                if s.get("staff_id") != staff or time.monotonic() >= card_due:
                    self.refresh_card(client)
                    staff = s.get("staff_id")
                    card_due = time.monotonic() + self.CARD_EVERY
                if self._stop_event.is_set():
                    break
                if s.get("rev") != rev or first:
                    self.service.on_window_session(s, first=first)
                first = False
                rev = s.get("rev")
            except Exception as e:  # any failure: offline until the next answer
                log.warning("window session poll failed: %s", type(e).__name__)
                self.service.set_online(False)
                self._stop_event.wait(self.backoff.failure(getattr(e, "retry_after", None)))

    # -- the central calls --------------------------------------------------------
    # The client is the one of this round: a new token (a new client) takes
    # effect on the next round, never halfway through one.
    def fetch_session(self, client: CentralClient, since: int | None) -> dict[str, Any]:
        from kiosk.sync.validate import check_window_session

        s = client.window_session(self.service.window, wait=self.poll_wait, since=since)
        problems = check_window_session(s)
        if problems:  # a broken answer is treated as no answer: offline, retried with backoff
            raise CentralUnreachable("the central's window session is unusable: " + "; ".join(problems))
        return s

    def refresh_card(self, client: CentralClient) -> None:
        """Fetch the card now (the staff on the window changed); ETags keep it cheap."""
        from kiosk.sync.validate import check_staff_card

        svc = self.service
        try:
            have = svc.cache.get(keys.staff_card(svc.window)) or {}
            f = client.staff_card(svc.window, have.get("etag") if have.get("card") else None)
            card = have.get("card") if f.not_modified else f.data
            if not isinstance(card, dict) or check_staff_card(card):  # keep the card it has
                return
            photo = svc.cache.get(keys.staff_photo(str(card["staff_id"]))) or {}
            p = client.staff_photo(card["staff_id"], photo.get("etag") if photo.get("data_b64") else None)
        except Exception as e:
            log.warning("staff card fetch failed: %s", type(e).__name__)
            return
        svc.store_card(
            card, None if p.not_modified else p.data, etag=f.etag, photo_type=p.content_type, photo_etag=p.etag
        )

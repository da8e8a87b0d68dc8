"""The sync worker: one thread that delivers the outbox and refreshes the cache.

Delivery is at-least-once from here and exactly-once at the central system:
each event travels with the UUID it got when it was written, on every retry,
and leaves the outbox only when the central acknowledged it (``accepted`` or
``duplicate``). A ``rejected`` event goes to dead letters with the reason,
where a technician sees it; nothing is dropped.

When the central cannot be reached the worker backs off exponentially with
full jitter up to a cap, or as long as the server's Retry-After says, all on
the monotonic clock (a Pi's wall clock may jump when NTP arrives). ``wake()``
(a new event was written) cuts the wait short, at most once per second, so
the device resumes within seconds of the central coming back.

The UI reads ``state()`` (thread-safe snapshot) or registers a listener; a
listener runs on this worker's thread, so a Kivy app hands it on with
``Clock.schedule_once``. Nothing here imports Kivy.
"""
from __future__ import annotations

import base64
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Callable

from kiosk import __version__
from kiosk.core.backoff import Backoff
# The cache and meta keys are defined in kiosk.core.keys only; the local names stay
# because this worker is being split into outbox/pulls/heartbeat modules.
from kiosk.core.keys import CENTRAL_CONFIG as CONFIG_KEY
from kiosk.core.keys import CENTRAL_CONFIG_ETAG as CONFIG_ETAG_KEY
from kiosk.core.keys import LAST_SYNC
from kiosk.core.keys import QUEUE_STATUS as QUEUE_KEY
from kiosk.core.keys import staff_card as staff_card_key
from kiosk.core.keys import staff_photo as staff_photo_key
from kiosk.core.time import wall_now
from kiosk.sync.client import CentralAuthError, CentralClient, CentralRejected, CentralUnreachable

log = logging.getLogger("kiosk.sync")

# Status and heartbeat times are read by a person, to the second.
SECONDS = "seconds"

class SyncWorker:
    def __init__(self, ledger, client: CentralClient, cache=None, device_id: str = "",
                 health: Callable[[], dict] | None = None, interval: float = 15.0, batch_size: int = 200,
                 backoff_base: float = 1.0, backoff_cap: float = 60.0, min_retry_gap: float = 1.0,
                 window: str | None = None, pull_queue: bool = False, storage_dir: str | Path | None = None):
        self.ledger = ledger
        self.client = client
        self.cache = cache
        self.device_id = device_id
        self.health = health
        self.interval = interval
        self.batch_size = batch_size
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._backoff = Backoff(backoff_base, backoff_cap, floor=min_retry_gap / 2)
        self.min_retry_gap = min_retry_gap
        self.window = window
        self.pull_queue = pull_queue
        self.storage_dir = Path(storage_dir) if storage_dir else Path(ledger.path).parent
        self.started = time.monotonic()

        self._lock = threading.Lock()          # guards _state and the schedule
        self._cycle_lock = threading.Lock()    # one exchange with the central at a time
        self._wakeup = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[dict], None]] = []
        self._failures = 0
        self._next_try = 0.0                    # monotonic
        self._next_pull = 0.0                   # monotonic
        self._last_attempt = -1e9               # monotonic
        self._wake_pending = False
        self._state = {"status": "starting", "last_success": ledger.get_meta(LAST_SYNC), "last_attempt": None,
                       "pending": 0, "dead": 0, "last_error": None, "next_retry_s": None, "failures": 0}

    # -- control ----------------------------------------------------------
    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wakeup.set()
        if self._thread:
            self._thread.join(timeout)

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """A new event is in the outbox: send it now (or within a second while offline)."""
        with self._lock:
            self._wake_pending = True   # survives a cycle that is running right now
            self._next_try = min(self._next_try, max(time.monotonic(), self._last_attempt + self.min_retry_gap))
        self._wakeup.set()

    def add_listener(self, fn: Callable[[dict], None]) -> None:
        """fn(state) is called on the sync thread after every exchange."""
        self._listeners.append(fn)

    def state(self) -> dict:
        with self._lock:
            s = dict(self._state)
            if s["next_retry_s"] is not None and s["status"] != "online":
                s["next_retry_s"] = max(0.0, self._next_try - time.monotonic())
            return s

    # -- the loop ---------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                due = time.monotonic() >= self._next_try
            if due:
                try:
                    self.run_once(pull=time.monotonic() >= self._next_pull)
                except Exception as e:  # a bug must not silently end delivery: log, back off, go on
                    log.exception("sync cycle failed")
                    self._failed(f"internal error: {e.__class__.__name__}: {e}", None)
            with self._lock:
                wait = max(0.05, self._next_try - time.monotonic())
            self._wakeup.wait(wait)
            self._wakeup.clear()

    def run_once(self, pull: bool = True) -> dict:
        """One exchange: drain the outbox, then (if `pull`) config, staff card, queue, heartbeat.

        Returns a summary; `ok` is False when the central could not be reached
        or refused the token. Never raises for network trouble.
        """
        with self._cycle_lock:
            with self._lock:
                self._last_attempt = time.monotonic()
                self._wake_pending = False
                self._state["last_attempt"] = wall_now(SECONDS)
            summary = {"ok": False, "delivered": 0, "duplicates": 0, "rejected": 0, "pulled": {},
                       "heartbeat": False, "error": None}
            try:
                sent = self._drain(summary)
                if pull:
                    self._pull(summary)
                    try:
                        summary["heartbeat"] = bool(self.client.heartbeat(self._health()))
                    except CentralRejected as e:   # a health field the central dislikes is not an outage
                        log.warning("central refused the heartbeat: %s", e.message)
                        summary["heartbeat"] = f"refused: {e.message}"
                elif not sent:
                    self.client.whoami()   # a cheap probe, so "online" always means the central answered
            except CentralUnreachable as e:
                summary["error"] = str(e)
                self._failed(str(e), e.retry_after)
            except CentralAuthError as e:
                summary["error"] = str(e)
                self._failed(str(e), None, status="auth_error")
            else:
                summary["ok"] = True
                self._succeeded(pull)
            stats = self.ledger.outbox_stats()
            summary["pending"], summary["dead"] = stats["pending"], stats["dead"]
            summary["status"] = self._update(pending=stats["pending"], dead=stats["dead"])["status"]
            return summary

    def _drain(self, summary: dict) -> bool:
        """Send the outbox in batches; True if anything was sent."""
        sent = False
        while True:
            batch = self.ledger.pending_events(limit=self.batch_size)
            if not batch:
                return sent
            sent = True
            try:
                results = self.client.upload_events([ev.wire(self.device_id) for ev in batch])
            except (CentralUnreachable, CentralAuthError) as e:
                self.ledger.note_attempt([ev.uuid for ev in batch], str(e)[:300])
                raise
            except CentralRejected as e:
                # The whole batch refused (e.g. too large): nothing is lost, try smaller batches.
                self.ledger.note_attempt([ev.uuid for ev in batch], str(e)[:300])
                if self.batch_size > 1:
                    self.batch_size = max(1, self.batch_size // 2)
                    continue
                raise CentralUnreachable(str(e), e.retry_after)
            answers = {r.get("id"): r for r in results if isinstance(r, dict)}
            delivered, unanswered = [], []
            for ev in batch:
                r = answers.get(ev.uuid)
                status = r.get("status") if r else None
                if status in ("accepted", "duplicate"):
                    delivered.append(ev.uuid)
                    summary["delivered" if status == "accepted" else "duplicates"] += 1
                elif status == "rejected":
                    reason = str(r.get("reason") or "rejected without a reason")[:500]
                    log.warning("central rejected event %s (%s): %s", ev.uuid, ev.kind, reason)
                    self.ledger.mark_dead(ev.uuid, reason)
                    summary["rejected"] += 1
                else:
                    unanswered.append(ev.uuid)
            self.ledger.mark_delivered(delivered)
            if unanswered:
                # Kept pending: a later retry with the same UUIDs settles them.
                self.ledger.note_attempt(unanswered, "no answer for this event in the batch reply")
                raise CentralUnreachable(f"central left {len(unanswered)} events unanswered")
            self._update(pending=self.ledger.outbox_stats()["pending"])
            if len(batch) < self.batch_size:
                return sent

    def _pull(self, summary: dict) -> None:
        if self.cache is None:
            return
        pulled = summary["pulled"]
        try:
            f = self.client.get_config(self.cache.get(CONFIG_ETAG_KEY) if self.cache.get(CONFIG_KEY) else None)
        except CentralRejected as e:
            pulled["config"] = f"refused: {e.message}"
        else:
            if not f.not_modified:
                self.cache.set(CONFIG_KEY, f.data)
                self.cache.set(CONFIG_ETAG_KEY, f.etag)
            pulled["config"] = "not_modified" if f.not_modified else "updated"
        if self.window:
            try:
                pulled["staff"] = self._pull_staff()
            except CentralRejected as e:   # e.g. no staff on this window yet: not a connectivity problem
                pulled["staff"] = f"refused: {e.message}"
        if self.pull_queue:
            try:
                self.cache.set(QUEUE_KEY, self.client.queue_status())
                pulled["queue"] = "updated"
            except CentralRejected as e:
                pulled["queue"] = f"refused: {e.message}"

    def _pull_staff(self) -> str:
        key = staff_card_key(self.window)
        have = self.cache.get(key) or {}
        f = self.client.staff_card(self.window, have.get("etag"))
        card = have.get("card") if f.not_modified else f.data
        if not f.not_modified:
            self.cache.set(key, {"card": card, "etag": f.etag, "fetched_at": wall_now(SECONDS)})
        photo_key = staff_photo_key(card["staff_id"])
        photo = self.cache.get(photo_key) or {}
        p = self.client.staff_photo(card["staff_id"], photo.get("etag"))
        if not p.not_modified:
            self.cache.set(photo_key, {"content_type": p.content_type, "etag": p.etag,
                                       "data_b64": base64.b64encode(p.data).decode("ascii")})
        return "not_modified" if f.not_modified and p.not_modified else "updated"

    def _health(self) -> dict:
        stats = self.ledger.outbox_stats()
        try:
            free = shutil.disk_usage(self.storage_dir).free
        except OSError:
            free = None
        h = {"device_id": self.device_id, "version": __version__,
             "uptime_s": round(time.monotonic() - self.started, 1), "system_uptime_s": _system_uptime(),
             "outbox": {"pending": stats["pending"], "dead": stats["dead"],
                        "oldest_pending_age_s": stats["oldest_pending_age_s"]},
             "last_sync": self.ledger.get_meta(LAST_SYNC), "disk_free_bytes": free,
             "printer": "unknown", "paper": "unknown", "sent_at": wall_now(SECONDS)}
        if self.health:
            try:
                h.update(self.health())
            except Exception as e:  # a broken probe must not stop the heartbeat
                h["health_error"] = f"{e.__class__.__name__}: {e}"
        return h

    # -- bookkeeping ------------------------------------------------------
    def _succeeded(self, pulled: bool) -> None:
        now = wall_now(SECONDS)
        self.ledger.set_meta(LAST_SYNC, now)
        with self._lock:
            self._failures = 0
            self._backoff.success()
            t = time.monotonic()
            self._next_try = t + self.interval
            if pulled:
                self._next_pull = t + self.interval
            if self._wake_pending:   # an event arrived during this cycle: go again at once
                self._next_try = t
            self._state.update(status="online", last_success=now, last_error=None, next_retry_s=None, failures=0)

    def _failed(self, error: str, retry_after: float | None, status: str = "offline") -> None:
        with self._lock:
            delay = self._backoff.failure(retry_after)
            self._failures = self._backoff.failures
            if status == "auth_error":
                delay = self.backoff_cap   # retrying will not fix a token; still look now and then
            if self._wake_pending and status == "offline" and retry_after is None:
                delay = min(delay, self.min_retry_gap)
            self._next_try = time.monotonic() + delay
            self._next_pull = 0.0   # after a failure, pull again with the next success
            self._state.update(status=status, last_error=error, next_retry_s=delay, failures=self._failures)
        log.info("central unavailable (%s); next try in %.1f s", error, delay)

    def _update(self, **changes) -> dict:
        with self._lock:
            self._state.update(changes)
            snap = dict(self._state)
        for fn in list(self._listeners):
            try:
                fn(snap)
            except Exception:
                log.exception("sync state listener failed")
        return snap


def _system_uptime() -> float | None:
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None

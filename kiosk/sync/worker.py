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

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from kiosk.core.backoff import Backoff
from kiosk.core.cache import Cache
from kiosk.core.keys import LAST_SYNC
from kiosk.core.ledger import Ledger
from kiosk.core.time import wall_now
from kiosk.sync.client import CentralAuthError, CentralBusy, CentralClient, CentralRejected, CentralUnreachable
from kiosk.sync.heartbeat import health_report
from kiosk.sync.outbox import OutboxUploader, UploadResult
from kiosk.sync.pulls import Pulls
from kiosk.sync.status import SyncStatus

log = logging.getLogger("kiosk.sync")

# Status and heartbeat times are read by a person, to the second.
SECONDS = "seconds"


class SyncWorker:
    def __init__(
        self,
        ledger: Ledger,
        client: CentralClient,
        cache: Cache | None = None,
        device_id: str = "",
        health: Callable[[], dict[str, Any]] | None = None,
        interval: float = 15.0,
        batch_size: int = 200,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        min_retry_gap: float = 1.0,
        window: str | None = None,
        pull_queue: bool = False,
        storage_dir: str | Path | None = None,
    ):
        self.ledger = ledger
        self.client = client
        self.cache = cache
        self.device_id = device_id
        self.health = health
        self.interval = interval
        self.uploader = OutboxUploader(
            ledger,
            client,
            device_id,
            batch_size,
            on_progress=lambda: self._update(pending=ledger.outbox_stats()["pending"]),
        )
        self.pulls = Pulls(cache, client, window=window, queue=pull_queue)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._backoff = Backoff(backoff_base, backoff_cap, floor=min_retry_gap / 2)
        self.min_retry_gap = min_retry_gap
        self.window = window
        self.pull_queue = pull_queue
        self.storage_dir = Path(storage_dir) if storage_dir else Path(ledger.path).parent
        self.started = time.monotonic()

        self._lock = threading.Lock()  # guards _state and the schedule
        self._cycle_lock = threading.Lock()  # one exchange with the central at a time
        self._wakeup = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._failures = 0
        self._next_try = 0.0  # monotonic
        self._next_pull = 0.0  # monotonic
        self._last_attempt = -1e9  # monotonic
        self._wake_pending = False
        self._status = SyncStatus(last_success=ledger.get_meta(LAST_SYNC))

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
            self._wake_pending = True  # survives a cycle that is running right now
            self._next_try = min(self._next_try, max(time.monotonic(), self._last_attempt + self.min_retry_gap))
        self._wakeup.set()

    def add_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        """fn(state) is called on the sync thread after every exchange."""
        self._listeners.append(fn)

    @property
    def client(self) -> CentralClient:
        return self._client

    @client.setter
    def client(self, client: CentralClient) -> None:
        # A technician's new token means a new client: upload and download both use it.
        self._client = client
        if hasattr(self, "uploader"):
            self.uploader.client = client
            self.pulls.client = client

    @property
    def batch_size(self) -> int:
        return self.uploader.batch_size

    def status(self) -> SyncStatus:
        """A thread-safe typed snapshot (next_retry_s counts down)."""
        with self._lock:
            st = replace(self._status)
            if st.next_retry_s is not None and st.status != "online":
                st.next_retry_s = max(0.0, self._next_try - time.monotonic())
            return st

    def state(self) -> dict[str, Any]:
        """status() as a plain dict, for listeners and the technician's JSON."""
        return self.status().as_dict()

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

    def run_once(self, pull: bool = True) -> dict[str, Any]:
        """One exchange: drain the outbox, then (if `pull`) config, staff card, queue, heartbeat.

        Returns a summary; `ok` is False when the central could not be reached
        or refused the token. Never raises for network trouble.
        """
        with self._cycle_lock:
            with self._lock:
                self._last_attempt = time.monotonic()
                self._wake_pending = False
                self._status.last_attempt = wall_now(SECONDS)
            summary = {
                "ok": False,
                "delivered": 0,
                "duplicates": 0,
                "rejected": 0,
                "pulled": {},
                "heartbeat": False,
                "error": None,
            }
            stage = "upload"
            up = UploadResult()
            try:
                try:
                    self.uploader.upload(up)
                finally:  # what was delivered before a failure counts
                    summary.update(delivered=up.delivered, duplicates=up.duplicates, rejected=up.rejected)
                stage = "download"
                if pull:
                    summary["pulled"] = self.pulls.pull()
                    try:
                        summary["heartbeat"] = bool(self.client.heartbeat(self._health()))
                    except CentralRejected as e:  # a health field the central dislikes is not an outage
                        log.warning("central refused the heartbeat: %s", e.message)
                        summary["heartbeat"] = f"refused: {e.message}"
                elif not up.sent:
                    self.client.whoami()  # a cheap probe, so "online" always means the central answered
            except CentralBusy as e:
                # The central answered and asked for a pause (429): not an outage. Wait
                # as long as it said (the backoff takes Retry-After), show "busy".
                summary["error"] = str(e)
                self._failed(str(e), e.retry_after, status="busy", stage=stage)
            except CentralUnreachable as e:
                summary["error"] = str(e)
                self._failed(str(e), e.retry_after, stage=stage)
            except CentralAuthError as e:
                summary["error"] = str(e)
                self._failed(str(e), None, status="auth_error", stage=stage)
            else:
                summary["ok"] = True
                self._succeeded(pull)
            stats = self.ledger.outbox_stats()
            summary["pending"], summary["dead"] = stats["pending"], stats["dead"]
            summary["status"] = self._update(pending=stats["pending"], dead=stats["dead"])["status"]
            return summary

    def _health(self) -> dict[str, Any]:
        h = health_report(self.ledger, self.device_id, self.started, self.storage_dir, self.health)
        # What the central sent and this device refused (kiosk/sync/validate.py): the
        # central's operator sees which field to fix, without visiting the hall.
        h["central_data"] = {"rejected": self.pulls.rejected()}
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
            if self._wake_pending:  # an event arrived during this cycle: go again at once
                self._next_try = t
            self._set(
                status="online",
                last_success=now,
                last_error=None,
                upload_error=None,
                download_error=None,
                next_retry_s=None,
                failures=0,
            )

    def _failed(self, error: str, retry_after: float | None, status: str = "offline", stage: str = "upload") -> None:
        with self._lock:
            delay = self._backoff.failure(retry_after)
            self._failures = self._backoff.failures
            if status == "auth_error":
                delay = self.backoff_cap  # retrying will not fix a token; still look now and then
            if self._wake_pending and status == "offline" and retry_after is None:
                delay = min(delay, self.min_retry_gap)
            self._next_try = time.monotonic() + delay
            self._next_pull = 0.0  # after a failure, pull again with the next success
            self._set(
                status=status,
                last_error=error,
                next_retry_s=delay,
                failures=self._failures,
                **{f"{stage}_error": error},
            )
        log.info("central unavailable (%s); next try in %.1f s", error, delay)

    def _set(self, **changes: Any) -> None:
        for k, v in changes.items():
            setattr(self._status, k, v)

    def _update(self, **changes: Any) -> dict[str, Any]:
        with self._lock:
            self._set(**changes)
            snap = self._status.as_dict()
        for fn in list(self._listeners):
            try:
                fn(snap)
            except Exception:
                log.exception("sync state listener failed")
        return snap

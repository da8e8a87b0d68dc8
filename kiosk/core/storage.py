"""Bounded storage: retention of delivered records, and a stop before the disk is full.

A device in a busy hall writes about a million outbox events a year onto an
SD card. What the central system has acknowledged is kept for
``storage.retention_days`` (the technician's window for questions and the
ratings chain's recent proof) and then removed in small batches on its own
thread, between the citizens' writes. Undelivered records stay whatever
their age: a device offline for weeks keeps everything it has not handed
over (kiosk/core/ledger.py ``prune_batch`` says what exactly is kept).

SQLite fails a commit when the disk is full, and a failed commit after a
number was shown would be a promise broken. The guard reads the free space
of the storage folder (statvfs, a few microseconds) and services refuse new
work with a plain message below ``storage.min_free_mb``, while there is still
room for the commits already under way.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kiosk.core import keys
from kiosk.core.ledger import Ledger, PruneResult

log = logging.getLogger("kiosk.storage")

RETENTION_EVERY_S = 6 * 3600.0  # a pass every 6 hours: a day's delivered events, a few batches
RETENTION_FIRST_S = 300.0  # the first pass after start, once the device has settled
BATCH_PAUSE_S = 0.05  # between batches: a citizen's write waits one batch at most
DISK_RECHECK_S = 5.0  # free space is read again at most this often


class DiskGuard:
    """Whether the storage folder has room for new work; cheap to ask from a service."""

    def __init__(self, folder: str | Path, min_free_mb: int, statvfs: Callable[[str], os.statvfs_result] = os.statvfs):
        self.folder = str(folder)
        self.min_free_bytes = int(min_free_mb) * 1024 * 1024
        self._statvfs = statvfs
        self._lock = threading.Lock()
        self._checked_at = -DISK_RECHECK_S
        self._free: int | None = None
        self._low = False

    def free_bytes(self) -> int | None:
        self._refresh()
        return self._free

    def low(self) -> bool:
        """True when new tickets, ratings and audits must be refused (below the threshold)."""
        self._refresh()
        return self._low

    def refresh_now(self) -> None:
        with self._lock:
            self._checked_at = -DISK_RECHECK_S
        self._refresh()

    def _refresh(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._checked_at < DISK_RECHECK_S:
                return
            self._checked_at = now
            try:
                st = self._statvfs(self.folder)
                free: int | None = st.f_bavail * st.f_frsize
            except OSError as e:
                log.warning("cannot read free space of %s: %s", self.folder, e.strerror)
                free = None  # unknown is not "full": SQLite's own error still protects the commit
            was = self._low
            self._free = free
            self._low = free is not None and free < self.min_free_bytes
        if self._low and not was:
            log.error(
                "storage %s: %s MB free, below storage.min_free_mb (%d): new tickets and ratings are refused "
                "until space is freed (old logs: journalctl --vacuum-size=50M)",
                self.folder,
                (free or 0) // (1024 * 1024),
                self.min_free_bytes // (1024 * 1024),
            )
        elif was and not self._low:
            log.warning("storage %s: free space back above storage.min_free_mb", self.folder)

    def report(self) -> dict[str, object]:
        """For the heartbeat and the metrics."""
        return {"low": self.low(), "free_bytes": self._free, "min_free_bytes": self.min_free_bytes}


def prune_pass(
    ledger: Ledger,
    retention_days: int,
    now: datetime | None = None,
    pause_s: float = BATCH_PAUSE_S,
    stop: threading.Event | None = None,
) -> PruneResult:
    """Prune everything delivered and older than the retention, batch by batch; the totals are kept in meta."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days)
    total = PruneResult()
    while stop is None or not stop.is_set():
        got = ledger.prune_batch(cutoff)
        total.outbox += got.outbox
        total.tickets += got.tickets
        total.ticket_requests += got.ticket_requests
        total.ratings += got.ratings
        if got.total == 0:
            break
        if pause_s:
            time.sleep(pause_s)
    ledger.set_meta(
        keys.LEDGER_PRUNED,
        json.dumps(
            {
                "at": now.isoformat(timespec="seconds"),
                "cutoff": cutoff.isoformat(timespec="seconds"),
                "outbox": total.outbox,
                "tickets": total.tickets,
                "ticket_requests": total.ticket_requests,
                "ratings": total.ratings,
            }
        ),
    )
    if total.total:
        log.info(
            "retention: removed %d delivered events, %d tickets, %d ticket requests, %d ratings older than %s",
            total.outbox,
            total.tickets,
            total.ticket_requests,
            total.ratings,
            cutoff.date().isoformat(),
        )
    return total


class RetentionJob:
    """Runs prune_pass on its own thread: first a few minutes after start, then every few hours."""

    def __init__(
        self,
        ledger: Ledger,
        retention_days: int,
        first_s: float = RETENTION_FIRST_S,
        every_s: float = RETENTION_EVERY_S,
    ):
        self.ledger = ledger
        self.retention_days = retention_days
        self.first_s = first_s
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        wait = self.first_s
        while not self._stop.wait(wait):
            try:
                prune_pass(self.ledger, self.retention_days, stop=self._stop)
            except Exception:  # a locked or full disk: try again next time, the device goes on
                log.exception("retention pass failed")
            finally:
                self.ledger.close()  # this thread's connection: no snapshot held between passes
            self.passes += 1
            wait = self.every_s

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

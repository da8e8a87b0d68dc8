"""Going offline fast when the central hangs, and back online when it answers.

A central that accepts the connection and never answers costs each call its
whole timeout: every citizen at the dispenser would wait online_timeout for
an offline number, every lookup its full timeout for the cached result. After
``threshold`` calls in a row get no answer (any thread's: the sync worker's,
the dispenser's, the lookup's), the breaker opens: calls a citizen waits on
fail at once, as if the network were down, and the service takes its offline
path (offline numbering, the cached case). A probe thread asks the central
every ``probe_every`` seconds; the first answer (or any other call answered
meanwhile) closes the breaker.

What a citizen call that was never sent leaves behind is the same as a
timeout's: the dispenser reports the request id abandoned with its offline
ticket, so the central never holds a number nobody has (issue 15).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("kiosk.sync.breaker")


class Breaker:
    def __init__(self, threshold: int = 3, probe_every: float = 5.0, probe: Callable[[], object] | None = None):
        self.threshold = max(1, threshold)
        self.probe_every = probe_every
        self.probe = probe  # one short call; raising means "still no answer"
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.probes = 0

    @property
    def open(self) -> bool:
        return self._opened_at is not None

    @property
    def failures(self) -> int:
        return self._failures

    def state(self) -> dict[str, object]:
        """For the heartbeat and the technician."""
        opened = self._opened_at
        return {
            "offline": opened is not None,
            "failures": self._failures,
            "offline_for_s": round(time.monotonic() - opened, 1) if opened is not None else None,
        }

    def success(self) -> None:
        with self._lock:
            was = self._opened_at
            self._failures = 0
            self._opened_at = None
        if was is not None:
            log.warning("central answers again after %.0f s: online", time.monotonic() - was)

    def failure(self, why: str) -> None:
        start = False
        with self._lock:
            self._failures += 1
            if self._opened_at is None and self._failures >= self.threshold:
                self._opened_at = time.monotonic()
                start = self._thread is None or not self._thread.is_alive()
                if start:
                    self._thread = threading.Thread(target=self._run, name="central-probe", daemon=True)
        if start and self._thread is not None:
            log.warning(
                "central: %d calls in a row without an answer (%s): offline at once; probing every %g s",
                self.threshold,
                why,
                self.probe_every,
            )
            self._thread.start()

    def _run(self) -> None:
        while self.open and not self._stop.wait(self.probe_every):
            if self.probe is None:
                continue
            self.probes += 1
            try:
                self.probe()
            except Exception:  # still no answer; the probe's own failure() keeps it open
                continue
            self.success()

    def close(self) -> None:
        self._stop.set()

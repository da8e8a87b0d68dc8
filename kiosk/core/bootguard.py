"""No boot loop: after a few crashed starts, stay up out of service instead.

systemd restarts the kiosk when it crashes. If it crashes *every* time it
starts (a broken config change, a damaged font, a printer driver that throws
at start), restarting forever helps nobody: the panel flickers, the journal
fills up and the citizen sees garbage. So each start is written down in a
small JSON file in the storage folder *before* anything else happens:

* ``begin()`` records the start as "not yet healthy" and looks at the earlier
  starts: if MAX_CRASHED of them ended without becoming healthy within
  WINDOW_S, it returns the reason and the app shows the out-of-service screen
  (the roles are not started at all, so whatever crashed does not run again).
* ``mark_healthy()`` — called once the app has been up HEALTHY_AFTER_S — clears
  the record: a device that ran fine and crashed once a week never trips.
* ``clean_exit()`` — a stop by systemd or a restart asked for by a technician
  — is not a crash.
* ``record_error(exc)`` keeps the exception's type and first line for the
  technician (scrubbed: it may quote data).

The ledger and the cache are never touched: data stays intact and the device
picks up where it was once a technician fixes the cause and resets the guard
(service screen "restart", or ``kiosk boot-guard --reset``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.core import keys
from kiosk.core.privacy import scrub

if TYPE_CHECKING:
    from kiosk.core.config import Config

log = logging.getLogger("kiosk.bootguard")

MAX_CRASHED = 3  # crashed starts before the device goes out of service
WINDOW_S = 15 * 60  # ... counted within this long
HEALTHY_AFTER_S = 120  # a start that stays up this long clears the count

# Exit code for "restart me": systemd's Restart=on-failure restarts on it, and
# the guard does not count it as a crash. 75 is EX_TEMPFAIL.
RESTART_EXIT_CODE = 75


@dataclass
class Tripped:
    """Why the device is out of service."""

    crashed_starts: int
    window_s: int
    last_error: str

    def text(self) -> str:
        return (
            f"{self.crashed_starts} starts in a row ended in a crash within {self.window_s // 60} min. "
            f"Last error: {self.last_error or 'none recorded (killed, or crashed in native code)'}"
        )


@dataclass
class Unusable:
    """Why the device cannot even start its roles: its config file or its storage.

    Shown on the out-of-service screen at once (no crash to count): exiting
    instead would be a silent restart loop under systemd, a black panel, and
    in the end systemd's start limit."""

    what: str  # "device config" or "storage"
    problems: list[str]  # FILE: key: what (fix)
    hint: str = (
        "Fix the file or folder named above: the device checks it every few seconds and "
        "restarts into service by itself (or run `systemctl restart kiosk`). Data is kept."
    )

    def text(self) -> str:
        shown = self.problems[:6]
        more = len(self.problems) - len(shown)
        return f"{self.what} unusable:\n" + "\n".join(shown) + (f"\n... and {more} more" if more > 0 else "")


class BootGuard:
    def __init__(
        self,
        storage_dir: str | os.PathLike[str],
        *,
        max_crashed: int = MAX_CRASHED,
        window_s: float = WINDOW_S,
        healthy_after_s: float = HEALTHY_AFTER_S,
        clock: Callable[[], float] = time.time,
    ):
        self.path = Path(storage_dir) / keys.BOOT_GUARD_FILE
        self.max_crashed = max_crashed
        self.window_s = window_s
        self.healthy_after_s = healthy_after_s
        self.clock = clock
        self.tripped: Tripped | None = None
        self._start: float | None = None

    # -- the file -------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("starts"), list):
                return data
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as e:
            log.warning("boot guard file %s unreadable (%s); starting a new one", self.path, e)
        return {"starts": [], "last_error": ""}

    def _write(self, data: dict[str, Any]) -> None:
        # Write-then-rename: a power cut leaves the old file or the new one, never half.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as e:
            # Without the file the guard cannot count; systemd's StartLimitBurst
            # is the second line and stops a loop by itself.
            log.error("boot guard cannot write %s: %s", self.path, e.strerror)

    # -- the start's life ---------------------------------------------------------
    def begin(self) -> Tripped | None:
        """Record this start; return why to stay out of service, or None to start normally."""
        now = self.clock()
        data = self._read()
        # Every start still listed never became healthy nor stopped cleanly: a crash.
        # A time in the future means the clock was set back (no RTC): keep it.
        crashed = [t for t in data["starts"] if isinstance(t, (int, float)) and now - t < self.window_s]
        self._start = now
        data["starts"] = [*crashed, now]
        self._write(data)
        if len(crashed) >= self.max_crashed:
            self.tripped = Tripped(len(crashed), int(self.window_s), data.get("last_error", ""))
            log.error("out of service: %s", self.tripped.text())
        return self.tripped

    def _drop_this_start(self, clear_error: bool) -> None:
        data = self._read()
        data["starts"] = [t for t in data["starts"] if t != self._start]
        if clear_error:
            data["last_error"] = ""
        self._write(data)

    def mark_healthy(self) -> None:
        """The app has been up long enough: forget the earlier crashed starts."""
        if self.tripped:
            return  # staying up out of service proves nothing
        self._write({"starts": [], "last_error": ""})
        log.info("start is healthy; crash count cleared")

    def clean_exit(self) -> None:
        """A deliberate stop or restart: this start did not crash."""
        if self._start is not None:
            self._drop_this_start(clear_error=False)

    def record_error(self, exc: BaseException) -> None:
        first = (str(exc).splitlines() or [""])[0][:300]
        data = self._read()
        # codes=False as for log lines: a device path or a config key stays readable.
        data["last_error"] = scrub(f"{type(exc).__name__}: {first}" if first else type(exc).__name__, codes=False)
        self._write(data)

    def reset(self) -> None:
        """A technician fixed the cause: the next start starts normally."""
        self.tripped = None
        self._write({"starts": [], "last_error": ""})

    def state(self) -> dict[str, Any]:
        data = self._read()
        now = self.clock()
        recent = [t for t in data["starts"] if isinstance(t, (int, float)) and now - t < self.window_s]
        return {
            "recent_unhealthy_starts": len(recent),
            "max_crashed": self.max_crashed,
            "window_s": int(self.window_s),
            "last_error": data.get("last_error", ""),
            "tripped": self.tripped.text() if self.tripped else None,
        }


class OutOfServiceRuntime:
    """Stands in for the Runtime while out of service: no roles, no workers.

    The ledger is opened read-only-in-spirit when it can be (the service
    screen shows the outbox), but a ledger that fails to open is exactly one
    of the things that may have crashed the earlier starts, so that is optional.
    It has the Runtime's attributes, with every role bundle None.
    """

    dispenser = None
    lookup = None
    pad = None
    client: Any = None
    sync: Any = None
    cache: Any = None
    central_problem = "out of service"
    demo = False
    printer = None
    scanner = None
    pad_leds = None
    button_banks: tuple[tuple[str, Any], ...] = ()
    demo_scans: tuple[str, ...] = ()

    def __init__(
        self, cfg: Config, tripped: Tripped | Unusable, guard: BootGuard | None = None, *, open_ledger: bool = True
    ):
        self.cfg = cfg
        self.out_of_service = tripped
        self.boot_guard = guard
        self.started_at = time.monotonic()
        self.ledger = None
        self.selftest_result = None
        self.health_parts: dict[str, Callable[[], object]] = {}
        # Parts the run path adds (kiosk/app.py: the config pull that can heal the
        # device): started by start(), stopped newest first by stop().
        self._parts: list[tuple[Callable[[], None] | None, Callable[[], None] | None]] = []
        # Set (from the sync thread) when a new, valid central config arrived: the
        # app restarts into service, since a bad config may have been the cause.
        self.healed = threading.Event()
        if not open_ledger:  # the storage is the problem: leave it as it is
            return
        try:
            from kiosk.core.ledger import Ledger

            self.ledger = Ledger(Path(cfg.storage.dir) / keys.LEDGER_FILE)
        except Exception as e:
            log.error("ledger not available out of service: %s", type(e).__name__)

    @property
    def roles(self) -> list[str]:
        return []

    def uptime_s(self) -> float:
        return time.monotonic() - self.started_at

    def add_part(self, start: Callable[[], None] | None, stop: Callable[[], None] | None) -> None:
        self._parts.append((start, stop))

    def start(self, only: Iterable[str] | None = None, without: Iterable[str] = ()) -> None:
        for start, _ in self._parts:
            if start is not None:
                try:
                    start()
                except Exception:  # out of service already: a part that fails to start stays off
                    log.exception("out-of-service part failed to start")

    def stop(self) -> None:
        for _, stop in reversed(self._parts):
            if stop is not None:
                try:
                    stop()
                except Exception:
                    log.exception("stopping an out-of-service part failed")
        self._parts.clear()
        if self.ledger is not None:
            try:
                self.ledger.close()
            except Exception:
                log.exception("closing the ledger failed")

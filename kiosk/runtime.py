"""The device's non-UI half, typed: core parts plus one optional bundle per configured role.

``kiosk/wiring.py`` builds it from a Config (the only module of kiosk/ that
knows devices/). Building opens the ledger and the cache and makes the
services and device objects, but starts nothing: no thread, no serial port,
no GPIO pin. ``start()`` starts every part (or only the ones a command
needs), ``stop()`` stops them newest first and joins their threads, then
closes the cache and the ledger. The Kivy app and every command that looks
at the device (status, sync, selftest, screenshots) build the same Runtime,
so what a command checks is what the app runs with. Nothing here imports
Kivy or a device module.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kiosk import __version__
from kiosk.core.cache import Cache
from kiosk.core.config import Config
from kiosk.core.handoff import Handoff
from kiosk.core.ledger import Ledger

if TYPE_CHECKING:
    from kiosk.core.bootguard import BootGuard, Tripped
    from kiosk.core.storage import DiskGuard
    from kiosk.core.voice import Voice
    from kiosk.roles.dispenser.persons import IdCardDesk
    from kiosk.roles.dispenser.service import TicketService
    from kiosk.roles.lookup.service import LookupService
    from kiosk.roles.pad.keypad import PadKeys
    from kiosk.roles.pad.service import RatingService
    from kiosk.sync.client import CentralClient
    from kiosk.sync.worker import SyncWorker

log = logging.getLogger("kiosk.runtime")

# The parts a command may ask start() for; the app starts them all.
SYNC = "sync"
# The parts that own a device: what `kiosk selftest` starts to check them.
DEVICE_PARTS = ("printer", "scanner", "dispenser buttons", "pad keys")


@dataclass
class Part:
    """One thing with a lifetime: how to start it and how to stop it (joining its thread)."""

    name: str
    start: Callable[[], object] | None = None
    stop: Callable[[], object] | None = None
    started: bool = False


@dataclass
class DispenserRole:
    """rt.dispenser: the ticket service, its printer worker and, once started, its buttons."""

    service: TicketService
    printer: Any  # devices.printer.PrinterWorker, through wiring
    buttons: Any = None  # devices.buttons.ButtonBank while started, if pins are configured
    pin_factory: Any = None
    # dispenser.booking_scanner on a device without the lookup role: its scanner and the hub
    # (kiosk.roles.lookup.service.ScanHub) the dispenser screen listens to for booking QR codes.
    scanner: Any = None
    scans: Any = None
    presses: Handoff | None = None  # the buttons' presses, off gpiozero's thread
    idcard: IdCardDesk | None = None  # 刷身份证取号: the desk the ID card reader feeds; None: no reader
    idcard_reader: Any = None  # devices.idcard SerialIdCardReader / SimIdCardReader, through wiring


@dataclass
class LookupRole:
    """rt.lookup: the case lookup service and its scanner (the wedge is fed by the screen)."""

    service: LookupService
    scanner: Any = None  # serial / sim scanner or the wedge assembler; None: keypad only
    wedge: Any = None  # the same object when the scanner is a keyboard wedge


@dataclass
class PadRole:
    """rt.pad: the rating service and, once started, its GPIO keys and LEDs."""

    service: RatingService
    keys: PadKeys | None = None
    buttons: Any = None
    leds: Any = None
    pin_factory: Any = None
    presses: Handoff | None = None  # the keys' presses, off gpiozero's thread


@dataclass
class Runtime:
    cfg: Config
    ledger: Ledger
    cache: Cache
    client: CentralClient | None = None
    sync: SyncWorker | None = None
    central_problem: str | None = None  # why there is no client, for technicians
    demo: bool = False
    dispenser: DispenserRole | None = None
    lookup: LookupRole | None = None
    pad: PadRole | None = None
    boot_guard: BootGuard | None = None
    out_of_service: Tripped | None = None  # set only on the boot guard's stand-in
    disk: DiskGuard | None = None  # free space of storage.dir: below storage.min_free_mb new tickets are refused
    voice: Voice | None = None  # spoken prompts (kiosk/core/voice.py); None: silent
    demo_scans: list[str] = field(default_factory=list)  # `kiosk demo`: sample receipt payloads to scan
    # `kiosk demo`: the receipt QR of the newest case made on the bench page (reads its store; blocking)
    demo_newest_case: Callable[[], str | None] | None = None
    selftest_result: dict[str, Any] | None = None  # set by the start-up self-check; sent with the heartbeat
    health_parts: dict[str, Callable[[], Any]] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)
    _parts: list[Part] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self.health_parts.setdefault("selftest", lambda: self.selftest_result)

    # -- facts --------------------------------------------------------------------
    @property
    def roles(self) -> list[str]:
        return list(self.cfg.device.roles)

    def uptime_s(self) -> float:
        return time.monotonic() - self.started_at

    def health(self) -> dict[str, Any]:
        """Device health for the heartbeat; each role adds its part (printer, scanner ...)."""
        out: dict[str, Any] = {
            "version": __version__,
            "device_id": self.cfg.device.id,
            "roles": self.roles,
            "uptime_s": round(self.uptime_s(), 1),
        }
        for name, fn in list(self.health_parts.items()):
            try:
                out[name] = fn()
            except Exception as e:  # a broken part must not stop the heartbeat
                out[name] = {"error": type(e).__name__}
        return out

    def event_written(self) -> None:
        """Services call this after committing an outbox event: deliver it now."""
        if self.sync is not None:
            self.sync.wake()

    # The device parts technicians test, whichever role holds them (None: not on this device,
    # or not started).
    @property
    def printer(self) -> Any:
        return self.dispenser.printer if self.dispenser else None

    @property
    def scanner(self) -> Any:
        if self.lookup is not None:
            return self.lookup.scanner
        return self.dispenser.scanner if self.dispenser else None

    @property
    def button_banks(self) -> list[tuple[str, Any]]:
        """(label, bank) of every running button bank: the dispenser's buttons, the pad's keys."""
        banks = [
            ("dispenser button", self.dispenser.buttons if self.dispenser else None),
            ("pad key", self.pad.buttons if self.pad else None),
        ]
        return [(label, bank) for label, bank in banks if bank is not None]

    @property
    def pad_leds(self) -> Any:
        return self.pad.leds if self.pad else None

    # -- lifetime -----------------------------------------------------------------
    def add_part(
        self, name: str, start: Callable[[], object] | None = None, stop: Callable[[], object] | None = None
    ) -> None:
        """Register a part; wiring adds them in build order, stop() goes newest first."""
        self._parts.append(Part(name, start, stop))

    @property
    def part_names(self) -> list[str]:
        return [p.name for p in self._parts]

    def start(self, only: Iterable[str] | None = None, without: Iterable[str] = ()) -> None:
        """Start every part (the app), or only the named ones (a command that needs, say, "sync"),
        or all but some (a test that drives the sync worker by hand).

        A part that fails to start is logged with its name and left stopped:
        one broken device must not keep the others (or the screen) from working."""
        wanted = None if only is None else set(only)
        skipped = set(without)
        for part in self._parts:
            if part.started or part.name in skipped or (wanted is not None and part.name not in wanted):
                continue
            try:
                if part.start is not None:
                    part.start()
                part.started = True
            except Exception:
                log.exception("%s did not start", part.name)

    def stop(self) -> None:
        """Stop the started parts newest first (each joins its thread), then close cache and ledger.

        Parts that were built but never started are still released (a worker
        that holds a queue, a client that holds a connection pool)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        for part in reversed(self._parts):
            if part.stop is None:
                continue
            try:
                part.stop()
            except Exception:  # stopping must go on: one stuck device must not keep the ledger open
                log.exception("%s did not stop cleanly", part.name)
        for close in (self.cache.close, self.ledger.close):
            try:
                close()
            except Exception:
                log.exception("closing storage failed")

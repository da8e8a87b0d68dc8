"""What the technician service screen knows and does, without Kivy.

* ``PinGate``: the PIN check with a lockout after too many wrong tries. The
  count and the lock live in the ledger's meta table, so pulling the plug
  does not give a guesser a fresh set of tries.
* ``collect(rt)``: every fact the service screen shows, as plain text rows.
  Role parts that are not built or not configured (rt.dispenser.printer, rt.lookup.scanner,
  rt.dispenser.buttons ...) read as "not configured"; nothing here may raise.
* ``Bench``: the live tests while the screen is open (last scan, button
  presses, central reachable/authorised).
* ``test_print(rt)``, ``test_leds(rt)``: the hardware tests behind its buttons.

No personal data is shown: dead letters show kind and (scrubbed) reason,
not the body; the last scan shows a masked receipt number, never the code.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

from kiosk import __version__
from kiosk.core import keys
from kiosk.core.pin import verify_pin
from kiosk.core.privacy import mask_receipt, mask_text, scrub
from kiosk.core.time import hall_now


class _Bank(Protocol):
    """A button bank as the device test borrows it: whoever set on_press gets the presses."""

    on_press: Callable[[str], None]


log = logging.getLogger("kiosk.technician")

NOT_CONFIGURED = "not configured"


class PinGate:
    """Checks the technician PIN; locks for lockout_minutes after max_tries wrong ones."""

    def __init__(self, cfg, ledger=None, clock=time.time):
        self.cfg = cfg
        self.ledger = ledger  # None out of service when the ledger will not open
        self.clock = clock
        self._mem = {keys.TECHNICIAN_FAILED_TRIES: "0", keys.TECHNICIAN_LOCKED_UNTIL: "0"}
        self._lock = threading.Lock()

    def _get(self, key) -> float:
        try:
            value = self.ledger.get_meta(key, "0") if self.ledger is not None else self._mem[key]
            return float(value)
        except Exception:
            return float(self._mem[key])

    def _set(self, key, value) -> None:
        self._mem[key] = str(value)
        if self.ledger is not None:
            try:
                self.ledger.set_meta(key, str(value))
            except Exception as e:  # the lock still holds in memory until a restart
                log.error("cannot persist the PIN lockout: %s", type(e).__name__)

    @property
    def configured(self) -> bool:
        return bool(self.cfg.technician.pin_hash)

    def locked_for(self) -> float:
        """Seconds until PIN entry is allowed again (0 = not locked)."""
        until = self._get(keys.TECHNICIAN_LOCKED_UNTIL)
        now = self.clock()
        left = until - now
        limit = self.cfg.technician.lockout_minutes * 60
        if left > limit:  # the clock was set back: never lock longer than configured
            self._set(keys.TECHNICIAN_LOCKED_UNTIL, now + limit)
            left = limit
        return max(0.0, left)

    def tries_left(self) -> int:
        return max(0, self.cfg.technician.max_tries - int(self._get(keys.TECHNICIAN_FAILED_TRIES)))

    def check(self, pin: str) -> tuple[bool, str]:
        """(ok, why). Slow (PBKDF2, ~0.2 s): call it off the UI thread."""
        with self._lock:
            if not self.configured:
                return False, "no_pin"
            if self.locked_for() > 0:
                return False, "locked"
            if verify_pin(pin, self.cfg.technician.pin_hash):
                self._set(keys.TECHNICIAN_FAILED_TRIES, 0)
                log.info("service mode opened")
                return True, "ok"
            tries = int(self._get(keys.TECHNICIAN_FAILED_TRIES)) + 1
            if tries >= self.cfg.technician.max_tries:
                self._set(keys.TECHNICIAN_LOCKED_UNTIL, self.clock() + self.cfg.technician.lockout_minutes * 60)
                self._set(keys.TECHNICIAN_FAILED_TRIES, 0)
                log.warning(
                    "service PIN locked for %d min after %d wrong tries", self.cfg.technician.lockout_minutes, tries
                )
                return False, "locked"
            self._set(keys.TECHNICIAN_FAILED_TRIES, tries)
            log.warning("wrong service PIN (%d of %d)", tries, self.cfg.technician.max_tries)
            return False, "wrong"


# ---- facts -------------------------------------------------------------


def ip_address(cfg) -> str:
    """The address this device uses towards the central system (no packet is sent)."""
    parts = urlsplit(cfg.central.url)
    host = parts.hostname or "192.0.2.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((socket.gethostbyname(host), port))
            return s.getsockname()[0]
    except OSError:
        return "no network"


def _fmt_age(iso: str | None) -> str:
    if not iso:
        return "never"
    try:
        then = datetime.fromisoformat(iso)
        age = (datetime.now(then.tzinfo) - then).total_seconds()
    except (ValueError, TypeError):
        return iso
    if age < 120:
        return f"{iso[:19]} ({age:.0f} s ago)"
    if age < 7200:
        return f"{iso[:19]} ({age / 60:.0f} min ago)"
    return f"{iso[:19]} ({age / 3600:.1f} h ago)"


def _safe(fn, default="unknown"):
    try:
        return fn()
    except Exception as e:
        return f"{default} ({type(e).__name__})"


def _printer_text(rt) -> str:
    if rt.printer is None:  # no dispenser role on this device
        return NOT_CONFIGURED
    from kiosk.technician.selftest import printer_status

    st = printer_status(rt.cfg, rt)
    state = {True: "online", False: "OFFLINE", None: "not answering"}[st.online]
    return f"{state}, paper {st.paper}: {st.detail}"


def describe_scan(scan, cfg) -> str:
    """What a technician needs from a test scan, masked: which input, and would the lookup take it?"""
    from kiosk.roles.lookup.receipt import Rejection, parse_payload

    if scan.problem:
        return f"unreadable ({scan.problem}) from {scan.source}"
    ref = parse_payload(scan.payload, receipt_param=cfg.lookup.receipt_param, code_param=cfg.lookup.code_param)
    if not isinstance(ref, Rejection):
        return f"receipt {mask_receipt(ref.receipt_no)}, query code ****** (from {scan.source}: the lookup accepts it)"
    text = scan.payload.decode("utf-8", "replace") if isinstance(scan.payload, bytes) else str(scan.payload or "")
    return f"{mask_text(text, keep=4)} from {scan.source}: not a receipt code ({ref.reason})"


class Bench:
    """The live parts of the unlocked service screen: scanner test, button test, central probe.

    While open, the lookup's scans (rt.lookup.service.scans, the same hub the serial,
    simulated and wedge scanners deliver into) are shown here masked, and the
    hardware buttons (rt.dispenser.buttons of the dispenser, rt.pad.buttons of the pad)
    report to the test instead of issuing tickets or ratings; a pad key lights
    its own LED. close() gives the buttons back to their role."""

    CENTRAL_EVERY_S = 10.0  # whoami at most this often: the screen refreshes every 2 s
    KEY_LED_S = 0.8

    def __init__(self, rt, clock=time.monotonic):
        self.rt = rt
        self.clock = clock
        self.last_scan: str | None = None
        self.last_scan_at: str | None = None
        self.last_press: str | None = None
        self.presses = 0
        self._banks: list[tuple[_Bank, Callable[[str], None]]] = []  # (bank, its role's on_press)
        self._central = None
        self._central_at = -1e9
        self._lock = threading.Lock()
        self.is_open = False

    def open(self) -> None:
        if self.is_open:
            return
        self.is_open = True
        if self.rt.lookup is not None:
            self.rt.lookup.service.scans.claim(self.seen_scan)
        for label, bank in self.rt.button_banks:
            self._banks.append((bank, bank.on_press))
            bank.on_press = self._press_handler(label)

    def close(self) -> None:
        if not self.is_open:
            return
        self.is_open = False
        if self.rt.lookup is not None:
            self.rt.lookup.service.scans.release(self.seen_scan)
        for bank, on_press in self._banks:
            bank.on_press = on_press
        self._banks.clear()

    def seen_scan(self, scan) -> None:
        """ScanHub listener (scanner thread) or the screen's wedge input (UI thread)."""
        text = describe_scan(scan, self.rt.cfg)
        with self._lock:
            self.last_scan, self.last_scan_at = text, hall_now().strftime("%H:%M:%S")

    def _press_handler(self, label):
        def pressed(name):  # gpiozero's thread
            with self._lock:
                self.last_press = f"{label} {name} at {hall_now():%H:%M:%S}"
                self.presses += 1
            leds = self.rt.pad_leds
            if leds is not None and name.startswith("star"):
                try:
                    leds.blink(name, on_time=self.KEY_LED_S, off_time=0.1, n=1)
                except Exception as e:  # a dead LED is what the test is for: say so, keep going
                    log.warning("LED %s failed: %s", name, type(e).__name__)

        return pressed

    def scanner_text(self) -> str:
        if self.rt.lookup is None:
            return NOT_CONFIGURED
        with self._lock:
            last, at = self.last_scan, self.last_scan_at
        state = _scanner_state(self.rt)
        if not last:
            return f"{state}; nothing scanned yet: scan any code now"
        return f"{state}; last scan {at}: {last}"

    def buttons_text(self) -> str:
        names = _button_names(self.rt)
        if not names:
            return NOT_CONFIGURED
        with self._lock:
            last = self.last_press
        return f"{', '.join(names)}; press one to test: " + (f"last {last}" if last else "none pressed yet")

    def central_row(self):
        """The self-check's central row, asked again at most every CENTRAL_EVERY_S."""
        from kiosk.technician.selftest import check_central

        now = self.clock()
        if self._central is None or now - self._central_at >= self.CENTRAL_EVERY_S:
            self._central, self._central_at = check_central(self.rt.cfg, self.rt), now
        return self._central


def _scanner_state(rt) -> str:
    backend = rt.cfg.scanner.backend
    scanner = rt.scanner
    if scanner is None:
        return f"{backend} scanner: not available (see the log)"
    if backend == "serial":
        return f"serial {rt.cfg.scanner.port}: " + ("connected" if scanner.connected else "NOT connected")
    if backend == "hid":
        return f"HID {rt.cfg.scanner.port}: " + ("connected" if scanner.connected else "NOT connected")
    return f"{backend} scanner"


def _button_names(rt) -> list[str]:
    names = []
    for _, bank in rt.button_banks:
        names += bank.names
    return names


def _scanner_text(rt) -> str:
    """Without a Bench (nothing is listening): only the scanner's state."""
    if rt.lookup is None:
        return NOT_CONFIGURED
    return _scanner_state(rt)


def _buttons_text(rt) -> str:
    names = _button_names(rt)
    return ", ".join(names) if names else NOT_CONFIGURED


def _leds_text(rt) -> str:
    if rt.pad_leds is None:
        return NOT_CONFIGURED
    return "5 keypad LEDs: press 'Test LEDs' (each lights in turn, then all), or press a key"


def collect(rt, bench: Bench | None = None) -> list[tuple[str, list[tuple[str, str]]]]:
    """Sections of (label, value) rows for the service screen (bench: its live tests, when open)."""
    cfg = rt.cfg
    ledger = rt.ledger
    sync = rt.sync
    state = _safe(sync.state, {}) if sync is not None else {}
    state = state if isinstance(state, dict) else {}
    selftest = rt.selftest_result or {}

    device = [
        ("device id", cfg.device.id),
        ("hall", cfg.device.hall),
        ("roles", ", ".join(cfg.device.roles)),
        ("version", __version__),
        ("IP address", _safe(lambda: ip_address(cfg))),
        ("uptime", f"{_safe(rt.uptime_s, 0):.0f} s"),
    ]
    oos = rt.out_of_service
    if oos:
        device.append(("OUT OF SERVICE", oos.text()))

    if sync is None:
        sync_status = "not running: " + (rt.central_problem or "no central client")
    else:
        sync_status = state.get("status", "unknown")
        if state.get("last_error"):
            sync_status += f" ({scrub(state['last_error'])})"
    central = [("url", cfg.central.url), ("sync", sync_status)]
    if bench is not None:
        row = _safe(bench.central_row, "check failed")
        text = row if isinstance(row, str) else f"{row.verdict.upper()}: {row.detail}"
        central.append(("reachable / authorised", text))
    last_sync = state.get("last_success") or (_safe(lambda: ledger.get_meta(keys.LAST_SYNC), None) if ledger else None)
    central.append(("last sync", _fmt_age(last_sync)))

    outbox = []
    if ledger is None:
        outbox.append(("ledger", "not open"))
    else:
        stats = _safe(ledger.outbox_stats, {})
        if isinstance(stats, dict):
            age = stats.get("oldest_pending_age_s")
            outbox.append(
                ("pending", f"{stats.get('pending', '?')}" + (f" (oldest {age / 60:.0f} min)" if age else ""))
            )
            outbox.append(("delivered", str(stats.get("delivered", "?"))))
            outbox.append(("dead letters", str(stats.get("dead", "?"))))
        dead = _safe(lambda: ledger.dead_letters(limit=10), [])
        for d in dead if isinstance(dead, list) else []:
            outbox.append((f"  {d['kind']} {d['dead_at'][:16]}", scrub(d["reason"])))

    devices = [
        ("printer", _safe(lambda: _printer_text(rt))),
        ("scanner", _safe(bench.scanner_text if bench else lambda: _scanner_text(rt))),
        ("buttons", _safe(bench.buttons_text if bench else lambda: _buttons_text(rt))),
        ("LEDs", _safe(lambda: _leds_text(rt))),
    ]

    checks = [
        (r["name"], f"{r['verdict'].upper()}{'' if r['required'] else ' (optional)'}: {r['detail']}")
        for r in selftest.get("rows", [])
    ] or [("self-check", "running ..." if not oos else "not run out of service")]

    config = []
    for section, values in cfg.summary().items():
        shown = ", ".join(f"{k}={v}" for k, v in values.items() if not isinstance(v, (list, dict)) or len(str(v)) < 60)
        config.append((section, shown))
    return [
        ("device", device),
        ("central", central),
        ("outbox", outbox),
        ("devices", devices),
        ("self-check", checks),
        ("config", config),
    ]


# ---- hardware tests ------------------------------------------------------


def test_print(rt) -> str:
    """Print the dispenser's test ticket through the role's printer thread; returns what happened."""
    printer = rt.printer
    if printer is None:
        return NOT_CONFIGURED
    from kiosk.roles.dispenser.layout import test_document

    try:
        printer.submit(test_document(rt.cfg)).result(timeout=60)
    except Exception as e:  # PrinterError says what to check; anything else still must not kill the screen
        return f"failed: {e}"
    return "printed"


def test_leds(rt, step_s: float = 0.4, all_s: float = 1.0) -> str:
    """Light the pad's keypad LEDs one at a time (★5 … ★1), then all together, then off.

    One at a time so a technician sees which one is dead; blocking, so call it
    off the UI thread."""
    leds = rt.pad_leds
    if leds is None:
        return NOT_CONFIGURED
    from kiosk.roles.pad.keypad import key_names

    names = key_names()
    failed: dict[str, str] = {}
    try:
        for name in names:
            try:
                leds.on(name)
                time.sleep(step_s)
                leds.off(name)
            except Exception as e:  # a broken LED is what the test is for: note it, test the others
                failed[name] = type(e).__name__
        for name in names:
            if name not in failed:
                leds.on(name)
        time.sleep(all_s)
    finally:
        leds.all_off()
    if failed:
        return "LED test: failed " + ", ".join(f"{n} ({why})" for n, why in failed.items())
    # Plain ASCII: the screen font has no ★, and SDL renders a missing glyph very slowly.
    return f"lit {len(names)} LEDs one by one (star5 to star1), then all together"

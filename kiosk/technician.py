"""What the technician service screen knows and does, without Kivy.

* ``PinGate``: the PIN check with a lockout after too many wrong tries. The
  count and the lock live in the ledger's meta table, so pulling the plug
  does not give a guesser a fresh set of tries.
* ``collect(rt)``: every fact the service screen shows, as plain text rows.
  Role parts that are not built or not configured (rt.printer, rt.scanner,
  rt.buttons ...) read as "not configured"; nothing here may raise.
* ``test_print(rt)``, ``test_leds(rt)``: the hardware tests behind its buttons.

No personal data is shown: dead letters show kind and reason, not the body;
the last scan is masked to its first characters.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import datetime
from urllib.parse import urlsplit

from . import __version__
from .pin import verify_pin

log = logging.getLogger("kiosk.technician")

TRIES_KEY = "technician.failed_tries"
LOCK_KEY = "technician.locked_until"
NOT_CONFIGURED = "not configured"


class PinGate:
    """Checks the technician PIN; locks for lockout_minutes after max_tries wrong ones."""

    def __init__(self, cfg, ledger=None, clock=time.time):
        self.cfg = cfg
        self.ledger = ledger          # None out of service when the ledger will not open
        self.clock = clock
        self._mem = {TRIES_KEY: "0", LOCK_KEY: "0"}
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
        until = self._get(LOCK_KEY)
        now = self.clock()
        left = until - now
        limit = self.cfg.technician.lockout_minutes * 60
        if left > limit:  # the clock was set back: never lock longer than configured
            self._set(LOCK_KEY, now + limit)
            left = limit
        return max(0.0, left)

    def tries_left(self) -> int:
        return max(0, self.cfg.technician.max_tries - int(self._get(TRIES_KEY)))

    def check(self, pin: str) -> tuple[bool, str]:
        """(ok, why). Slow (PBKDF2, ~0.2 s): call it off the UI thread."""
        with self._lock:
            if not self.configured:
                return False, "no_pin"
            if self.locked_for() > 0:
                return False, "locked"
            if verify_pin(pin, self.cfg.technician.pin_hash):
                self._set(TRIES_KEY, 0)
                log.info("service mode opened")
                return True, "ok"
            tries = int(self._get(TRIES_KEY)) + 1
            if tries >= self.cfg.technician.max_tries:
                self._set(LOCK_KEY, self.clock() + self.cfg.technician.lockout_minutes * 60)
                self._set(TRIES_KEY, 0)
                log.warning("service PIN locked for %d min after %d wrong tries",
                            self.cfg.technician.lockout_minutes, tries)
                return False, "locked"
            self._set(TRIES_KEY, tries)
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


def mask(text: str, keep: int = 6) -> str:
    text = str(text)
    return text[:keep] + "*" * min(12, max(0, len(text) - keep)) + f" ({len(text)} chars)"


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
    if "dispenser" not in rt.cfg.device.roles:
        return NOT_CONFIGURED
    printer = getattr(rt, "printer", None)
    if printer is None:
        return NOT_CONFIGURED
    from .selftest import _field, _printer_status
    st = _printer_status(printer)
    online = _field(st, "online")
    paper = _field(st, "paper", default="unknown")
    return f"{'online' if online else 'offline' if online is False else 'not answering'}, paper {paper}"


def _scanner_text(rt) -> str:
    scanner = getattr(rt, "scanner", None)
    if scanner is None:
        return NOT_CONFIGURED
    last = getattr(scanner, "last_scan", None) or getattr(rt, "last_scan", None)
    if not last:
        return "ready, nothing scanned yet: scan any code now"
    text = getattr(last, "text", last)
    when = getattr(last, "at", None) or getattr(scanner, "last_scan_at", None)
    return f"last scan {mask(text)}" + (f" at {when}" if when else "")


def _buttons_text(rt) -> str:
    buttons = getattr(rt, "buttons", None)
    if buttons is None:
        return NOT_CONFIGURED
    names = _safe(lambda: ", ".join(buttons.names()), "")
    last = getattr(buttons, "last_pressed", None)
    return f"{names or 'buttons'}; last pressed: {last or '-'}"


def collect(rt) -> list[tuple[str, list[tuple[str, str]]]]:
    """Sections of (label, value) rows for the service screen."""
    cfg = rt.cfg
    ledger = getattr(rt, "ledger", None)
    sync = getattr(rt, "sync", None)
    state = _safe(sync.state, {}) if sync is not None else {}
    state = state if isinstance(state, dict) else {}
    selftest = getattr(rt, "selftest_result", None) or {}
    central_row = next((r for r in selftest.get("rows", []) if r["name"] == "central"), None)

    device = [("device id", cfg.device.id), ("hall", cfg.device.hall),
              ("roles", ", ".join(cfg.device.roles)), ("version", __version__),
              ("IP address", _safe(lambda: ip_address(cfg))),
              ("uptime", f"{_safe(rt.uptime_s, 0):.0f} s" if callable(getattr(rt, "uptime_s", None)) else "-")]
    oos = getattr(rt, "out_of_service", None)
    if oos:
        device.append(("OUT OF SERVICE", oos.text()))

    if sync is None:
        sync_status = "sync not running" + (" (no token?)" if rt.client is None else "")
    else:
        sync_status = state.get("status", "unknown")
    central = [("url", cfg.central.url), ("sync", sync_status)]
    if central_row:
        central.append(("reachable / authorised", f"{central_row['verdict']}: {central_row['detail']}"))
    last_sync = state.get("last_success") or (_safe(lambda: ledger.get_meta("last_sync"), None) if ledger else None)
    central.append(("last sync", _fmt_age(last_sync)))

    outbox = []
    if ledger is None:
        outbox.append(("ledger", "not open"))
    else:
        stats = _safe(ledger.outbox_stats, {})
        if isinstance(stats, dict):
            age = stats.get("oldest_pending_age_s")
            outbox.append(("pending", f"{stats.get('pending', '?')}" + (f" (oldest {age / 60:.0f} min)" if age else "")))
            outbox.append(("delivered", str(stats.get("delivered", "?"))))
            outbox.append(("dead letters", str(stats.get("dead", "?"))))
        dead = _safe(lambda: ledger.dead_letters(limit=10), [])
        for d in dead if isinstance(dead, list) else []:
            outbox.append((f"  {d['kind']} {d['dead_at'][:16]}", d["reason"]))

    devices = [("printer", _safe(lambda: _printer_text(rt))),
               ("scanner", _safe(lambda: _scanner_text(rt))),
               ("buttons", _safe(lambda: _buttons_text(rt))),
               ("LEDs", NOT_CONFIGURED if getattr(rt, "leds", None) is None else "press 'Test LEDs'")]

    checks = [(r["name"], f"{r['verdict'].upper()}{'' if r['required'] else ' (optional)'}: {r['detail']}")
              for r in selftest.get("rows", [])] or [("self-check", "running ..." if not oos else "not run out of service")]

    config = []
    for section, values in cfg.summary().items():
        shown = ", ".join(f"{k}={v}" for k, v in values.items() if not isinstance(v, (list, dict)) or len(str(v)) < 60)
        config.append((section, shown))
    return [("device", device), ("central", central), ("outbox", outbox), ("devices", devices),
            ("self-check", checks), ("config", config)]


# ---- hardware tests ------------------------------------------------------

def test_print(rt) -> str:
    """Print the dispenser's test ticket through the role's printer thread; returns what happened."""
    printer = getattr(rt, "printer", None)
    if printer is None:
        return NOT_CONFIGURED
    from .ticket_layout import test_document
    try:
        printer.submit(test_document(rt.cfg)).result(timeout=60)
    except Exception as e:  # PrinterError says what to check; anything else still must not kill the screen
        return f"failed: {e}"
    return "printed"


def test_leds(rt) -> str:
    leds = getattr(rt, "leds", None) or getattr(getattr(rt, "buttons", None), "leds", None)
    if leds is None:
        return NOT_CONFIGURED
    fn = getattr(leds, "test", None)
    if callable(fn):
        fn()
        return "LED test running"
    names = _safe(lambda: list(leds.names()), [])
    if not isinstance(names, list) or not hasattr(leds, "blink"):
        return "these LEDs have no test"
    for name in names:
        leds.blink(name, on_time=0.3, off_time=0.3, n=3)
    return f"blinking {len(names)} LEDs 3 times"

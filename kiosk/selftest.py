"""The pre-shift self-check: is everything this device is configured for working?

Each check gives one row: a verdict (ok / warn / fail), a line a technician
can act on, and whether it is *required*. A failed required check means the
device cannot do its job (no ledger, no font, no paper in a dispenser ...);
``kiosk selftest`` then exits non-zero. A failed check that is not required
is shown but does not fail the run (the central system being unreachable,
for instance: the device works offline by design).

The same checks run in a background thread when the app starts; the result
is kept on the runtime (``rt.selftest_result``) for the heartbeat and the
service screen. Nothing here imports Kivy, and every check catches its own
errors: a broken part gives a "fail" row, never a crashed self-check.
"""
from __future__ import annotations

import logging
import os
import shutil
import stat
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from .fonts import FontMissing, find_cjk_font

log = logging.getLogger("kiosk.selftest")

OK, WARN, FAIL = "ok", "warn", "fail"

MIN_FREE_MB = 50        # below this SQLite may fail to commit: the ledger is at risk
LOW_FREE_MB = 500       # enough for now, but tell the technician
MIN_YEAR = 2025         # a Pi without RTC and without NTP boots in the past
CLOCK_SLACK_S = 300     # NTP may step the clock back a little; more is a wrong clock


@dataclass
class Row:
    name: str
    verdict: str
    detail: str
    required: bool = True


@dataclass
class Result:
    rows: list[Row]
    finished_at: str = field(default_factory=lambda: datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"))
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True unless a required check failed."""
        return not any(r.verdict == FAIL and r.required for r in self.rows)

    @property
    def counts(self) -> dict:
        out = {OK: 0, WARN: 0, FAIL: 0}
        for r in self.rows:
            out[r.verdict] = out.get(r.verdict, 0) + 1
        return out

    def summary(self) -> str:
        c = self.counts
        head = "ok" if self.ok else "FAILED"
        return f"{head}: {c[OK]} ok, {c[WARN]} warn, {c[FAIL]} fail"

    def as_dict(self) -> dict:
        """For the heartbeat: small, JSON-safe, no personal data."""
        return {"ok": self.ok, "finished_at": self.finished_at, "duration_s": round(self.duration_s, 2),
                "counts": self.counts, "rows": [asdict(r) for r in self.rows]}

    def table(self) -> str:
        width = max([len(r.name) for r in self.rows] + [5])
        lines = [f"{'CHECK':<{width}}  {'VERDICT':<7}  REQ  DETAIL"]
        for r in self.rows:
            lines.append(f"{r.name:<{width}}  {r.verdict.upper():<7}  {'yes' if r.required else 'no ':<3}  {r.detail}")
        lines.append("")
        lines.append(self.summary())
        return "\n".join(lines)


# ---- the checks ---------------------------------------------------------
# Each takes (cfg, rt) and returns one Row or a list of rows. rt may be None
# (the runtime could not be built) or lack a role's parts (role not built).

def check_config(cfg, rt) -> Row:
    warnings = getattr(cfg, "warnings", [])
    if warnings:
        return Row("config", WARN, "; ".join(f"{w.key}: {w.what}" for w in warnings))
    return Row("config", OK, f"{cfg.path}: valid; roles {', '.join(cfg.device.roles)}")


def check_ledger(cfg, rt) -> Row:
    ledger = getattr(rt, "ledger", None)
    if ledger is None:
        return Row("ledger", FAIL, f"not open in {cfg.storage.dir} (see the error above; check the folder's owner)")
    try:
        ledger.set_meta("selftest.last_write", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    except Exception as e:
        return Row("ledger", FAIL, f"{ledger.path} is not writable: {e} (check disk space and owner)")
    try:
        intact = ledger.integrity_ok()
    except Exception as e:
        intact, why = False, str(e)
    else:
        why = "integrity_check reported damage"
    if not intact:
        return Row("ledger", FAIL, f"{ledger.path}: {why} (stop the service, keep a copy of the file, call support)")
    return Row("ledger", OK, f"writable and intact (schema {ledger.schema_version})")


def check_disk(cfg, rt) -> Row:
    try:
        usage = shutil.disk_usage(cfg.storage.dir)
    except OSError as e:
        return Row("disk", FAIL, f"{cfg.storage.dir}: {e.strerror}")
    free_mb = usage.free // (1024 * 1024)
    text = f"{free_mb} MB free in {cfg.storage.dir}"
    if free_mb < MIN_FREE_MB:
        return Row("disk", FAIL, text + f" (less than {MIN_FREE_MB} MB: free space, e.g. journalctl --vacuum-size=50M)")
    if free_mb < LOW_FREE_MB:
        return Row("disk", WARN, text + " (getting low)")
    return Row("disk", OK, text)


def check_font(cfg, rt) -> Row:
    try:
        return Row("font", OK, find_cjk_font(cfg.display.font))
    except FontMissing as e:
        return Row("font", FAIL, str(e))


def _printer_status(printer):
    """Ask the printer for its state through whatever the devices layer offers."""
    for name in ("status", "check_status", "query_status"):
        fn = getattr(printer, name, None)
        if callable(fn):
            got = fn()
            # A PrinterWorker answers with a Future: the check waits, the UI never does.
            return got.result(timeout=10) if hasattr(got, "result") and callable(got.result) else got
    return getattr(printer, "last_status", None)


def _field(obj, *names, default=None):
    for n in names:
        if isinstance(obj, dict) and n in obj:
            return obj[n]
        if hasattr(obj, n):
            return getattr(obj, n)
    return default


def check_printer(cfg, rt) -> Row | None:
    if "dispenser" not in cfg.device.roles:
        return None
    p = cfg.printer
    printer = getattr(rt, "printer", None)
    if printer is None:
        if p.backend == "serial":
            port_row = _port_row("printer", p.port, required=True)
            if port_row.verdict != OK:
                return port_row
        return Row("printer", WARN, f"{p.backend} printer not attached by the dispenser role in this build", required=True)
    try:
        st = _printer_status(printer)
    except Exception as e:
        return Row("printer", FAIL, f"no answer: {type(e).__name__}: {e} (check cable and power, then `kiosk selftest` again)")
    online = _field(st, "online")
    paper = str(_field(st, "paper", default="unknown") or "unknown").lower().replace(" ", "_")
    where = p.port if p.backend == "serial" else (p.path if p.backend == "file" else "simulated")
    if online is False:
        return Row("printer", FAIL, f"{where}: offline (cover open or no power?)")
    if paper in ("out", "empty", "no_paper"):
        return Row("printer", FAIL, f"{where}: out of paper (load a new roll)")
    if paper in ("near_end", "low", "near"):
        return Row("printer", WARN, f"{where}: paper near its end (have a roll ready)")
    if online is None or paper == "unknown":
        return Row("printer", WARN, f"{where}: status unknown (printer did not answer DLE EOT; test print from the service screen)")
    return Row("printer", OK, f"{where}: online, paper ok")


def _port_row(name: str, port: str, required: bool) -> Row:
    if not port:
        return Row(name, FAIL, "no port configured", required)
    try:
        st = os.stat(port)
    except FileNotFoundError:
        return Row(name, FAIL, f"{port} does not exist (plugged in? udev rule installed? see /dev/serial/by-id/)", required)
    except OSError as e:
        return Row(name, FAIL, f"{port}: {e.strerror}", required)
    if not stat.S_ISCHR(st.st_mode):
        return Row(name, FAIL, f"{port} is not a serial device", required)
    if not os.access(port, os.R_OK | os.W_OK):
        return Row(name, FAIL, f"{port}: no permission (user must be in group dialout)", required)
    return Row(name, OK, f"{port} present", required)


def check_scanner(cfg, rt) -> Row | None:
    if "lookup" not in cfg.device.roles:
        return None
    s = cfg.scanner
    if s.backend == "serial":
        return _port_row("scanner", s.port, required=True)
    if s.backend == "wedge":
        return Row("scanner", OK, "keyboard-wedge scanner: scan on the service screen to test", required=False)
    return Row("scanner", OK, "simulated scanner", required=False)


def configured_pins(cfg) -> dict[int, str]:
    """Every GPIO pin the config uses -> what for."""
    pins: dict[int, str] = {}
    roles = cfg.device.roles
    if "dispenser" in roles:
        for code, pin in (cfg.dispenser.button_pins or {}).items():
            pins[pin] = f"button {code}"
        if cfg.dispenser.priority_button_pin:
            pins[cfg.dispenser.priority_button_pin] = "priority button"
    if "pad" in roles:
        if cfg.pad.clerk_button_pin:
            pins[cfg.pad.clerk_button_pin] = "clerk button"
        for i, pin in enumerate(cfg.pad.keypad_pins or []):
            pins[pin] = f"keypad {5 - i}"
        for i, pin in enumerate(cfg.pad.led_pins or []):
            pins[pin] = f"LED {5 - i}"
    return pins


def check_gpio(cfg, rt) -> Row:
    with warnings.catch_warnings():
        return _check_gpio(cfg, rt)


def _check_gpio(cfg, rt) -> Row:
    pins = configured_pins(cfg)
    if not pins:
        return Row("gpio", OK, "no buttons or LEDs configured", required=False)
    if any(getattr(rt, n, None) is not None for n in ("buttons", "leds")):
        # The running app holds the pins already; claiming them again would fail.
        return Row("gpio", OK, f"{len(pins)} pins held by the running buttons/LEDs")
    try:
        from gpiozero import DigitalInputDevice
        warnings.simplefilter("ignore")  # gpiozero warns for every factory it falls back from
        if cfg.gpio.pin_factory == "mock":
            from gpiozero.pins.mock import MockFactory
            factory = MockFactory()
        else:
            from gpiozero import Device
            factory = Device.pin_factory
            if factory is None:
                factory = Device._default_pin_factory()
    except Exception as e:
        return Row("gpio", FAIL, f"no GPIO access: {type(e).__name__}: {e} "
                   "(on a Pi: user in group gpio, python3-lgpio installed)")
    bad = []
    for pin, what in sorted(pins.items()):
        try:
            DigitalInputDevice(pin, pin_factory=factory).close()
        except Exception as e:
            bad.append(f"GPIO{pin} ({what}): {type(e).__name__}")
    if cfg.gpio.pin_factory == "mock":
        factory.close()
    if bad:
        return Row("gpio", FAIL, "cannot claim " + ", ".join(bad) + " (another program using it?)")
    return Row("gpio", OK, f"{len(pins)} pins claimable ({cfg.gpio.pin_factory})")


def _central_errors():
    try:
        from .central import client as c
        return c.CentralAuthError, c.CentralUnreachable
    except ImportError:
        return (), ()


def check_central(cfg, rt) -> Row:
    from .config import check_token_file
    problem = check_token_file(cfg.central.token_file)
    if problem:
        return Row("central", FAIL, f"{problem.what} ({problem.fix})")
    client = getattr(rt, "client", None)
    if client is None:
        return Row("central", WARN, "no central client in this build: cannot test the connection", required=False)
    auth_error, unreachable = _central_errors()
    probe = getattr(client, "whoami", None) or getattr(client, "ping", None)
    try:
        probe()
    except Exception as e:
        name = type(e).__name__
        if (auth_error and isinstance(e, auth_error)) or "Auth" in name:
            return Row("central", FAIL, f"{cfg.central.url}: token refused (get a new token for {cfg.device.id})")
        if (unreachable and isinstance(e, unreachable)) or "Unreachable" in name:
            return Row("central", WARN, f"{cfg.central.url}: unreachable ({e}); the device works offline "
                       "and delivers later", required=False)
        return Row("central", WARN, f"{cfg.central.url}: {name}: {e}", required=False)
    return Row("central", OK, f"{cfg.central.url}: reachable, token accepted", required=False)


def newest_record_time(ledger) -> datetime | None:
    try:
        rows = ledger.query("SELECT created_at FROM outbox ORDER BY seq DESC LIMIT 1")
    except Exception:
        return None
    if not rows:
        return None
    try:
        return datetime.fromisoformat(rows[0]["created_at"])
    except ValueError:
        return None


def check_clock(cfg, rt, now: datetime | None = None) -> Row:
    now = now or datetime.now(timezone.utc).astimezone()
    if now.year < MIN_YEAR:
        return Row("clock", FAIL, f"{now:%Y-%m-%d %H:%M} is in the past (no network time yet? "
                   "check `timedatectl`; tickets would carry wrong dates)")
    ledger = getattr(rt, "ledger", None)
    newest = newest_record_time(ledger) if ledger is not None else None
    if newest is not None:
        behind = (newest - now).total_seconds()
        if behind > CLOCK_SLACK_S:
            return Row("clock", FAIL, f"{now:%Y-%m-%d %H:%M} is before the newest record ({newest:%Y-%m-%d %H:%M}): "
                       "the clock went back (check `timedatectl`)")
        if behind > 0:
            return Row("clock", WARN, f"clock {behind:.0f} s behind the newest record (NTP step?)")
    return Row("clock", OK, f"{now:%Y-%m-%d %H:%M:%S %Z}")


CHECKS = (check_config, check_ledger, check_disk, check_font, check_printer, check_scanner,
          check_gpio, check_central, check_clock)


def run_checks(cfg, rt=None, checks=CHECKS) -> Result:
    started = time.monotonic()
    rows: list[Row] = []
    for check in checks:
        try:
            got = check(cfg, rt)
        except Exception as e:  # a check with a bug must not hide the others
            log.exception("self-check %s crashed", check.__name__)
            got = Row(check.__name__.removeprefix("check_"), FAIL, f"check crashed: {type(e).__name__}: {e}")
        if got is None:
            continue
        rows.extend(got if isinstance(got, list) else [got])
    result = Result(rows)
    result.duration_s = time.monotonic() - started
    return result


def run_into(rt) -> Result:
    """Run the checks and keep the result on the runtime (heartbeat, service screen)."""
    result = run_checks(rt.cfg, rt)
    rt.selftest_result = result.as_dict()
    level = logging.INFO if result.ok else logging.ERROR
    log.log(level, "self-check %s", result.summary(),
            extra={"failed": ",".join(r.name for r in result.rows if r.verdict == FAIL) or "-"})
    for r in result.rows:
        if r.verdict != OK:
            log.warning("self-check %s %s: %s", r.name, r.verdict, r.detail)
    try:
        from . import notify
        notify.status(f"self-check {result.summary()}")
    except Exception:
        pass
    return result


def start_background(rt) -> threading.Thread:
    """The start-up self-check, off the UI thread."""
    def work():
        try:
            run_into(rt)
        finally:
            ledger = getattr(rt, "ledger", None)
            if ledger is not None:
                ledger.close()  # this thread's own connection
    t = threading.Thread(target=work, name="selftest", daemon=True)
    t.start()
    return t

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
from datetime import UTC, datetime

from kiosk.core import keys
from kiosk.core.fonts import FontMissing, find_cjk_font
from kiosk.core.time import MIN_REAL_YEAR, clock_synced

log = logging.getLogger("kiosk.selftest")

OK, WARN, FAIL = "ok", "warn", "fail"

MIN_FREE_MB = 50  # below this SQLite may fail to commit: the ledger is at risk
LOW_FREE_MB = 500  # enough for now, but tell the technician
MIN_YEAR = MIN_REAL_YEAR  # a Pi without RTC and without NTP boots in the past
CLOCK_SLACK_S = 300  # NTP may step the clock back a little; more is a wrong clock
# The full integrity check reads every index against its table: ~26 s of a
# core on a year-old ledger on the build machine, more on a Pi's SD card. A
# start runs the bounded start check; the full one runs this long after a start
# (the device has settled) and then once a week, on its own thread.
FULL_CHECK_DELAY_S = 600.0
FULL_CHECK_EVERY_S = 7 * 24 * 3600.0
# The start-up check reads only what the last writes touched (Ledger.start_check);
# the whole file's pages are read by a quick_check once a day on the same thread.
QUICK_CHECK_EVERY_S = 24 * 3600.0


@dataclass
class Row:
    name: str
    verdict: str
    detail: str
    required: bool = True


@dataclass
class Result:
    rows: list[Row]
    finished_at: str = field(default_factory=lambda: datetime.now(UTC).astimezone().isoformat(timespec="seconds"))
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
        return {
            "ok": self.ok,
            "finished_at": self.finished_at,
            "duration_s": round(self.duration_s, 2),
            "counts": self.counts,
            "rows": [asdict(r) for r in self.rows],
        }

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
    ledger = rt.ledger if rt is not None else None
    if ledger is None:
        return Row("ledger", FAIL, f"not open in {cfg.storage.dir} (see the error above; check the folder's owner)")
    try:
        ledger.set_meta(keys.SELFTEST_LAST_WRITE, datetime.now(UTC).isoformat(timespec="seconds"))
    except Exception as e:
        return Row("ledger", FAIL, f"{ledger.path} is not writable: {e} (check disk space and owner)")
    try:
        damage = ledger.start_check()
    except Exception as e:
        damage = str(e)
    intact, why = damage is None, f"the start-up check found damage: {damage}"
    last_full = ledger.get_meta(keys.LEDGER_FULL_CHECK) or ""
    last_quick = ledger.get_meta(keys.LEDGER_QUICK_CHECK) or ""
    for name, last in (("full integrity check", last_full), ("whole-file quick check", last_quick)):
        if intact and last.endswith(" damaged"):
            intact, why = False, f"the {name} of {last.split()[0]} reported damage"
    if not intact:
        return Row("ledger", FAIL, f"{ledger.path}: {why} (stop the service, keep a copy of the file, call support)")
    full = f"full check {last_full}" if last_full else "full check not run yet"
    return Row("ledger", OK, f"writable and intact (schema {ledger.schema_version}; start check ok, {full})")


def full_check_due(
    ledger, now: datetime, key: str = keys.LEDGER_FULL_CHECK, every_s: float = FULL_CHECK_EVERY_S
) -> bool:
    last = (ledger.get_meta(key) or "").split(" ")[0]
    try:
        return (now - datetime.fromisoformat(last)).total_seconds() >= every_s
    except ValueError:  # never run (or unreadable): due
        return True


def quick_check_due(ledger, now: datetime) -> bool:
    return full_check_due(ledger, now, keys.LEDGER_QUICK_CHECK, QUICK_CHECK_EVERY_S)


def run_full_check(rt, quick: bool = False) -> bool:
    """PRAGMA integrity_check (or the whole-file quick_check) now, on the calling thread; verdict kept in meta."""
    ledger = rt.ledger
    name = "whole-file quick check" if quick else "full integrity check"
    try:
        intact = ledger.quick_ok() if quick else ledger.integrity_ok()
    except Exception:
        log.exception("ledger %s failed to run", name)
        intact = False
    ledger.set_meta(
        keys.LEDGER_QUICK_CHECK if quick else keys.LEDGER_FULL_CHECK,
        f"{datetime.now(UTC).isoformat(timespec='seconds')} {'ok' if intact else 'damaged'}",
    )
    if not intact:
        log.error("ledger %s: %s reported damage (stop the service, keep a copy, call support)", ledger.path, name)
        run_into(rt)  # the self-check's ledger row now fails, for the heartbeat and the service screen
    return intact


def check_disk(cfg, rt) -> Row:
    try:
        usage = shutil.disk_usage(cfg.storage.dir)
    except OSError as e:
        return Row("disk", FAIL, f"{cfg.storage.dir}: {e.strerror}")
    free_mb = usage.free // (1024 * 1024)
    text = f"{free_mb} MB free in {cfg.storage.dir}"
    # Below storage.min_free_mb the dispenser refuses tickets (kiosk/core/storage.py): say so here too.
    floor = max(MIN_FREE_MB, getattr(cfg.storage, "min_free_mb", MIN_FREE_MB))
    if free_mb < floor:
        return Row(
            "disk",
            FAIL,
            text + f" (less than {floor} MB: new tickets are refused; free space, e.g. journalctl --vacuum-size=50M)",
        )
    if free_mb < LOW_FREE_MB:
        return Row("disk", WARN, text + " (getting low)")
    return Row("disk", OK, text)


def check_font(cfg, rt) -> Row:
    try:
        return Row("font", OK, find_cjk_font(cfg.display.font))
    except FontMissing as e:
        return Row("font", FAIL, str(e))


def printer_status(cfg, rt):
    """The dispenser printer's PrinterStatus, asked through its worker thread.

    The running dispenser's PrinterWorker (rt.dispenser.printer) is used when there is
    one: the check then queues behind tickets being printed and never talks on
    the port at the same time. Without it (the runtime did not build) a worker
    is made from the config just for this question."""
    printer = rt.printer if rt is not None else None
    own = printer is None
    if own:
        from kiosk.wiring import build_printer

        printer = build_printer(cfg).start()
    try:
        timeout = cfg.printer.status_timeout
        # Two DLE EOT queries, behind whatever job is printing now.
        return printer.check_status(timeout).result(timeout=2 * timeout + 30)
    finally:
        if own:
            printer.close()


def check_printer(cfg, rt) -> Row | None:
    if "dispenser" not in cfg.device.roles:
        return None
    p = cfg.printer
    where = p.port if p.backend == "serial" else (p.path if p.backend == "file" else "simulated")
    try:
        st = printer_status(cfg, rt)
    except Exception as e:
        return Row(
            "printer",
            FAIL,
            f"{where}: status check failed: {type(e).__name__}: {e} "
            "(check cable and power, then `kiosk selftest` again)",
        )
    if st.online is False:
        return Row("printer", FAIL, f"{where}: {st.detail}")
    if st.paper == "out":
        return Row("printer", FAIL, f"{where}: out of paper (load a new roll)")
    if st.paper == "near_end":
        return Row("printer", WARN, f"{where}: paper near its end (have a roll ready)")
    if st.online is None or st.paper == "unknown":
        return Row("printer", WARN, f"{where}: status unknown: {st.detail} (make a test print from the service screen)")
    return Row("printer", OK, f"{where}: online, paper ok")


def _port_row(name: str, port: str, required: bool) -> Row:
    if not port:
        return Row(name, FAIL, "no port configured", required)
    try:
        st = os.stat(port)
    except FileNotFoundError:
        return Row(
            name, FAIL, f"{port} does not exist (plugged in? udev rule installed? see /dev/serial/by-id/)", required
        )
    except OSError as e:
        return Row(name, FAIL, f"{port}: {e.strerror}", required)
    if not stat.S_ISCHR(st.st_mode):
        return Row(name, FAIL, f"{port} is not a serial device", required)
    if not os.access(port, os.R_OK | os.W_OK):
        return Row(name, FAIL, f"{port}: no permission (user must be in group dialout)", required)
    return Row(name, OK, f"{port} present", required)


def _input_row(port: str, rt) -> Row:
    """A HID scanner: its event node present and readable; the running reader's own word if there is one."""
    scanner = rt.lookup.scanner if rt is not None and rt.lookup is not None else None
    if scanner is not None and getattr(scanner, "connected", False):
        return Row("scanner", OK, scanner.detail)
    if not port:
        return Row("scanner", FAIL, "no port configured (scanner.port = /dev/input/by-id/…-event-kbd)")
    from kiosk.wiring import hid_problem

    problem = hid_problem(port)
    if problem and scanner is not None and getattr(scanner, "connected", False):
        return Row("scanner", OK, scanner.detail)  # our own reader grabbed it meanwhile
    if problem:
        return Row("scanner", FAIL, problem)
    return Row("scanner", OK, f"{port} readable and grabbable (scan on the service screen to test)")


def check_scanner(cfg, rt) -> Row | None:
    if "lookup" not in cfg.device.roles:
        return None
    s = cfg.scanner
    if s.backend == "serial":
        return _port_row("scanner", s.port, required=True)
    if s.backend == "hid":
        return _input_row(s.port, rt)
    if s.backend == "wedge":
        return Row("scanner", OK, "keyboard-wedge scanner: scan on the service screen to test", required=False)
    return Row("scanner", OK, "simulated scanner", required=False)


def check_idcard(cfg, rt) -> list[Row] | None:
    """The ID card reader and the hall key. Not required: without them the dispenser
    still issues ordinary tickets, and the screen tells citizens so."""
    if "dispenser" not in cfg.device.roles or cfg.idcard.backend == "none":
        return None
    from kiosk.core.config import check_hall_key_file

    ic = cfg.idcard
    rows = []
    if ic.backend == "serial":
        row = _port_row("idcard", ic.port, required=False)
        reader = rt.dispenser.idcard_reader if rt is not None and rt.dispenser is not None else None
        if row.verdict == OK and reader is not None and getattr(reader, "answering", None) is False:
            row = Row(
                "idcard",
                FAIL,
                f"{ic.port}: the reader does not answer (power, cable, idcard.baudrate = {ic.baudrate}?)",
                required=False,
            )
        rows.append(row)
    else:
        rows.append(Row("idcard", OK, "simulated ID card reader", required=False))
    problem = check_hall_key_file(ic.hall_key_file)
    if problem is not None:
        rows.append(Row("idcard key", FAIL, f"{problem.key}: {problem.what} ({problem.fix})", required=False))
    else:
        rows.append(Row("idcard key", OK, f"hall key in {ic.hall_key_file}", required=False))
    return rows


def configured_pins(cfg) -> dict[int, str]:
    """Every GPIO pin the config uses -> what for."""
    return {pin: what for pin, (what, _) in _pins_by_part(cfg).items()}


def _pins_by_part(cfg) -> dict[int, tuple[str, str]]:
    """pin -> (what for, the part that holds it when running: "dispenser", "pad keys", "pad leds")."""
    pins: dict[int, tuple[str, str]] = {}
    roles = cfg.device.roles
    if "dispenser" in roles:
        for code, pin in (cfg.dispenser.button_pins or {}).items():
            pins[pin] = (f"button {code}", "dispenser")
        if cfg.dispenser.priority_button_pin:
            pins[cfg.dispenser.priority_button_pin] = ("priority button", "dispenser")
    if "pad" in roles:
        if cfg.pad.clerk_button_pin:
            pins[cfg.pad.clerk_button_pin] = ("clerk button", "pad keys")
        for i, pin in enumerate(cfg.pad.keypad_pins or []):
            pins[pin] = (f"keypad {5 - i}", "pad keys")
        for i, pin in enumerate(cfg.pad.led_pins or []):
            pins[pin] = (f"LED {5 - i}", "pad leds")
    return pins


def _running_banks(rt) -> set[str]:
    if rt is None:
        return set()
    out = set()
    if rt.dispenser is not None and rt.dispenser.buttons is not None:
        out.add("dispenser")
    if rt.pad is not None and rt.pad.buttons is not None:
        out.add("pad keys")
    if rt.pad is not None and rt.pad.leds is not None:
        out.add("pad leds")
    return out


def check_gpio(cfg, rt) -> Row:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gpiozero warns for every pin factory it falls back from
        return _check_gpio(cfg, rt)


def _check_gpio(cfg, rt) -> Row:
    """Pins held by the running buttons/LEDs are fine; every other configured pin must be claimable.

    A role that could not claim its pins runs touch-only (kiosk/wiring.py, pad keys)
    and has no bank on the runtime: this check then names the pin that failed."""
    pins = _pins_by_part(cfg)
    if not pins:
        return Row("gpio", OK, "no buttons or LEDs configured", required=False)
    running = _running_banks(rt)
    held = {pin for pin, (_, part) in pins.items() if part in running}
    free = {pin: what for pin, (what, _) in pins.items() if pin not in held}
    bad = []
    if free:
        from kiosk.wiring import claim_problems

        try:
            bad = claim_problems(cfg, free)
        except Exception as e:
            return Row("gpio", FAIL, f"no GPIO access: {type(e).__name__}: {e}")
    if bad:
        return Row(
            "gpio",
            FAIL,
            "cannot claim "
            + "; ".join(bad)
            + " (another program using it, or on a Pi: user in group gpio and python3-lgpio installed?)",
        )
    parts = []
    if held:
        parts.append(f"{len(held)} held by the running buttons/LEDs")
    if free:
        parts.append(f"{len(free)} claimable")
    return Row("gpio", OK, f"{len(pins)} pins: {', '.join(parts)} ({cfg.gpio.pin_factory})")


def check_central(cfg, rt) -> Row:
    """Reachable and authorised, in one GET /whoami with the device token.

    Unreachable is a failed line but not a required one: the device works
    offline by design and delivers later. A refused token never heals by
    itself (every event waits in the outbox until a technician fixes it), so
    that one fails the self-check."""
    from kiosk.core.config import ConfigError, check_token_file
    from kiosk.sync.client import (
        CentralAuthError,
        CentralClient,
        CentralError,
        CentralNotCentral,
        CentralRejected,
        CentralTLSError,
        CentralUnreachable,
    )

    url = cfg.central.url
    problem = check_token_file(cfg.central.token_file)
    if problem:  # checked even with a running client: the file may have changed since the start
        return Row("central", FAIL, f"{problem.what} ({problem.fix})")
    client = rt.client if rt is not None else None
    own = client is None
    if client is None:
        try:
            client = CentralClient.from_config(cfg)
        except ConfigError as e:  # token file missing, unreadable or too open
            return Row("central", FAIL, "; ".join(f"{p.what} ({p.fix})" for p in e.problems))
        except ValueError as e:  # plain http without allow_http
            return Row("central", FAIL, str(e))
    try:
        me = client.whoami()
    except CentralAuthError:
        return Row(
            "central",
            FAIL,
            f"{url}: reachable but NOT AUTHORISED: the device token was refused "
            f"(revoked or wrong). Ask the central's administrators for a new token for {cfg.device.id} "
            f"and write it to {cfg.central.token_file}",
        )
    except CentralTLSError as e:
        # https against a plain-http server, a wrong CA file, a clock years off:
        # none of these heal by waiting, so this is for the technician to fix now.
        return Row("central", FAIL, f"{url}: {e}; check the URL's scheme (https://), central.ca_file and the clock")
    except CentralNotCentral as e:
        # A redirect or a web page where the central should be: waiting never fixes it.
        return Row("central", FAIL, f"{url}: answered, but is not a central: {e}")
    except CentralUnreachable as e:
        if url.startswith("http://") and _speaks_tls(url, cfg.central.connect_timeout):
            # The server closed the plain request because it speaks only TLS: the
            # scheme is wrong, which waiting never fixes.
            return Row(
                "central",
                FAIL,
                f"{url}: the server there speaks https, not plain http ({e}); write central.url as "
                f"{'https://' + url[len('http://') :]} (and set central.ca_file if its CA is the hall's own)",
            )
        return Row(
            "central", FAIL, f"{url}: unreachable ({e}); the device works offline and delivers later", required=False
        )
    except CentralRejected as e:
        # The central answered, and refused the device's simplest call: a wrong URL
        # path (404) or a server that is not a central. Waiting never fixes that.
        return Row(
            "central",
            FAIL,
            f"{url}: answered {e.status} to GET /api/v1/whoami ({e.message}); central.url must be the central's "
            "base URL (the device adds /api/v1)",
        )
    except CentralError as e:
        return Row("central", FAIL, f"{url}: {e}", required=False)
    finally:
        if own:
            client.close()
    who = me.get("device_id") if isinstance(me, dict) else None
    if who and who != cfg.device.id:
        return Row(
            "central",
            FAIL,
            f"{url}: the token belongs to device {who}, this device is {cfg.device.id} "
            "(fix device.id or the token file)",
        )
    return Row("central", OK, f"{url}: reachable and authorised as {who or cfg.device.id}", required=False)


def _speaks_tls(url: str, timeout: float) -> bool:
    """Whether the server at an http:// URL completes a TLS handshake (its certificate
    is not judged here: only which protocol the port speaks)."""
    import socket
    import ssl
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.hostname:
        return False
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock,
            ctx.wrap_socket(sock, server_hostname=parts.hostname),
        ):
            return True
    except (OSError, ValueError):
        return False


def check_numbering(cfg, rt) -> Row | None:
    """The offline range against the central's numbering ranges (the config the device has, else fetched)."""
    if "dispenser" not in cfg.device.roles:
        return None
    from kiosk.roles.dispenser.numbering import offline_range_problem

    central, where, why = None, "the central config", ""
    if rt is not None and rt.client is not None:
        try:
            central = rt.client.get_config().data
        except Exception as e:  # unreachable now: compare with the copy the device runs on
            why = f" (central: {type(e).__name__})"
    if not isinstance(central, dict) and rt is not None and rt.cache is not None:
        central, where = rt.cache.get(keys.CENTRAL_CONFIG), "the cached central config"
    if not isinstance(central, dict):
        return Row("numbering", WARN, f"no central config to compare the offline range with{why}", required=False)
    first, last = cfg.dispenser.offline_range
    problem = offline_range_problem(cfg.dispenser.offline_range, central, where)
    if problem:
        return Row("numbering", FAIL, f"{problem} (in {cfg.path})")
    return Row("numbering", OK, f"offline range {first}..{last} is outside {where}'s numbers")


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


MAX_PLAUSIBLE_YEARS = 30  # after MIN_YEAR: a clock set to 2099 is a wrong clock, not the future


def check_clock(cfg, rt, now: datetime | None = None, synced: bool | None = None) -> Row:
    now = now or datetime.now(UTC).astimezone()
    synced = clock_synced() if synced is None else synced
    if now.year > MIN_YEAR + MAX_PLAUSIBLE_YEARS:
        return Row(
            "clock",
            FAIL,
            f"{now:%Y-%m-%d %H:%M} is far in the future: the clock was set wrongly "
            "(check `timedatectl`; tickets would carry wrong dates)",
        )
    if now.year < MIN_YEAR:
        return Row(
            "clock",
            FAIL,
            f"{now:%Y-%m-%d %H:%M} is in the past (no network time yet? "
            "check `timedatectl`; tickets would carry wrong dates)",
        )
    ledger = rt.ledger if rt is not None else None
    newest = newest_record_time(ledger) if ledger is not None else None
    if newest is not None:
        behind = (newest - now).total_seconds()
        if behind > CLOCK_SLACK_S:
            return Row(
                "clock",
                FAIL,
                f"{now:%Y-%m-%d %H:%M} is before the newest record ({newest:%Y-%m-%d %H:%M}): "
                "the clock went back (check `timedatectl`)",
            )
        if behind > 0:
            return Row("clock", WARN, f"clock {behind:.0f} s behind the newest record (NTP step?)")
    if synced is False:
        return Row(
            "clock",
            WARN,
            f"{now:%Y-%m-%d %H:%M:%S %Z}, not synchronised by network time (check `timedatectl` and the "
            "hall's NTP server): the device may be minutes off",
            required=False,
        )
    return Row("clock", OK, f"{now:%Y-%m-%d %H:%M:%S %Z}")


CHECKS = (
    check_config,
    check_ledger,
    check_disk,
    check_font,
    check_printer,
    check_scanner,
    check_idcard,
    check_gpio,
    check_central,
    check_numbering,
    check_clock,
)


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
    log.log(
        level,
        "self-check %s",
        result.summary(),
        extra={"failed": ",".join(r.name for r in result.rows if r.verdict == FAIL) or "-"},
    )
    for r in result.rows:
        if r.verdict != OK:
            log.warning("self-check %s %s: %s", r.name, r.verdict, r.detail)
    try:
        from kiosk.core import notify

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
            ledger = rt.ledger if rt is not None else None
            if ledger is not None:
                ledger.close()  # this thread's own connection

    t = threading.Thread(target=work, name="selftest", daemon=True)
    t.start()
    if rt is not None and getattr(rt, "ledger", None) is not None:
        start_full_check_schedule(rt)
    return t


def start_full_check_schedule(rt, delay_s: float = FULL_CHECK_DELAY_S) -> threading.Thread:
    """The weekly full integrity check, off the UI path and away from start-up."""

    def work():
        wait = delay_s
        while True:
            time.sleep(wait)
            try:
                now = datetime.now(UTC)
                if full_check_due(rt.ledger, now):
                    run_full_check(rt)
                elif quick_check_due(rt.ledger, now):
                    run_full_check(rt, quick=True)
            except Exception:  # a closed ledger at shutdown, a full disk: try again next time
                log.exception("scheduled ledger integrity check")
            finally:
                rt.ledger.close()  # this thread's own connection: no read snapshot held between checks
            wait = FULL_CHECK_EVERY_S / 7  # look daily; the check itself runs once a week

    t = threading.Thread(target=work, name="ledger-check", daemon=True)
    t.start()
    return t

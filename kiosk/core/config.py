"""Provisioning config: one TOML file per device.

A technician (or a fleet tool) writes the file; the device refuses to start
on anything it does not understand. Every problem is reported as
``FILE: key.path: what is wrong (what to do)`` so it can be fixed without
reading code. Unknown keys are errors because a typo that is silently
ignored leaves a device running on a default nobody chose.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from kiosk.core import ports
from kiosk.core.time import zone_problem

DEFAULT_PATH = "/etc/kiosk/kiosk.toml"
ROLES = ("dispenser", "lookup", "pad")

_REQUIRED = object()


@dataclass(frozen=True)
class Problem:
    key: str
    what: str
    fix: str
    warning: bool = False

    def line(self, file: str) -> str:
        return f"{file}: {self.key}: {self.what} ({self.fix})"


class ConfigError(Exception):
    """Raised with every problem found, not only the first one."""

    def __init__(self, file: str, problems: list[Problem]):
        self.file = file
        self.problems = problems
        super().__init__("\n".join(p.line(file) for p in problems))


# (what is wrong, what to do), or None when the value is fine.
Verdict = tuple[str, str] | None
Check = Callable[[Any], Verdict]


@dataclass(frozen=True)
class Key:
    """One config key: its type, default and an optional extra check.

    ``check`` returns None when the value is fine, else (what, fix).
    """

    type: type
    default: object = _REQUIRED
    # The value reaching a check has passed the type test for ``type``, so
    # each check is written for that type; TOML itself gives Any.
    check: Check | None = None
    doc: str = ""


# ---- small checks -------------------------------------------------------


def one_of(*choices: object) -> Callable[[object], Verdict]:
    def check(v: object) -> Verdict:
        if v not in choices:
            return (
                f"{v!r} is not one of {', '.join(map(repr, choices))}",
                f"use one of {', '.join(map(str, choices))}",
            )
        return None

    return check


def in_range(lo: float, hi: float) -> Callable[[float], Verdict]:
    def check(v: float) -> Verdict:
        if not lo <= v <= hi:
            return (f"{v} is out of range", f"use a value from {lo} to {hi}")
        return None

    return check


def matches(pattern: str, example: str) -> Callable[[str], Verdict]:
    rx = re.compile(pattern)

    def check(v: str) -> Verdict:
        if not rx.fullmatch(v):
            return (f"{v!r} has the wrong form", f"write it like {example!r}")
        return None

    return check


def _zone_check(v: str) -> Verdict:
    why = zone_problem(v)
    return (why, "use an IANA zone name like 'Asia/Shanghai'") if why else None


def length(lo: int, hi: int) -> Callable[[str], Verdict]:
    def check(v: str) -> Verdict:
        if not lo <= len(v) <= hi:
            return (f"length {len(v)} is out of range", f"use {lo} to {hi} characters")
        return None

    return check


def _hidden_chars(v: str) -> list[str]:
    """Control and format characters (bidi overrides, zero-width marks, NUL, ESC):
    invisible on screen, they reorder or hide what the hall reads, and on the
    printer an ESC or GS byte in a text line is a command. A line break is allowed
    (a hall name on two lines)."""
    return sorted({f"U+{ord(ch):04X}" for ch in v if unicodedata.category(ch) in ("Cc", "Cf") and ch != "\n"})


def shown(lo: int, hi: int) -> Callable[[str], Verdict]:
    """Text a citizen reads on the screen or on paper."""

    def check(v: str) -> Verdict:
        hidden = _hidden_chars(v)
        if hidden:
            return (f"has invisible control characters {', '.join(hidden[:5])}", "retype the text without them")
        if v and not v.strip():
            return ("is blank", f"write {lo} to {hi} visible characters")
        return length(lo, hi)(v)

    return check


def a_path(*, required: bool) -> Callable[[str], Verdict]:
    """A file or folder name: one the system can open, so no later OSError at start."""

    def check(v: str) -> Verdict:
        if not v.strip():
            return ("is empty", "write a full path, e.g. /var/lib/kiosk") if required else None
        if v != v.strip() or _hidden_chars(v) or "\n" in v:
            return ("has spaces at an end or control characters", "write the path without them")
        if len(v.encode("utf-8")) > 1024 or any(len(part.encode("utf-8")) > 255 for part in v.split("/")):
            return ("is too long for a file name", "use a path under 1024 bytes, each name under 256")
        return None

    return check


def _url(v: str) -> Verdict:
    # Printed as a QR code on every ticket: a long or broken link is a QR no phone opens.
    if v and (not re.fullmatch(r"https?://[^\s]+", v) or _hidden_chars(v) or len(v) > 300):
        return (
            "is not a web link of at most 300 characters",
            "write https://… with {ticket} and {day}, or leave it empty",
        )
    return None


def gpio_pin(v: int) -> Verdict:
    if not 2 <= v <= 27:
        return (f"GPIO {v} is not a usable BCM pin", "use a BCM GPIO number from 2 to 27")
    return None


def _pin_list(n: int) -> Callable[[list[object]], Verdict]:
    def check(v: list[object]) -> Verdict:
        if len(v) != n:
            return (f"{len(v)} pins given", f"give exactly {n} BCM pin numbers")
        for p in v:
            bad = gpio_pin(p) if isinstance(p, int) and not isinstance(p, bool) else ("not a number", "")
            if bad:
                return (f"pin {p!r}: {bad[0]}", "use BCM GPIO numbers from 2 to 27")
        return None

    return check


def _quiet_spans(v: list[object]) -> Verdict:
    # Like opening hours, but a quiet span may run over midnight ("20:00-08:00").
    for span in v:
        if not isinstance(span, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", span):
            return (f"{span!r} is not a time span", 'write spans like "12:00-13:30" (may cross midnight)')
        if span[:5] == span[6:]:
            return (f"{span!r} is not a time span", 'write spans like "12:00-13:30" (may cross midnight)')
    return None


def _hours(v: list[object]) -> Verdict:
    for span in v:
        m = (
            re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)", span)
            if isinstance(span, str)
            else None
        )
        if not m or m.group(1) + m.group(2) >= m.group(3) + m.group(4):
            return (f"{span!r} is not a time span", 'write spans like "08:30-12:00"')
    if not v:  # the hall closed all day, every day: a config mistake, not a setting
        return ("is empty", 'list the opening spans, e.g. ["08:30-12:00", "13:30-17:30"]')
    return None


def _span(v: str) -> Verdict:
    return _hours([v])


ENTRIES = ("appointment", "service")  # what the dispenser's first screen offers (预约签到 / 选择业务)
APPOINTMENT_TICKETS = ("series", "priority", "service")


def _entries(v: list[object]) -> Verdict:
    if not v or len(set(map(str, v))) != len(v) or any(e not in ENTRIES for e in v):
        return (f"{v!r} is not a list of entries", f"use one or more of {', '.join(ENTRIES)}, each once")
    return None


def _weekdays(v: list[object]) -> Verdict:
    if not v or any(not isinstance(d, int) or not 1 <= d <= 7 for d in v):
        return (f"{v!r} is not a list of weekdays", "use numbers 1 (Monday) to 7 (Sunday)")
    return None


def _pin_hash(v: str) -> Verdict:
    if v and not re.fullmatch(r"pbkdf2_sha256\$\d{5,8}\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+", v):
        return ("not a PBKDF2 hash", "make one with `kiosk hash-pin`")
    return None


# ---- the schema ---------------------------------------------------------
# Nested dicts are sections; a list of dict in `_TABLES` is an array of tables.

SCHEMA: dict[str, dict[str, Key]] = {
    "device": {
        "id": Key(str, check=matches(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", "hall01-kiosk03")),
        "hall": Key(str, check=shown(1, 40)),
        "roles": Key(list, doc="any of dispenser, lookup, pad"),
        "region_code": Key(str, "", matches(r"(\d{6})?", "330102")),
        # The hall's zone, not the host's: hours, the service day and every time shown or printed.
        "timezone": Key(str, "Asia/Shanghai", _zone_check),
    },
    "central": {
        "url": Key(str),
        "token_file": Key(str, check=a_path(required=True)),
        "allow_http": Key(bool, False),
        "ca_file": Key(str, "", a_path(required=False)),
        "connect_timeout": Key(float, 3.0, in_range(0.2, 30)),
        "read_timeout": Key(float, 5.0, in_range(0.2, 120)),
        "sync_interval": Key(float, 15.0, in_range(1, 3600)),
        "offline_after": Key(
            int, 3, in_range(1, 100), doc="unanswered calls in a row after which tickets and lookups go offline at once"
        ),
        "probe_interval": Key(float, 5.0, in_range(0.2, 600), doc="seconds between probes of a central gone silent"),
    },
    "storage": {
        "dir": Key(str, check=a_path(required=True)),
        "retention_days": Key(
            int, 180, in_range(7, 3650), doc="days delivered events, tickets and ratings stay on the device"
        ),
        "min_free_mb": Key(
            int, 100, in_range(10, 100_000), doc="below this free space new tickets and ratings are refused"
        ),
    },
    "display": {
        "language": Key(str, "zh", one_of("zh", "en")),
        "large_text": Key(bool, False),
        "idle_timeout": Key(int, 60, in_range(10, 900)),
        "fullscreen": Key(bool, True),
        "width": Key(int, 1280, in_range(320, 4096)),
        "height": Key(int, 800, in_range(240, 4096)),
        "dpi": Key(
            int,
            160,
            in_range(72, 640),
            doc="the panel's pixels per inch: sizes are laid out in dp (1/160 in), so text and keys keep "
            "their 适老化 size on any panel (160: 1 dp = 1 px)",
        ),
        "rotation": Key(int, 0, one_of(0, 90, 180, 270)),
        "font": Key(str, "", a_path(required=False)),
    },
    "printer": {
        "backend": Key(str, "sim", one_of(*ports.PRINTER_BACKENDS)),
        "port": Key(str, ""),
        "baudrate": Key(int, 9600, one_of(*ports.BAUD_RATES)),
        "path": Key(str, "", a_path(required=False)),
        "profile": Key(str, "default", one_of(*ports.PRINTER_PROFILES)),
        "paper_width": Key(int, 80, one_of(*ports.PAPER_WIDTHS), doc="roll width in mm: 80 (576 dots) or 58 (384)"),
        "status_timeout": Key(float, 0.5, in_range(0.05, 5)),
        "flow_control": Key(str, "profile", one_of("profile", *ports.PRINTER_FLOW_CONTROLS)),
        "write_timeout": Key(float, 5.0, in_range(0.5, 60)),
        "on_unknown_status": Key(str, "issue", one_of(*ports.PRINTER_ON_UNKNOWN_STATUS)),
    },
    "scanner": {
        "backend": Key(str, "sim", one_of(*ports.SCANNER_BACKENDS)),
        "port": Key(str, ""),
        "baudrate": Key(int, 9600, one_of(*ports.BAUD_RATES)),
        "idle_gap_ms": Key(
            int, 200, in_range(0, 5000), doc="silence ending a scan sent without CR/LF (serial) or Enter (hid); 0 = off"
        ),
    },
    "idcard": {
        # The 二代身份证 reader (devices/idcard.py); "none": the dispenser offers no 刷身份证取号.
        "backend": Key(str, "none", one_of(*ports.IDCARD_BACKENDS)),
        "port": Key(str, ""),
        "baudrate": Key(int, 115200, one_of(*ports.BAUD_RATES)),
        "poll_ms": Key(int, 500, in_range(300, 5000), doc="find-card interval; GA/T 467 readers want >= 300 ms"),
        "answer_timeout": Key(float, 1.0, in_range(0.2, 5), doc="seconds the reader has to answer one command"),
        # A secret shared by every device of the hall (never in a config file): the ID number
        # is kept and sent only as HMAC-SHA256 under this key.
        "hall_key_file": Key(str, ""),
        "daily_max": Key(int, 3, in_range(1, 50), doc="tickets per person per day; the central's config overrides"),
    },
    "gpio": {
        "pin_factory": Key(str, "default", one_of(*ports.PIN_FACTORIES, *ports.PIN_FACTORY_RENAMED)),
        "bounce_ms": Key(int, 50, in_range(5, 1000)),
    },
    "dispenser": {
        "open_days": Key(list, [1, 2, 3, 4, 5], _weekdays),
        "open_hours": Key(list, ["08:30-12:00", "13:30-17:30"], _hours),
        "offline_range": Key(list, [900, 999]),
        "lease_size": Key(int, 20, in_range(0, 500)),
        "queue_url": Key(str, "", _url, doc="QR link on the ticket; {ticket} and {day} are filled in"),
        "priority_prefix": Key(str, "V", matches(r"[A-Z]", "V")),
        "priority_button_pin": Key(int, 0),
        "button_pins": Key(dict, {}),
        "online_timeout": Key(
            float, 1.5, in_range(0.3, 10), doc="seconds to wait for a hall-wide number before numbering offline"
        ),
        "confirm_seconds": Key(int, 8, in_range(3, 60), doc="how long the 'take your ticket' confirmation stays up"),
        "entries": Key(list, ["service"], _entries, doc="the first screen's choices: appointment (预约签到), service"),
        "appointment_early_minutes": Key(int, 30, in_range(0, 240), doc="check-in opens this long before the slot"),
        "appointment_late_minutes": Key(int, 15, in_range(0, 240), doc="check-in closes this long after it starts"),
        "appointment_ticket": Key(str, "series", one_of(*APPOINTMENT_TICKETS), doc="the number a check-in gets"),
        "appointment_prefix": Key(str, "Y", matches(r"[A-Z]", "Y"), doc="prefix of the appointment series"),
        "checkin_timeout": Key(float, 3.0, in_range(0.3, 10), doc="seconds to wait for the central's check-in"),
        "booking_scanner": Key(
            bool, False, doc="a dispenser without the lookup role reads booking QR codes ([scanner])"
        ),
    },
    "lookup": {
        "receipt_param": Key(str, "slbh", matches(r"[A-Za-z_][A-Za-z0-9_]{0,31}", "slbh")),
        "code_param": Key(str, "cxm", matches(r"[A-Za-z_][A-Za-z0-9_]{0,31}", "cxm")),
        "max_attempts": Key(int, 5, in_range(1, 20)),
        "lockout_minutes": Key(int, 15, in_range(1, 1440)),
        "help_phone": Key(str, "12345", shown(0, 20)),
        "timeout": Key(float, 3.0, in_range(0.5, 15), doc="seconds to wait for the central's case answer"),
    },
    "pad": {
        "window": Key(str, "", matches(r"[0-9A-Za-z-]{1,8}", "08")),
        "rating_seconds": Key(int, 60, in_range(10, 600)),
        # Touching extends the invitation by rating_seconds, never past this from its start.
        "rating_max_seconds": Key(int, 180, in_range(10, 1800)),
        "poll_wait": Key(int, 25, in_range(1, 60)),
        "clerk_button_pin": Key(int, 0),
        "keypad_pins": Key(list, [], _pin_list(5)),
        "led_pins": Key(list, [], _pin_list(5)),
        "reasons_version": Key(str, "GB/T 39734-2020", shown(1, 40)),
    },
    "voice": {
        "enabled": Key(bool, True, doc="speak the key prompts (every spoken prompt is also shown)"),
        "backend": Key(str, "aplay", one_of(*ports.AUDIO_BACKENDS)),
        "device": Key(str, "", doc="ALSA device for aplay -D; empty: the default card"),
        "pack": Key(str, "", a_path(required=False), doc="voice pack folder; empty: <storage.dir>/voice"),
        "volume": Key(float, 0.8, in_range(0.0, 1.0)),
        "quiet_hours": Key(list, [], _quiet_spans, doc='spans without voice, e.g. ["12:00-13:30"]'),
    },
    "metrics": {
        "textfile": Key(
            str,
            "",
            a_path(required=False),
            doc="node_exporter textfile to write (e.g. /var/lib/prometheus/node-exporter/kiosk.prom)",
        ),
        "interval": Key(int, 30, in_range(5, 3600), doc="seconds between writes"),
    },
    "technician": {
        "pin_hash": Key(str, "", _pin_hash),
        "max_tries": Key(int, 5, in_range(1, 20)),
        "lockout_minutes": Key(int, 10, in_range(1, 1440)),
    },
}

# Arrays of tables: section.key -> schema of one entry.
TABLES: dict[str, dict[str, Key]] = {
    "dispenser.categories": {
        "code": Key(str, check=matches(r"[A-Z]", "A")),
        "name_zh": Key(str, check=shown(1, 16)),
        "name_en": Key(str, check=shown(1, 40)),
        "prefix": Key(str, "", matches(r"[A-Z]?", "A")),
    },
    "dispenser.quotas": {
        "category": Key(str, check=matches(r"[A-Z]", "A")),
        "hours": Key(str, check=_span),
        "limit": Key(int, check=in_range(1, 9999)),
    },
    "pad.reasons": {
        "code": Key(str, check=matches(r"[A-Za-z0-9_-]{1,16}", "A01")),
        "zh": Key(str, check=shown(1, 30)),
        "en": Key(str, check=shown(1, 60)),
    },
}

# Sections a role needs, beyond [device], [central], [storage].
ROLE_SECTIONS = {"dispenser": ("printer",), "lookup": ("scanner",), "pad": ("pad",)}

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


class Section:
    """Attribute access to one config section (cfg.printer.port).

    The values are the validated ones, set from ``SCHEMA``; each subclass
    below only declares its section's keys and their types, so that a typo
    or a wrong type in the code reading the config is caught by the type
    checker. tests/core/test_config.py holds the declarations to ``SCHEMA``.
    """

    def __init__(self, name: str, values: dict[str, Any]):
        self._name = name
        self.__dict__.update(values)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __repr__(self) -> str:
        return f"Section({self._name}, {self.as_dict()})"


class DeviceSection(Section):
    id: str
    hall: str
    roles: list[str]
    region_code: str
    timezone: str


class CentralSection(Section):
    url: str
    token_file: str
    allow_http: bool
    ca_file: str
    connect_timeout: float
    read_timeout: float
    offline_after: int
    probe_interval: float
    sync_interval: float


class StorageSection(Section):
    dir: str
    retention_days: int
    min_free_mb: int


class DisplaySection(Section):
    language: str
    large_text: bool
    idle_timeout: int
    fullscreen: bool
    width: int
    height: int
    dpi: int
    rotation: int
    font: str


class PrinterSection(Section):
    backend: str
    port: str
    baudrate: int
    path: str
    profile: str
    paper_width: int
    status_timeout: float
    flow_control: str
    write_timeout: float
    on_unknown_status: str


class ScannerSection(Section):
    backend: str
    port: str
    baudrate: int
    idle_gap_ms: int


class IdcardSection(Section):
    backend: str
    port: str
    baudrate: int
    poll_ms: int
    answer_timeout: float
    hall_key_file: str
    daily_max: int

    def read_hall_key(self) -> bytes:
        """The hall key; re-checked here because the file may change after start."""
        problem = check_hall_key_file(self.hall_key_file)
        if problem:
            raise ConfigError(self.hall_key_file or "[idcard]", [problem])
        return Path(self.hall_key_file).read_text(encoding="utf-8").strip().encode("utf-8")


class GpioSection(Section):
    pin_factory: str
    bounce_ms: int


class CategoryEntry(TypedDict):
    """One ``[[dispenser.categories]]`` entry."""

    code: str
    name_zh: str
    name_en: str
    prefix: str


class QuotaEntry(TypedDict):
    """One ``[[dispenser.quotas]]`` entry: at most `limit` tickets of `category` in `hours`."""

    category: str
    hours: str
    limit: int


class ReasonEntry(TypedDict):
    """One ``[[pad.reasons]]`` entry."""

    code: str
    zh: str
    en: str


class DispenserSection(Section):
    open_days: list[int]
    open_hours: list[str]
    offline_range: list[int]
    lease_size: int
    queue_url: str
    priority_prefix: str
    priority_button_pin: int
    button_pins: dict[str, int]
    online_timeout: float
    confirm_seconds: int
    entries: list[str]
    appointment_early_minutes: int
    appointment_late_minutes: int
    appointment_ticket: str
    appointment_prefix: str
    checkin_timeout: float
    booking_scanner: bool
    categories: list[CategoryEntry]
    quotas: list[QuotaEntry]


class LookupSection(Section):
    receipt_param: str
    code_param: str
    max_attempts: int
    lockout_minutes: int
    help_phone: str
    timeout: float


class PadSection(Section):
    window: str
    rating_seconds: int
    rating_max_seconds: int
    poll_wait: int
    clerk_button_pin: int
    keypad_pins: list[int]
    led_pins: list[int]
    reasons_version: str
    reasons: list[ReasonEntry]


class VoiceSection(Section):
    enabled: bool
    backend: str
    device: str
    pack: str
    volume: float
    quiet_hours: list[str]


class MetricsSection(Section):
    textfile: str
    interval: int


class TechnicianSection(Section):
    pin_hash: str
    max_tries: int
    lockout_minutes: int


# The typed view of each section of SCHEMA.
SECTION_TYPES: dict[str, type[Section]] = {
    "device": DeviceSection,
    "central": CentralSection,
    "storage": StorageSection,
    "display": DisplaySection,
    "printer": PrinterSection,
    "scanner": ScannerSection,
    "idcard": IdcardSection,
    "gpio": GpioSection,
    "dispenser": DispenserSection,
    "lookup": LookupSection,
    "pad": PadSection,
    "voice": VoiceSection,
    "metrics": MetricsSection,
    "technician": TechnicianSection,
}


class Config:
    # Set in __init__ from SECTION_TYPES; declared here for the type checker.
    device: DeviceSection
    central: CentralSection
    storage: StorageSection
    display: DisplaySection
    printer: PrinterSection
    scanner: ScannerSection
    idcard: IdcardSection
    gpio: GpioSection
    dispenser: DispenserSection
    lookup: LookupSection
    pad: PadSection
    voice: VoiceSection
    metrics: MetricsSection
    technician: TechnicianSection

    def __init__(self, path: str, sections: dict[str, dict[str, Any]], warnings: list[Problem]):
        self.path = path
        self.warnings = warnings
        for name, values in sections.items():
            setattr(self, name, SECTION_TYPES[name](name, values))

    @property
    def storage_dir(self) -> Path:
        return Path(self.storage.dir)

    def read_token(self) -> str:
        """The device token; re-checked here because the file may change after start."""
        problem = check_token_file(self.central.token_file)
        if problem:
            raise ConfigError(self.path, [problem])
        return Path(self.central.token_file).read_text(encoding="utf-8").strip()

    def summary(self) -> dict[str, Any]:
        """What a technician may see: everything but secrets."""
        out: dict[str, dict[str, Any]] = {}
        for name in SCHEMA:
            sec = getattr(self, name).as_dict()
            if name == "technician":
                sec = {**sec, "pin_hash": "(set)" if sec["pin_hash"] else "(not set)"}
            out[name] = sec
        return out


def check_token_file(path: str) -> Problem | None:
    key = "central.token_file"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return Problem(key, f"{path} does not exist", "put the device token there, mode 0600")
    except OSError as e:
        return Problem(key, f"{path} cannot be read: {e.strerror}", "check its owner and mode")
    if not stat.S_ISREG(st.st_mode):
        return Problem(key, f"{path} is not a file", "put the device token in a plain file")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Problem(
            key, f"{path} is readable by group or others (mode {st.st_mode & 0o777:o})", f"run: chmod 600 {path}"
        )
    try:
        empty = not Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        return Problem(key, f"{path} cannot be read: {getattr(e, 'strerror', None) or e}", "check its owner and mode")
    if empty:
        # An empty token is never accepted by a central: every event would wait forever.
        return Problem(
            key,
            f"{path} is empty",
            "write the device token there: on a bench central, `kiosk central issue-token "
            "--device DEVICE_ID --role ROLE [--window NN] --out FILE`; else ask the central's administrators",
        )
    return None


HALL_KEY_MIN = 32  # characters: `kiosk idcard-key` writes 64 hex digits


def check_hall_key_file(path: str) -> Problem | None:
    """idcard.hall_key_file: a private file holding the hall's secret (the same on every device of the hall)."""
    key = "idcard.hall_key_file"
    fix = "run `kiosk idcard-key --out FILE` once per hall and copy FILE to each device, mode 0600"
    if not path:
        return Problem(key, "missing, but an ID card reader is configured", fix)
    try:
        st = os.stat(path)
        text = Path(path).read_text(encoding="utf-8").strip() if stat.S_ISREG(st.st_mode) else None
    except FileNotFoundError:
        return Problem(key, f"{path} does not exist", fix)
    except (OSError, UnicodeDecodeError) as e:
        return Problem(key, f"{path} cannot be read: {getattr(e, 'strerror', None) or e}", "check its owner and mode")
    if text is None:
        return Problem(key, f"{path} is not a file", fix)
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Problem(
            key, f"{path} is readable by group or others (mode {st.st_mode & 0o777:o})", f"run: chmod 600 {path}"
        )
    if len(text) < HALL_KEY_MIN:
        return Problem(key, f"{path} holds fewer than {HALL_KEY_MIN} characters", fix)
    return None


def check_ca_file(path: str) -> Problem | None:
    """central.ca_file, when set, must be a readable file: requests would otherwise
    fail every call with an OSError that names no key."""
    key = "central.ca_file"
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 20)
    except FileNotFoundError:
        return Problem(key, f"{path} does not exist", "copy the CA certificate (PEM) there, or remove the key")
    except IsADirectoryError:
        return Problem(key, f"{path} is a folder", "give the CA certificate file (PEM)")
    except OSError as e:
        return Problem(key, f"{path} cannot be read: {e.strerror}", "make it readable by the kiosk user")
    if b"-----BEGIN" not in head and head.strip():
        return Problem(key, f"{path} is not a PEM certificate", "give the CA certificate in PEM form")
    return None


def _typecheck(value: object, typ: type) -> bool:
    if typ is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, typ)


def _check_keys(prefix: str, given: dict[str, Any], schema: dict[str, Key], problems: list[Problem]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in given:
        if k not in schema and f"{prefix}.{k}" not in TABLES:
            known = ", ".join(sorted(schema))
            problems.append(Problem(f"{prefix}.{k}", "unknown key", f"known keys here: {known}"))
    for k, spec in schema.items():
        path = f"{prefix}.{k}"
        if k not in given:
            if spec.default is _REQUIRED:
                problems.append(Problem(path, "missing", f"add {k} = ... under [{prefix}]"))
            else:
                out[k] = spec.default
            continue
        v = given[k]
        if not _typecheck(v, spec.type):
            problems.append(
                Problem(path, f"{v!r:.60} is not {_TYPE_NAMES[spec.type]}", f"write {_TYPE_NAMES[spec.type]}")
            )
            continue
        if spec.type is float:
            v = float(v)
        if spec.check:
            bad = spec.check(v)
            if bad:
                problems.append(Problem(path, *bad))
                continue
        out[k] = v
    return out


def _check_tables(name: str, given: object, problems: list[Problem]) -> list[dict[str, Any]]:
    if not isinstance(given, list) or not all(isinstance(e, dict) for e in given):
        problems.append(Problem(name, "is not an array of tables", f"write entries as [[{name}]]"))
        return []
    return [_check_keys(f"{name}[{i}]", e, TABLES[name], problems) for i, e in enumerate(given)]


# Keys that moved, still read for this release: (old section, key) -> (new section, key).
MOVED: dict[tuple[str, str], tuple[str, str]] = {
    ("rating", "reasons_version"): ("pad", "reasons_version"),
    ("rating", "reasons"): ("pad", "reasons"),
}


def _move_old_keys(data: dict[str, Any], problems: list[Problem]) -> dict[str, Any]:
    """Carry moved keys to their new place, with a warning that says where they went."""
    old_sections = {old for old, _ in MOVED}
    if not any(isinstance(data.get(sec), dict) for sec in old_sections):
        return data
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for (sec, key), (new_sec, new_key) in MOVED.items():
        old = data.get(sec)
        if not isinstance(old, dict) or key not in old:
            continue
        value = old.pop(key)
        target = data.setdefault(new_sec, {})
        old_name = f"[[{sec}.{key}]]" if isinstance(value, list) else f"{sec}.{key}"
        new_name = f"[[{new_sec}.{new_key}]]" if isinstance(value, list) else f"{new_sec}.{new_key}"
        if isinstance(target, dict) and new_key in target:
            problems.append(
                Problem(f"{sec}.{key}", f"given twice: as {old_name} and as {new_name}", f"keep only {new_name}")
            )
            continue
        if isinstance(target, dict):
            target[new_key] = value
        problems.append(
            Problem(
                f"{sec}.{key}",
                f"has moved to {new_name} (still read in this release)",
                f"rename {old_name} to {new_name}",
                warning=True,
            )
        )
    for sec in old_sections:
        if isinstance(data.get(sec), dict) and not data[sec]:
            del data[sec]
    return data


def validate(data: dict[str, Any], file: str) -> Config:
    problems: list[Problem] = []
    sections: dict[str, dict[str, Any]] = {}
    data = _move_old_keys(data, problems)
    for name in data:
        if name not in SCHEMA:
            problems.append(Problem(name, "unknown section", f"known sections: {', '.join(SCHEMA)}"))
    for name, schema in SCHEMA.items():
        given = data.get(name, {})
        if not isinstance(given, dict):
            problems.append(Problem(name, "is not a table", f"write it as [{name}]"))
            given = {}
        sections[name] = _check_keys(name, given, schema, problems)
        for tname in TABLES:
            sec, key = tname.split(".")
            if sec == name:
                sections[name][key] = _check_tables(tname, given[key], problems) if key in given else []

    roles = sections["device"].get("roles")
    if roles is not None:
        bad = [r for r in roles if r not in ROLES]
        if bad or not roles or len(set(roles)) != len(roles):
            problems.append(
                Problem(
                    "device.roles",
                    f"{roles!r} is not a list of distinct roles",
                    f"use one or more of {', '.join(ROLES)}",
                )
            )
        else:
            for role in roles:
                for sec in ROLE_SECTIONS[role]:
                    if sec not in data:
                        problems.append(Problem(sec, f"missing, but role {role!r} needs it", f"add a [{sec}] section"))
    _resolve_paths(sections, Path(file).resolve().parent)
    _cross_checks(data, sections, problems)
    warnings = [p for p in problems if p.warning]
    errors = [p for p in problems if not p.warning]
    if errors:
        raise ConfigError(file, errors)
    return Config(file, sections, warnings)


# Relative paths in a config are relative to the config file, not to
# wherever the command happened to be started.
PATH_KEYS = (
    ("central", "token_file"),
    ("central", "ca_file"),
    ("storage", "dir"),
    ("printer", "path"),
    ("idcard", "hall_key_file"),
    ("display", "font"),
    ("metrics", "textfile"),
    ("voice", "pack"),
)


def _resolve_paths(sections: dict[str, dict[str, Any]], base: Path) -> None:
    for sec, key in PATH_KEYS:
        value = sections[sec].get(key)
        if value and not os.path.isabs(value):
            sections[sec][key] = str(base / value)


def _pin_checks(s: dict[str, dict[str, Any]], problems: list[Problem]) -> None:
    """No PIN: the service screen stays locked (a warning, the device still serves citizens).
    The demo's published PIN on anything but the demo: a warning too, with the fix."""
    from kiosk.core.pin import DEMO_PIN_HASH

    pin = s["technician"].get("pin_hash")
    fix = "run `kiosk hash-pin` and paste the line it prints into [technician]"
    if not pin:
        problems.append(
            Problem("technician.pin_hash", "not set: the service screen cannot be opened", fix, warning=True)
        )
    elif pin == DEMO_PIN_HASH and s["device"].get("id") != "demo-kiosk":
        problems.append(Problem("technician.pin_hash", "is the published demo PIN (246810)", fix, warning=True))


def _port_ok(url: str) -> bool:
    m = re.match(r"https?://[^/:]+:(\d+)", url)
    return m is None or 1 <= int(m.group(1)) <= 65535


def _cross_checks(data: dict[str, Any], s: dict[str, dict[str, Any]], problems: list[Problem]) -> None:
    _pin_checks(s, problems)
    central = s["central"]
    url = central.get("url")
    if url is not None:
        if url.startswith("http://"):
            if not central.get("allow_http"):
                problems.append(
                    Problem(
                        "central.url",
                        "plain http:// is refused (the token would travel in clear)",
                        "use https://, or set allow_http = true for a bench central only",
                    )
                )
        elif not re.fullmatch(r"https://[A-Za-z0-9.-]+(:\d{1,5})?(/[^\s]*)?", url) or not _port_ok(url):
            problems.append(
                Problem("central.url", f"{url!r} is not an https:// URL", "write it like https://zwfw.example.gov.cn")
            )
    if url is not None and re.search(r"/api/v\d+/?$", url):
        problems.append(
            Problem(
                "central.url",
                f"{url!r} ends with the API path, which the device adds itself (every call would be a 404)",
                "give the central's base URL, without /api/v1",
            )
        )
    if central.get("ca_file"):
        p = check_ca_file(central["ca_file"])
        if p:
            problems.append(p)
    if "token_file" in central:
        p = check_token_file(central["token_file"])
        if p:
            # A missing file is a warning: the config may be checked before the
            # token is provisioned. A token others can read is always refused.
            missing = "does not exist" in p.what
            problems.append(Problem(p.key, p.what, p.fix, warning=missing))

    pad = s.get("pad") or {}
    longest, window = pad.get("rating_max_seconds", 180), pad.get("rating_seconds", 60)
    if longest < window:
        problems.append(
            Problem(
                "pad.rating_max_seconds",
                f"{longest} is shorter than rating_seconds ({window})",
                "set rating_max_seconds to at least rating_seconds (default 180)",
            )
        )

    old = s["gpio"].get("pin_factory")
    if old in ports.PIN_FACTORY_RENAMED:
        new = ports.PIN_FACTORY_RENAMED[old]
        # Still read for this release, as before; the next one takes gpiozero's meaning of the name.
        problems.append(
            Problem(
                "gpio.pin_factory",
                f"{old!r} is read as {new!r} for this release",
                f"write pin_factory = {new!r}: gpiozero's name for it (gpiozero's own "
                f"{old!r} is a different pin factory)",
                warning=True,
            )
        )

    pr = s["printer"]
    if pr.get("backend") in ("serial", "usb") and not pr.get("port"):
        problems.append(
            Problem(
                "printer.port",
                f"missing for the {pr['backend']} backend",
                'set port = "/dev/kiosk-printer" (the udev name)',
            )
        )
    if pr.get("backend") == "file" and not pr.get("path"):
        problems.append(
            Problem("printer.path", "missing for the file backend", 'set path = "/var/lib/kiosk/printer.bin"')
        )
    sc = s["scanner"]
    if sc.get("backend") == "serial" and not sc.get("port"):
        problems.append(
            Problem("scanner.port", "missing for the serial backend", 'set port = "/dev/kiosk-scanner" (the udev name)')
        )
    if sc.get("backend") == "hid" and not sc.get("port"):
        problems.append(
            Problem(
                "scanner.port",
                "missing for the hid backend",
                'set port = "/dev/input/by-id/usb-…-event-kbd" (ls /dev/input/by-id/ with the scanner plugged in)',
            )
        )

    ic = s["idcard"]
    if ic.get("backend") == "serial" and not ic.get("port"):
        problems.append(
            Problem("idcard.port", "missing for the serial backend", 'set port = "/dev/kiosk-idcard" (the udev name)')
        )
    if ic.get("backend") not in (None, "none"):
        p = check_hall_key_file(ic.get("hall_key_file") or "")
        if p:
            problems.append(p)

    roles = s["device"].get("roles") or []
    if "pad" in roles and "pad" in s and not s["pad"].get("window"):
        problems.append(
            Problem("pad.window", "missing, but role 'pad' needs it", 'set window = "08" (the counter number)')
        )

    d = s["dispenser"]
    rng = d.get("offline_range")
    if rng is not None and not (
        len(rng) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) for x in rng)
        and 1 <= rng[0] <= rng[1] <= 9999
    ):
        problems.append(
            Problem(
                "dispenser.offline_range",
                f"{rng!r} is not a number range",
                "write [first, last] with 1 <= first <= last <= 9999",
            )
        )
    codes = [c.get("code") for c in d.get("categories", [])]
    if len(set(codes)) != len(codes):
        problems.append(
            Problem("dispenser.categories", "a category code is used twice", "give each category its own code")
        )
    else:
        # What is printed and called is prefix + number: two series with one prefix
        # print the same A001 for two queues, and a counter calls both citizens.
        printed = [("dispenser.priority_prefix", d.get("priority_prefix"))]
        for i, c in enumerate(d["categories"]):
            printed.append((f"dispenser.categories[{i}]", c.get("prefix") or c.get("code")))
        seen: dict[object, str] = {}
        for where, prefix in printed:
            if prefix in seen:
                problems.append(
                    Problem(
                        where,
                        f"prints the prefix {prefix!r} that {seen[prefix]} prints too (two queues, one A001)",
                        "give each category and the priority series its own prefix",
                    )
                )
            seen.setdefault(prefix, where)
    for code, pin in (d.get("button_pins") or {}).items():
        if code not in codes:
            problems.append(
                Problem(
                    f"dispenser.button_pins.{code}",
                    "no category has this code",
                    f"use one of {', '.join(c for c in codes if c) or '(define categories)'}",
                )
            )
        if not isinstance(pin, int) or isinstance(pin, bool) or gpio_pin(pin):
            problems.append(
                Problem(
                    f"dispenser.button_pins.{code}",
                    f"{pin!r} is not a usable BCM pin",
                    "use a BCM GPIO number from 2 to 27",
                )
            )
    _quota_checks(d, codes, problems)
    if d.get("booking_scanner") and "lookup" not in roles:
        if "scanner" not in data:
            problems.append(
                Problem(
                    "dispenser.booking_scanner", "needs a [scanner] section", "add [scanner] with its backend and port"
                )
            )
        elif s["scanner"].get("backend") == "wedge":
            problems.append(
                Problem(
                    "dispenser.booking_scanner",
                    "a keyboard-wedge scanner is read only by the lookup screen",
                    'use backend = "serial" (or add the lookup role)',
                )
            )
    for path, pin in (
        ("dispenser.priority_button_pin", d.get("priority_button_pin")),
        ("pad.clerk_button_pin", s["pad"].get("clerk_button_pin")),
    ):
        bad = gpio_pin(pin) if pin else None
        if bad:
            problems.append(Problem(path, *bad))

    rcodes = [r.get("code") for r in s["pad"].get("reasons", [])]
    if len(set(rcodes)) != len(rcodes):
        problems.append(Problem("pad.reasons", "a reason code is used twice", "give each reason its own code"))

    # A pin wired to two things makes both misbehave; catch it before the device does.
    used: dict[int, str] = {}
    pins = [(f"dispenser.button_pins.{k}", v) for k, v in (d.get("button_pins") or {}).items()]
    pins += [
        ("dispenser.priority_button_pin", d.get("priority_button_pin")),
        ("pad.clerk_button_pin", s["pad"].get("clerk_button_pin")),
    ]
    pins += [(f"pad.keypad_pins[{i}]", p) for i, p in enumerate(s["pad"].get("keypad_pins") or [])]
    pins += [(f"pad.led_pins[{i}]", p) for i, p in enumerate(s["pad"].get("led_pins") or [])]
    for path, pin in pins:
        if not pin or not isinstance(pin, int):
            continue
        if pin in used:
            problems.append(
                Problem(path, f"GPIO {pin} is already used by {used[pin]}", "wire each button and LED to its own pin")
            )
        else:
            used[pin] = path


MAX_DEPTH = 8  # the deepest real key is section.table.list.value; more is a broken or hostile file


def _quota_checks(d: dict[str, Any], codes: list[Any], problems: list[Problem]) -> None:
    """Quotas name a configured service (when the file lists services) and do not overlap."""
    seen: dict[str, list[tuple[str, str]]] = {}
    for i, q in enumerate(d.get("quotas", [])):
        code, hours = q.get("category"), q.get("hours")
        if not isinstance(code, str) or not isinstance(hours, str):
            continue  # already reported by the entry's own checks
        if codes and code not in codes:
            problems.append(
                Problem(
                    f"dispenser.quotas[{i}].category",
                    f"no category has code {code!r}",
                    f"use one of {', '.join(codes)}",
                )
            )
        a, b = hours[:5], hours[6:]
        for x, y in seen.get(code, []):
            if a < y and x < b:
                problems.append(
                    Problem(
                        f"dispenser.quotas[{i}].hours",
                        f"{hours} overlaps {x}-{y} of another quota of {code}",
                        "give each span of a service one quota",
                    )
                )
        seen.setdefault(code, []).append((a, b))
    prefix = d.get("appointment_prefix")
    if d.get("appointment_ticket") == "series" and prefix is not None:
        taken = {c.get("prefix") or c.get("code") for c in d.get("categories", [])} | {d.get("priority_prefix")}
        if prefix in taken:
            problems.append(
                Problem(
                    "dispenser.appointment_prefix",
                    f"{prefix!r} is already the prefix of a service or the priority lane",
                    "give appointments a letter of their own (e.g. Y)",
                )
            )


def _depth(v: object, level: int = 0) -> int:
    """How deep v nests, stopping early past MAX_DEPTH (no recursion limit to hit)."""
    stack, deepest = [(v, level)], level
    while stack:
        item, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > MAX_DEPTH:
            return deepest
        if isinstance(item, dict):
            stack.extend((x, d + 1) for x in item.values())
        elif isinstance(item, list):
            stack.extend((x, d + 1) for x in item)
    return deepest


def load_config(path: str | os.PathLike[str]) -> Config:
    path = str(path)
    try:
        # A FIFO, a device or a directory would block or fail oddly in a read:
        # only a regular file is a config (checked without opening it).
        if Path(path).exists() and not Path(path).is_file():
            raise ConfigError(
                path, [Problem("(file)", "is not a regular file", "point --config / $KIOSK_CONFIG at the .toml file")]
            )
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, [Problem("(file)", "not found", "give --config FILE or set $KIOSK_CONFIG")]) from None
    except OSError as e:
        raise ConfigError(
            path, [Problem("(file)", f"cannot be read: {e.strerror}", "check its owner and mode")]
        ) from None
    try:
        # utf-8-sig: Windows editors (Notepad) save UTF-8 with a byte-order mark.
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(path, [Problem("(file)", "is not UTF-8 text", "save it as UTF-8")]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, [Problem("(syntax)", str(e), "fix the TOML syntax at that line")]) from None
    except RecursionError:
        raise ConfigError(
            path, [Problem("(syntax)", "arrays or tables nested too deeply to read", "a kiosk config nests 3 levels")]
        ) from None
    if _depth(data) > MAX_DEPTH:
        raise ConfigError(
            path, [Problem("(syntax)", f"nested deeper than {MAX_DEPTH} levels", "a kiosk config nests 3 levels")]
        )
    return validate(data, path)


def resolve_path(arg: str | None) -> str:
    """--config FILE, else $KIOSK_CONFIG, else the system path."""
    return arg or os.environ.get("KIOSK_CONFIG") or DEFAULT_PATH


# ---- what `kiosk run` needs before the boot guard can count -----------------------

MIN_FREE_BYTES = 8 * 1024 * 1024  # below this a ledger commit may fail halfway through a day


def check_storage(path: str | os.PathLike[str]) -> Problem | None:
    """storage.dir exists (or can be made), is a folder, is writable and has room.

    Checked by writing and syncing a small file, since a read-only mount or a
    full card passes every permission bit test and fails only on the write."""
    key = "storage.dir"
    d = Path(path)
    try:
        if d.exists() and not d.is_dir():
            return Problem(key, f"{d} is a file, not a folder", "point storage.dir at a folder (e.g. /var/lib/kiosk)")
    except OSError as e:  # a name too long, a folder on the way that cannot be entered
        return Problem(key, f"{str(d)[:80]} cannot be looked at: {e.strerror}", "point storage.dir at a folder")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return Problem(key, f"{d} cannot be created: {e.strerror}", "create it, owned by the kiosk user")
    probe = d / ".write-check"
    try:
        with open(probe, "wb") as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as e:
        try:
            probe.unlink()
        except OSError:
            pass
        return Problem(
            key,
            f"{d} is not writable: {e.strerror}",
            "check that the card is mounted read-write, has free space and the folder belongs to the kiosk user",
        )
    try:
        import shutil

        free = shutil.disk_usage(d).free
    except OSError:
        free = None
    if free is not None and free < MIN_FREE_BYTES:
        return Problem(
            key, f"{d} has only {free // 1024} KiB free", "free space on the card (old logs, kiosk data retention)"
        )
    return None


# What the out-of-service screen takes from a device file it cannot use: how the
# panel is mounted and what the hall reads, so the reason is not shown sideways,
# off-screen or in the wrong language on a rotated 7" panel.
RESCUED_DISPLAY_KEYS = ("rotation", "width", "height", "fullscreen", "language", "large_text", "font")


def rescue_config(storage_dir: str, source: str | os.PathLike[str] | None = None) -> Config:
    """The built-in settings, with storage in `storage_dir`: what the out-of-service
    screen runs on when the device's own file cannot be used at all. The panel
    settings of `source` (the broken file) are kept one by one where they are valid."""
    from importlib import resources

    data = tomllib.loads((resources.files("kiosk") / "data" / "demo.toml").read_text(encoding="utf-8"))
    data["device"]["id"] = "unconfigured"
    data["storage"]["dir"] = storage_dir
    # No token: nothing of this stand-in talks to a central, nor opens the service screen.
    data["central"]["token_file"] = str(Path(storage_dir) / "no-token")
    data["technician"].pop("pin_hash", None)
    cfg = validate(data, "(built-in settings)")
    display = _readable_display(source) if source is not None else {}
    for key in RESCUED_DISPLAY_KEYS:
        if key not in display:
            continue
        trial = {**data, "display": {**data["display"], key: display[key]}}
        try:
            cfg, data = validate(trial, "(built-in settings)"), trial
        except ConfigError:
            pass  # this key may be the broken one: the built-in value stays
    return cfg


def _readable_display(source: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        raw = tomllib.loads(Path(source).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError, RecursionError):
        return {}
    display = raw.get("display")
    return display if isinstance(display, dict) else {}


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        import json

        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    raise TypeError(f"cannot write {value!r} as a config value")


def set_keys(path: str, section: str, values: dict[str, object], note: str = "") -> None:
    """Set `values` in [section] of the config file, keeping every other line and comment.

    A key's line is replaced where it is, a missing key goes at the end of its
    section, a missing section at the end of the file. The result must pass the
    validator, or the file is left as it was (ConfigError). Written through a
    temporary file and a rename: a power cut leaves the old file or the new."""
    original = Path(path).read_text(encoding="utf-8")
    lines = original.splitlines()
    header = re.compile(rf"^\s*\[{re.escape(section)}\]\s*(#.*)?$")
    start = next((i for i, ln in enumerate(lines) if header.match(ln)), None)
    if start is None:
        lines += ["", f"[{section}]"]
        start = len(lines) - 1
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^\s*\[", lines[i])), len(lines))
    suffix = f"  # {note}" if note else ""
    for key, value in values.items():
        line = f"{key} = {_toml_value(value)}{suffix}"
        at = next((i for i in range(start + 1, end) if re.match(rf"^\s*{re.escape(key)}\s*=", lines[i])), None)
        if at is not None:
            lines[at] = line
        else:
            last = end
            while last - 1 > start and not lines[last - 1].strip():
                last -= 1  # after the section's last line, before the blank lines that end it
            lines.insert(last, line)
            end += 1
    text = "\n".join(lines) + "\n"
    tmp = Path(path).with_name(Path(path).name + ".new")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # a config readable by group kiosk stays so
    try:
        load_config(str(tmp))
    except ConfigError as e:
        tmp.unlink()
        raise ConfigError(path, e.problems) from None
    os.replace(tmp, path)

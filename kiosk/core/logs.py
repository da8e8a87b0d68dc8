"""Logging for a device: one structured line per record on stderr, no personal data.

Under systemd, stderr goes to the journal (``JOURNAL_STREAM`` is set then):
each record becomes one JSON object, prefixed with its syslog priority
(``<6>``) so ``journalctl -p warning`` works. On a terminal the same records
are ``key=value`` lines that a technician can read.

Personal data (names, ID numbers, phone numbers, full case numbers) must not
be logged in the first place. This module is the second line of defence:
every formatted line — message, extra fields and traceback — goes through
``kiosk.core.privacy.scrub``, which masks

* 18-digit resident ID numbers (and 15-digit old ones, and any longer digit run),
* mainland mobile numbers and landlines, the way ``mask_phone`` shows them,
* every value passed as personal: ``log.info("...", extra={"personal": [name]})``,
  values wrapped in ``Personal(...)``, and values a service declared with
  ``forget_in_logs(value)`` (for example the case number being looked up).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

# Masking lives in kiosk.core.privacy; Personal and forget_in_logs are re-exported
# because they are part of how code logs: logs.Personal(name). (`X as X` is
# the spelling of a deliberate re-export that type checkers honour.)
from kiosk.core.privacy import MASK, scrub  # noqa: F401
from kiosk.core.privacy import Personal as Personal
from kiosk.core.privacy import forget_in_logs as forget_in_logs

# Standard LogRecord attributes: everything else on a record came from extra=.
_RECORD_ATTRS = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime", "personal"}

_SYSLOG = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


def _scrub_line(text: str, values: Iterable[object]) -> str:
    # codes=False: a log line keeps its ids, timestamps and JSON punctuation.
    return scrub(text, values, codes=False)


def _personal_values(record: logging.LogRecord) -> list[object]:
    given = getattr(record, "personal", None)
    values: list[object]
    if given is None:
        values = []
    elif isinstance(given, (list, tuple, set)):
        values = list(given)
    else:
        values = [given]
    args = record.args if isinstance(record.args, tuple) else (record.args,) if record.args else ()
    values += [a.value for a in args if isinstance(a, Personal)]
    return values


class ScrubFilter(logging.Filter):
    """Masks personal data in the message and in extra fields, before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        values = _personal_values(record)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg = _scrub_line(message, values)
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _RECORD_ATTRS and isinstance(value, str):
                setattr(record, key, _scrub_line(value, values))
        record.personal = None
        record._kiosk_personal = values  # for the formatter: tracebacks are formatted later
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS and not k.startswith("_")}


class _Base(logging.Formatter):
    def __init__(self, journal: bool):
        super().__init__()
        self.journal = journal

    def _exc(self, record: logging.LogRecord) -> str | None:
        if record.exc_info:
            return self.formatException(record.exc_info)
        return record.exc_text or None

    def _finish(self, record: logging.LogRecord, line: str) -> str:
        line = _scrub_line(line, getattr(record, "_kiosk_personal", ()))
        if self.journal:
            line = f"<{_SYSLOG.get(record.levelno, 6)}>" + line
        return line


class JsonFormatter(_Base):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "t": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in _extras(record).items():
            out[k] = v if isinstance(v, (int, float, bool, type(None))) else str(v)
        exc = self._exc(record)
        if exc:
            out["exc"] = exc
        return self._finish(record, json.dumps(out, ensure_ascii=False))


def _kv(value: object) -> str:
    text = str(value)
    if text and not re.search(r'[\s"=]', text):
        return text
    return json.dumps(text, ensure_ascii=False)


class KeyValueFormatter(_Base):
    """level=INFO logger=kiosk.app msg="..." key=value; a traceback stays on the same line."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [f"level={record.levelname}", f"logger={record.name}", f"msg={_kv(record.getMessage())}"]
        parts += [f"{k}={_kv(v)}" for k, v in _extras(record).items()]
        exc = self._exc(record)
        if exc:
            parts.append(f"exc={_kv(exc)}")
        return self._finish(record, " ".join(parts))


_HANDLER_NAME = "kiosk-journal"


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is when a record comes, not to the one at set-up.

    A command run in-process (the tests run `kiosk …` through main()) may swap
    sys.stderr and close it afterwards; a worker thread still logging then must
    not hit a closed file."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup(verbose: bool = False, fmt: str | None = None, stream: TextIO | None = None) -> logging.Handler:
    """Route all logging (ours and Kivy's) through one scrubbing handler on stderr.

    fmt: "json" or "kv"; default from $KIOSK_LOG_FORMAT, else JSON under
    systemd (journal) and key=value on a terminal. Calling it again replaces
    the handler instead of adding a second one.
    """
    journal = bool(os.environ.get("JOURNAL_STREAM"))
    fmt = fmt or os.environ.get("KIOSK_LOG_FORMAT") or ("json" if journal else "kv")
    if fmt not in ("json", "kv"):
        raise ValueError(f"log format {fmt!r}: use json or kv")
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(ScrubFilter())
    handler.setFormatter(JsonFormatter(journal) if fmt == "json" else KeyValueFormatter(journal))
    root = logging.getLogger()
    for h in list(root.handlers):
        if h.get_name() == _HANDLER_NAME or (
            isinstance(h, logging.StreamHandler) and h.stream in (sys.stderr, sys.stdout)
        ):
            root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    return handler

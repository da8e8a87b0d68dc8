"""Wall time for records: the one definition.

A Pi has no RTC, so wall time is only for what a person reads (a record's
time, "last success at"); timers and backoff use time.monotonic().
"""

from __future__ import annotations

from datetime import UTC, datetime


def wall_now(timespec: str = "milliseconds") -> str:
    """Local wall time with its UTC offset, ISO 8601: 2026-03-02T09:15:04.123+08:00."""
    return datetime.now(UTC).astimezone().isoformat(timespec=timespec)

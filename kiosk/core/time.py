"""Time: wall time in the hall's zone, and the one definition of it.

A Pi has no RTC, so wall time is only for what a person reads (a record's
time, a printed ticket, "last success at") and for the hall's service day;
timers and backoff use time.monotonic().

The hall's zone is configured (``device.timezone``, default Asia/Shanghai),
never the host's: a board left on UTC must still open the hall at 08:30
Beijing time and reset the numbers at Beijing midnight. ``set_hall_zone`` is
called once by the composition root; everything here reads it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import time
from datetime import UTC, date, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "Asia/Shanghai"

_zone: tzinfo = ZoneInfo(DEFAULT_ZONE)

# No real day of this firmware's life is before this year: a Pi without an RTC
# or network time boots in the past (1970, or the last shutdown's time), so a
# clock before it is a clock not set yet, never a day to number in.
MIN_REAL_YEAR = 2025


def zone_problem(name: object) -> str | None:
    """Why ``name`` is not an IANA zone this host knows, or None."""
    if not isinstance(name, str) or not name:
        return "is not a time zone name"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"{name!r} is not a known time zone"
    return None


def set_hall_zone(name: str) -> None:
    global _zone
    _zone = ZoneInfo(name)


def hall_zone() -> tzinfo:
    return _zone


def hall_now(tz: tzinfo | None = None, *, wall: float | None = None) -> datetime:
    """Now (or the epoch time ``wall``) as an aware datetime in the hall's zone."""
    t = time.time() if wall is None else wall
    return datetime.fromtimestamp(t, UTC).astimezone(tz or _zone)


def hall_today(tz: tzinfo | None = None) -> date:
    return hall_now(tz).date()


def in_hall(dt: datetime, tz: tzinfo | None = None) -> datetime:
    """dt in the hall's zone; a naive dt is taken as already in it (tests, samples)."""
    return dt.astimezone(tz or _zone) if dt.tzinfo else dt


def wall_now(timespec: str = "milliseconds") -> str:
    """Hall wall time with its UTC offset, ISO 8601: 2026-03-02T09:15:04.123+08:00."""
    return hall_now().isoformat(timespec=timespec)


# ---- is the wall clock synchronised? ---------------------------------------
#
# A Pi has no real-time clock: it boots on the time fake-hwclock saved at the
# last shutdown (yesterday evening) and NTP steps it forward minutes later. A
# step of a clock that was never synchronised is that correction, not a jump
# to distrust. The kernel knows: adjtimex(2) answers TIME_ERROR while the clock
# is unsynchronised (STA_UNSYNC), whoever disciplines it (timesyncd, chrony, ntpd).

_TIME_ERROR = 5


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


@functools.cache
def _libc() -> ctypes.CDLL:
    # find_library runs ldconfig: once per process, not once per ticket.
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def clock_synced() -> bool | None:
    """True when the kernel says the wall clock is synchronised, False when it says
    it is not, None when it cannot tell (not Linux, no libc)."""
    try:
        state = int(_libc().adjtimex(ctypes.byref(_Timex())))  # modes 0: read only
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR

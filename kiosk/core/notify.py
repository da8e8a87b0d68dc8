"""The systemd notify protocol, without a dependency.

A ``Type=notify`` service tells systemd it is ready, alive and what it is
doing by sending one datagram per message to the unix socket named in
``$NOTIFY_SOCKET`` (an abstract socket when the name starts with ``@``).
Outside systemd the variable is absent and every call is a cheap no-op,
so the app calls these unconditionally.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("kiosk.notify")


def _address() -> str | None:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return None
    if addr.startswith("@"):
        return "\0" + addr[1:]  # Linux abstract namespace
    if not addr.startswith("/"):
        return None  # vsock and other forms are not used on a kiosk
    return addr


def notify(message: str) -> bool:
    """Send one notify message (e.g. "READY=1"); False when not under systemd or it failed."""
    addr = _address()
    if addr is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(addr)
            s.sendall(message.encode("utf-8"))
        return True
    except OSError as e:
        # Never let a notify failure take the kiosk down; systemd will notice
        # the missing pings itself.
        log.warning("systemd notify failed: %s", e.strerror or e)
        return False


def ready(status: str | None = None) -> bool:
    return notify("READY=1" + (f"\nSTATUS={status}" if status else ""))


def watchdog() -> bool:
    return notify("WATCHDOG=1")


def status(text: str) -> bool:
    return notify(f"STATUS={text}")


def stopping() -> bool:
    return notify("STOPPING=1")


def watchdog_interval() -> float | None:
    """Seconds between pings (half of WatchdogSec), or None when no watchdog is set for us."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None  # meant for another process (we were started by a wrapper)
    try:
        value = int(usec)
    except ValueError:
        return None
    if value <= 0:
        return None
    return value / 2 / 1_000_000

"""The heartbeat: what the central (and the fleet view) learns of this device's health."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk import __version__
from kiosk.core.keys import LAST_SYNC
from kiosk.core.ledger import Ledger
from kiosk.core.time import wall_now


def system_uptime() -> float | None:
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def health_report(
    ledger: Ledger, device_id: str, started: float, storage_dir: Path, extra: Callable[[], dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The heartbeat body: outbox, disk, uptime, and each role's part (printer, scanner ...) from ``extra``."""
    stats = ledger.outbox_stats()
    try:
        free: int | None = shutil.disk_usage(storage_dir).free
    except OSError:
        free = None
    h: dict[str, Any] = {
        "device_id": device_id,
        "version": __version__,
        "uptime_s": round(time.monotonic() - started, 1),
        "system_uptime_s": system_uptime(),
        "outbox": {
            "pending": stats["pending"],
            "dead": stats["dead"],
            "oldest_pending_age_s": stats["oldest_pending_age_s"],
        },
        "last_sync": ledger.get_meta(LAST_SYNC),
        "disk_free_bytes": free,
        "printer": "unknown",
        "paper": "unknown",
        "sent_at": wall_now("seconds"),
    }
    if extra is not None:
        try:
            h.update(extra())
        except Exception as e:  # a broken probe must not stop the heartbeat
            h["health_error"] = f"{e.__class__.__name__}: {e}"
    return h

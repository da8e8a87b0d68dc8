"""Fleet health for the tools a province already runs: node_exporter's textfile collector.

Each device writes its facts as Prometheus text to one file (e.g.
/var/lib/prometheus/node-exporter/kiosk.prom); node_exporter, started with
``--collector.textfile.directory`` pointing there, serves them with the host's
own metrics, so a province's Prometheus sees every device without new software.

The facts are the heartbeat's (kiosk/sync/heartbeat.py builds both from one
report), so the central and Prometheus never disagree about a device. The file
is replaced atomically (write a temporary file in the same folder, fsync,
rename): node_exporter never reads half a file. No personal data: only counts,
states, ages and the device id.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("kiosk.metrics")

PAPER_STATES = ("ok", "near_end", "out", "offline", "unknown", "not_available")


def _label(value: object) -> str:
    # The exposition format's escapes for label values.
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float) and math.isfinite(float(value)):
        return repr(float(value)) if isinstance(value, float) else str(value)
    return "NaN"  # unknown: Prometheus keeps the series, alerts can test for it


def _age_s(iso: object, now: float) -> float | None:
    if not isinstance(iso, str) or not iso:
        return None
    try:
        return max(0.0, now - datetime.fromisoformat(iso).timestamp())
    except ValueError:
        return None


def render(report: Mapping[str, Any], now: float | None = None) -> str:
    """The heartbeat report as Prometheus text (one gauge per fact, HELP and TYPE first)."""
    now = time.time() if now is None else now
    out: list[str] = []

    def gauge(name: str, help_text: str, samples: list[tuple[dict[str, object], object]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            out.append(f"{name}{{{text}}} {_num(value)}" if text else f"{name} {_num(value)}")

    device = {"device_id": report.get("device_id", "")}
    roles = report.get("roles") or []
    gauge(
        "kiosk_info",
        "The device, its release and its roles (always 1).",
        [({**device, "version": report.get("version", ""), "roles": ",".join(map(str, roles))}, 1)],
    )
    outbox = report.get("outbox") or {}
    gauge(
        "kiosk_outbox_pending",
        "Events waiting to be delivered to the central system.",
        [(device, outbox.get("pending"))],
    )
    gauge(
        "kiosk_outbox_dead",
        "Events the central refused for good (dead letters a technician must look at).",
        [(device, outbox.get("dead"))],
    )
    gauge(
        "kiosk_outbox_oldest_pending_age_seconds",
        "Age of the oldest undelivered event (0 when none).",
        [(device, outbox.get("oldest_pending_age_s") or 0.0)],
    )
    gauge(
        "kiosk_last_sync_age_seconds",
        "Seconds since the last complete exchange with the central (NaN: never).",
        [(device, _age_s(report.get("last_sync"), now))],
    )
    paper = str(report.get("paper") or "unknown")
    if paper not in PAPER_STATES:
        paper = "unknown"
    printer = report.get("printer")
    if isinstance(printer, str) and printer != "unknown":
        gauge(
            "kiosk_printer_online",
            "1 when the ticket printer answers, 0 when it does not.",
            [(device, printer == "online")],
        )
        gauge(
            "kiosk_paper_state",
            "The ticket printer's paper, one series per state (1 = the current one).",
            [({**device, "state": s}, s == paper) for s in PAPER_STATES],
        )
    selftest = report.get("selftest")
    if isinstance(selftest, dict):
        counts = selftest.get("counts") or {}
        gauge(
            "kiosk_selftest_ok",
            "1 when the last self-check passed every required check.",
            [(device, bool(selftest.get("ok")))],
        )
        gauge(
            "kiosk_selftest_failed_checks",
            "Checks that failed in the last self-check.",
            [(device, counts.get("FAIL", 0))],
        )
    chain = report.get("ratings_chain")
    if isinstance(chain, dict):
        gauge(
            "kiosk_ratings_chain_length",
            "Ratings in the device's hash chain (its head's count).",
            [(device, chain.get("count"))],
        )
    storage = report.get("storage")
    if isinstance(storage, dict):
        gauge(
            "kiosk_storage_low",
            "1 when free space is below storage.min_free_mb and new tickets are refused.",
            [(device, bool(storage.get("low")))],
        )
    gauge("kiosk_disk_free_bytes", "Free bytes where the ledger lives.", [(device, report.get("disk_free_bytes"))])
    gauge("kiosk_uptime_seconds", "Seconds since this kiosk process started.", [(device, report.get("uptime_s"))])
    gauge(
        "kiosk_metrics_written_timestamp_seconds",
        "When this file was written (stale file: a stuck device).",
        [(device, round(now, 3))],
    )
    return "\n".join(out) + "\n"


def write_textfile(path: str | Path, text: str) -> None:
    """Replace the file atomically, readable by node_exporter (0644)."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix="." + target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class MetricsWriter:
    """Writes the report every ``interval`` seconds on its own thread (and once more at stop)."""

    def __init__(self, path: str | Path, report: Callable[[], Mapping[str, Any]], interval: float = 30.0):
        self.path = Path(path)
        self.report = report
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def write_once(self) -> bool:
        try:
            write_textfile(self.path, render(self.report()))
        except Exception as e:  # a full disk or a missing folder must not stop the device
            if not self._failing:
                log.warning("cannot write metrics to %s: %s (check the folder exists and is writable)", self.path, e)
            self._failing = True
            return False
        self._failing = False
        return True

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self.write_once()
            if self._stop.wait(self.interval):
                self.write_once()  # the last state before the device stops, not one up to `interval` old
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

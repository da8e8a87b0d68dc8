"""Scan to result shown: how long a citizen waits after the beep.

Runs the real app offscreen (SDL offscreen driver, real Kivy frames) with the
sim scanner and the bench central on loopback, injects a receipt QR payload,
and times until the frame that shows the result has been drawn: "submitted" is
when that frame's GL commands are issued (the UI thread is free again),
"finished" adds glFinish(), i.e. until the renderer has the pixels. On this
build machine the renderer is Mesa llvmpipe (software, on the same 2 CPUs),
which takes ~60-110 ms per full 1280x800 frame; a Pi's GPU does that part in
hardware. Also times
the service alone (no UI) and the offline path (central stopped, cached
result), and prints p50 / p99 / max in milliseconds.

    .venv/bin/python bench/lookup_latency.py [--n 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")

from kiosk.core import keys  # noqa: E402


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def report(name, ms):
    print(
        f"{name:<36} n={len(ms):<4} p50={statistics.median(ms):7.1f} ms  p99={pct(ms, 99):7.1f} ms  "
        f"max={max(ms):7.1f} ms"
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() once the app is up (what kiosk/app.py could do after the first frame)",
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lookup-bench-"))
    os.environ.setdefault("KIVY_HOME", str(tmp / keys.KIVY_HOME_DIR))

    from kiosk.central.server import BenchCentral
    from tests.helpers import AppHarness, write_config

    central = BenchCentral(tmp / "central").start()
    token = central.issue_token("demo-kiosk", ["lookup"])
    path = write_config(
        tmp,
        {"device": {"roles": ["lookup"]}, "central": {"url": central.url}, "scanner": {"backend": "sim"}},
        token=token,
    )
    h = AppHarness(path)
    screen = h.app.screen("lookup")
    if args.gc_freeze:
        import gc

        gc.collect()
        gc.freeze()  # the app's long-lived widgets leave the collector's view
    cases = [central.create_case(f"个体工商户设立登记 {i}", "张小三", status="reviewing") for i in range(20)]
    from kivy.base import EventLoop
    from kivy.graphics.opengl import glFinish

    finished = []

    def scan_to_shown(payload) -> float:
        screen.reset()
        h.pump(1)
        glFinish()  # start with an idle renderer
        t0 = time.perf_counter()
        h.rt.lookup.scanner.inject(payload)
        while screen.mode != "result":
            EventLoop.idle()  # one frame: Clock callbacks, layout, draw
            if time.perf_counter() - t0 > 10:
                raise RuntimeError(f"no result within 10 s (mode {screen.mode})")
        EventLoop.idle()  # the frame that draws the result panel
        t1 = time.perf_counter()
        glFinish()
        finished.append((time.perf_counter() - t0) * 1000)
        return (t1 - t0) * 1000

    try:
        for c in cases[:3]:  # warm-up: fonts, kv rules, HTTP connection
            scan_to_shown(c["qr_payload"])
        finished.clear()
        online = [scan_to_shown(cases[i % len(cases)]["qr_payload"]) for i in range(args.n)]
        online_finished = list(finished)

        svc = []
        from kiosk.roles.lookup.service import Scan

        for i in range(args.n):
            t0 = time.perf_counter()
            r = h.rt.lookup.service.lookup_scan(Scan(cases[i % len(cases)]["qr_payload"], "sim"))
            svc.append((time.perf_counter() - t0) * 1000)
            assert r.outcome == "ok", r.outcome

        central.stop()
        finished.clear()
        offline = [scan_to_shown(cases[i % len(cases)]["qr_payload"]) for i in range(max(20, args.n // 4))]

        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"gc.freeze after start: {'yes' if args.gc_freeze else 'no'}")
        print(
            f"lookup latency, {os.cpu_count()} CPUs (load average {load}: other work on the machine "
            f"shows in p99), Kivy offscreen, bench central on 127.0.0.1"
        )
        report("scan -> result submitted (online)", online)
        report("scan -> result finished (online)", online_finished)
        report("service only (HTTP + ledger)", svc)
        report("scan -> cached submitted (offline)", offline)
        report("scan -> cached finished (offline)", finished)
    finally:
        h.close()
        central.stop()
        # The ledger, cache, central data and Kivy home of this run: nothing to keep.
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

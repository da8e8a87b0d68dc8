"""A scanner spewing garbage: memory, ledger writes and log lines, against an idle device.

    .venv/bin/python bench/garbage_scanner.py [--seconds 10]

The real app offscreen (SDL offscreen driver, real Kivy frames) on the lookup
screen, its serial scanner on a real pty. First the reference: the same app,
the same number of seconds, nothing on the line. Then a writer thread pushes
garbage lines into the pty as fast as the line takes them (a loose cable, a
wrong baud rate, a code held under the scanner) while the UI thread keeps
drawing frames. Printed for both phases, side by side: resident memory at the
start and end (MiB, from /proc/self/status), lines sent, audit events and
outbox rows written, log lines emitted, frames drawn.

The first wave measured RSS growing from 34 to 372 MB in 10 s of garbage,
with one ledger write, one outbox event and one log line per garbage line.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Counter(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.n = 0

    def emit(self, record):
        self.n += 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-garbage-"))
    os.environ["KIVY_HOME"] = str(tmp / "kivy-home")
    master, slave = os.openpty()
    os.set_blocking(master, False)
    try:
        from tests.helpers import AppHarness, write_config

        path = write_config(
            tmp,
            {
                "device": {"roles": ["lookup"]},
                "scanner": {"backend": "serial", "port": os.ttyname(slave), "baudrate": 115200},
            },
        )
        h = AppHarness(path, lang="zh")
        h.app.go("lookup")
        counter = Counter()
        logging.getLogger().addHandler(counter)
        logging.getLogger().setLevel(logging.INFO)

        def outbox_rows() -> int:
            return int(h.rt.ledger.query("SELECT COUNT(*) AS n FROM outbox")[0]["n"])

        def phase(garbage: bool) -> dict:
            stop = threading.Event()
            sent = [0]

            def writer():
                i = 0
                while not stop.is_set():
                    line = f"garbage-{i:08d}-\x07\x1b[2J&%$#@!\r\n".encode()
                    try:
                        os.write(master, line)
                        sent[0] += 1
                        i += 1
                    except BlockingIOError:
                        time.sleep(0.001)  # the line is full: as fast as the reader drains it

            logs0, rows0, rss0, frames = counter.n, outbox_rows(), rss_mib(), 0
            t = threading.Thread(target=writer, daemon=True) if garbage else None
            if t:
                t.start()
            end = time.monotonic() + args.seconds
            while time.monotonic() < end:
                h.EventLoop.idle()
                frames += 1
            stop.set()
            if t:
                t.join(5)
            h.pump_for(0.5)  # what was read is handled
            return {
                "rss_start": rss0,
                "rss_end": rss_mib(),
                "sent": sent[0],
                "outbox": outbox_rows() - rows0,
                "logs": counter.n - logs0,
                "frames": frames,
            }

        idle = phase(False)
        storm = phase(True)
        h.rt.lookup.service.flush_rejections(force=True)
        held = outbox_rows()
        h.close()
        h.rt.stop()
        print(f"{'':28}{'idle (reference)':>18}{'garbage storm':>18}")
        rows = [
            ("seconds", args.seconds, args.seconds),
            ("lines sent", idle["sent"], storm["sent"]),
            ("RSS at start (MiB)", idle["rss_start"], storm["rss_start"]),
            ("RSS at end (MiB)", idle["rss_end"], storm["rss_end"]),
            ("RSS growth (MiB)", idle["rss_end"] - idle["rss_start"], storm["rss_end"] - storm["rss_start"]),
            ("outbox rows written", idle["outbox"], storm["outbox"]),
            ("log lines", idle["logs"], storm["logs"]),
            ("frames drawn", idle["frames"], storm["frames"]),
        ]
        for name, a, b in rows:
            fa = f"{a:.1f}" if isinstance(a, float) else str(a)
            fb = f"{b:.1f}" if isinstance(b, float) else str(b)
            print(f"{name:28}{fa:>18}{fb:>18}")
        print(f"outbox rows in all after the held counts were written: {held}")
    finally:
        os.close(master)
        os.close(slave)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

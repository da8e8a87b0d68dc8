"""Start-up: first frame and peak memory of `kiosk run` against a bare Kivy app, same run.

    .venv/bin/python bench/startup.py [--runs 5]

Each run starts a fresh process on SDL's offscreen driver (as the tests do;
a device draws through KMS/DRM) and times from the spawn to the first frame,
which both processes report the way systemd hears it: `READY=1` on
$NOTIFY_SOCKET (the kiosk sends it from its first-frame callback, see
kiosk/app.py _supervise). Peak RSS is the process's VmHWM read from /proc
right after READY, then the process is stopped with SIGTERM.

- kiosk: `python -m kiosk run` with the demo config (every role on one
  screen, simulated printer and scanner), its storage in a temporary folder,
  and no central token (the device works offline), as after unpacking;
- bare: a Kivy App with one Label per role's button on the same window size,
  that sends READY=1 on its first flip.

The two are run alternately, so the machine's load hits both alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tomllib  # noqa: E402

import tomli_w  # noqa: E402

BARE = r"""
import os, socket
os.environ.setdefault("KIVY_NO_ARGS", "1")
from kivy.config import Config
Config.set("graphics", "width", "1280")
Config.set("graphics", "height", "800")
from kivy.app import App
from kivy.core.window import Window
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label

class Bare(App):
    def build(self):
        box = BoxLayout(orientation="vertical")
        for text in ("header", "dispenser", "lookup", "pad"):
            box.add_widget(Label(text=text))
        Window.bind(on_flip=self.flip)
        return box

    def flip(self, *a):
        Window.unbind(on_flip=self.flip)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])

Bare().run()
"""


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one(cmd: list[str], env: dict[str, str], sock_path: str) -> tuple[float, float]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    sock.bind(sock_path)
    sock.settimeout(60)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=dict(env, NOTIFY_SOCKET=sock_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            msg = sock.recv(4096).decode()
            if "READY=1" in msg:
                break
        took = time.perf_counter() - t0
        rss = vm_hwm_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        sock.close()
    return took, rss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="startup-bench-"))
    try:
        data = tomllib.loads((ROOT / "kiosk" / "data" / "demo.toml").read_text(encoding="utf-8"))
        data["storage"]["dir"] = str(tmp / "data")
        data["central"]["token_file"] = str(tmp / "no-token")  # offline: no central configured
        config = tmp / "kiosk.toml"
        config.write_text(tomli_w.dumps(data), encoding="utf-8")
        bare = tmp / "bare.py"
        bare.write_text(BARE)
        env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            SDL_VIDEODRIVER="offscreen",
            KIVY_NO_FILELOG="1",
            KIVY_LOG_MODE="PYTHON",
            KIVY_HOME=str(tmp / "kivy-home"),
        )
        kiosk_cmd = [sys.executable, "-m", "kiosk", "run", "--config", str(config)]
        bare_cmd = [sys.executable, str(bare)]
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        one(kiosk_cmd, env, str(tmp / "n.sock"))  # warm the page cache and the font cache for both
        one(bare_cmd, env, str(tmp / "n.sock"))
        got: dict[str, list[tuple[float, float]]] = {"kiosk": [], "bare": []}
        for _ in range(args.runs):
            got["kiosk"].append(one(kiosk_cmd, env, str(tmp / "n.sock")))
            got["bare"].append(one(bare_cmd, env, str(tmp / "n.sock")))
        print(f"load average at end:   {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: (statistics.median(t for t, _ in v), statistics.median(r for _, r in v)) for k, v in got.items()}
    for name in ("kiosk", "bare"):
        times = ", ".join(f"{t:.2f}" for t, _ in got[name])
        print(f"{name:6} first frame p50 {med[name][0]:.3f} s  peak RSS p50 {med[name][1]:.0f} MiB  (runs: {times} s)")
    (kt, kr), (bt, br) = med["kiosk"], med["bare"]
    print(f"kiosk/bare first frame {kt / bt:.2f}x (target <= 1.5x); peak RSS +{kr - br:.0f} MiB (target <= +40 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`kiosk demo` with no config: bench central on loopback, the device syncing to it."""
import os
import signal
import socket
import subprocess
import sys
import time

import requests

from tests.helpers import ROOT


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_starts_central_and_device_and_stops_on_sigterm(tmp_path):
    port = free_port()
    env = {**os.environ, "SDL_VIDEODRIVER": "offscreen"}
    p = subprocess.Popen([sys.executable, "-m", "kiosk", "demo", "--data", str(tmp_path), "--port", str(port)],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        page = None
        deadline = time.monotonic() + 60
        beat = False
        while time.monotonic() < deadline and not beat:
            time.sleep(0.5)
            assert p.poll() is None, p.stdout.read()[-3000:]
            try:
                page = requests.get(f"http://127.0.0.1:{port}/bench/", timeout=2).text
            except requests.ConnectionError:
                continue
            beat = "demo-kiosk" in page
        assert beat, "the demo device never sent a heartbeat to the bench central"
        # Its config and token are where the demo says, the token private.
        assert (tmp_path / "kiosk.toml").exists()
        assert os.stat(tmp_path / "device-token").st_mode & 0o077 == 0
        assert (tmp_path / "device" / "ledger.sqlite3").exists()
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()

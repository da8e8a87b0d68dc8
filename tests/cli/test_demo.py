"""`kiosk demo` with no config: bench central on loopback, the device syncing to it."""

import os
import signal
import socket
import subprocess
import sys
import time

import requests

from kiosk.core import keys
from tests.helpers import ROOT


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_starts_central_and_device_and_stops_on_sigterm(tmp_path):
    port = free_port()
    env = {**os.environ, "SDL_VIDEODRIVER": "offscreen"}
    p = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "demo", "--data", str(tmp_path), "--port", str(port), "--no-browser"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        page = None
        deadline = time.monotonic() + 60
        beat = False
        while time.monotonic() < deadline and not beat:
            time.sleep(0.5)
            assert p.poll() is None, p.stdout.read()[-3000:]
            password = tmp_path / "bench-password"
            if not password.exists():
                continue
            try:
                page = requests.get(f"http://127.0.0.1:{port}/bench/", auth=("", password.read_text()), timeout=2).text
            except requests.ConnectionError:
                continue
            heartbeats = page.split("<h2>Heartbeats</h2>", 1)[-1].split("<h2>", 1)[0]
            beat = "demo-kiosk" in heartbeats
        assert beat, "the demo device never sent a heartbeat to the bench central"
        # Its config and token are where the demo says, the token private.
        assert (tmp_path / "kiosk.toml").exists()
        assert os.stat(tmp_path / keys.DEMO_TOKEN_FILE).st_mode & 0o077 == 0
        assert os.stat(tmp_path / "bench-password").st_mode & 0o077 == 0
        assert requests.get(f"http://127.0.0.1:{port}/bench/", timeout=2).status_code == 401  # not without it
        assert (tmp_path / keys.DEMO_DEVICE_DIR / keys.LEDGER_FILE).exists()
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            rc = "still running"
        assert rc == 0, p.stdout.read()[-4000:] if rc != "still running" else rc
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_sigterm_at_any_moment_of_start_up_stops_the_device(tmp_path):
    from tests.helpers import write_config

    cfg = write_config(tmp_path, {"device": {"roles": ["dispenser"]}})
    env = {**os.environ, "SDL_VIDEODRIVER": "offscreen"}
    for delay in (0.3, 0.8, 1.5, 3.0):
        p = subprocess.Popen(
            [sys.executable, "-m", "kiosk", "run", "--config", str(cfg)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            raise AssertionError(f"still running 20 s after SIGTERM sent {delay} s into start-up") from None
        # 0: our handler stopped the app; -15: the signal came before Python set it up.
        assert rc in (0, -signal.SIGTERM), rc

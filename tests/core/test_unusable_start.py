"""A broken device config or storage shows the out-of-service screen, never a black panel (issue 15.5).

Each case is a real `kiosk run` under SDL's offscreen driver, as systemd starts
it: it must come up (READY=1 on a real notify socket, with the reason in
STATUS for `systemctl status`), stay up, and stop cleanly with exit 0 on
SIGTERM, so systemd neither restarts it in a loop nor hits its start limit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from kiosk.core.bootguard import OutOfServiceRuntime, Unusable
from kiosk.core.config import rescue_config
from tests.helpers import AppHarness, write_config


def start_under_notify(tmp_path, config):
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    env = {**os.environ, "NOTIFY_SOCKET": sock_path, "SDL_VIDEODRIVER": "offscreen", "KIVY_NO_ARGS": "1"}
    env.pop("KIVY_HOME", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, sock


def ready_status(proc, sock, timeout=60.0) -> str:
    """The STATUS sent with READY=1; fails if the process exits first."""
    sock.settimeout(0.5)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            msg = sock.recv(4096).decode()
        except TimeoutError:
            if proc.poll() is not None:
                pytest.fail(f"kiosk run exited with {proc.returncode}: {proc.stderr.read()[-1500:]}")
            continue
        if "READY=1" in msg:
            return next((ln[7:] for ln in msg.splitlines() if ln.startswith("STATUS=")), "")
    pytest.fail("no READY=1 from kiosk run")


def typo(tmp_path):
    return write_config(tmp_path, {"display": {"idel_timeout": 60}}), "display.idel_timeout"


def open_token(tmp_path):
    path = write_config(tmp_path)
    os.chmod(tmp_path / "token", 0o644)
    return path, "central.token_file"


def storage_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    return write_config(tmp_path, {"storage": {"dir": str(tmp_path / "afile")}}), "storage.dir"


def storage_read_only(tmp_path):
    # Root writes into a mode-555 folder; sysfs refuses even root a new file there.
    d = tmp_path / "ro"
    if os.geteuid() == 0:
        d = "/sys/kernel"
    else:
        d.mkdir()
        os.chmod(d, 0o555)
    return write_config(tmp_path, {"storage": {"dir": str(d)}}), "storage.dir"


@pytest.fixture
def full_disk(tmp_path):
    """A real full filesystem: a 256 KiB tmpfs filled to the last block (root only)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)]).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        with open(mnt / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def storage_full(tmp_path, full_disk):
    return write_config(tmp_path, {"storage": {"dir": str(full_disk / "data")}}), "storage.dir"


@pytest.mark.parametrize("broken", [typo, open_token, storage_is_a_file, storage_read_only, storage_full])
def test_kiosk_run_stays_up_out_of_service_and_names_the_key(tmp_path, broken, request):
    if broken is storage_full:
        config, key = broken(tmp_path, request.getfixturevalue("full_disk"))
    else:
        config, key = broken(tmp_path)
    proc, sock = start_under_notify(tmp_path, config)
    try:
        status = ready_status(proc, sock)
        assert status.startswith("out of service: ") and key in status and str(config) in status
        assert proc.poll() is None  # still up: no restart, no start limit
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err[-1500:]
        assert "Traceback" not in err and key in err  # the journal has the line too
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()


def test_the_panel_shows_file_key_and_fix(tmp_path, monkeypatch):
    """What the technician reads on the panel, rendered by the real app."""
    config = write_config(tmp_path)
    line = f"{config}: central.token_file: {tmp_path}/token is readable by group or others (mode 644) (run: chmod 600)"
    oos = OutOfServiceRuntime(rescue_config(str(tmp_path / "scratch")), Unusable("device config", [line]), None)
    import kiosk.wiring

    monkeypatch.setattr(kiosk.wiring, "build_runtime", lambda cfg: oos)
    h = AppHarness(config)
    monkeypatch.undo()
    try:
        assert h.app.sm.current == "outofservice"
        h.find("暂停服务")
        text = h.app.screen("outofservice").ids.reason.text
        assert "device config unusable" in text and "central.token_file" in text and "chmod 600" in text
        assert "systemctl restart kiosk" in text and "boot-guard" not in text
    finally:
        h.close()


def fix_typo(tmp_path, config):
    write_config(tmp_path, {"display": {"idle_timeout": 60}})


def fix_storage(tmp_path, config):
    (tmp_path / "afile").unlink()
    (tmp_path / "afile").mkdir()


@pytest.mark.parametrize(("broken", "fix"), [(typo, fix_typo), (storage_is_a_file, fix_storage)])
def test_a_fixed_config_or_folder_restarts_into_service_without_a_visit(tmp_path, broken, fix):
    """The technician (or provisioning) corrects the file: the device sees it and
    exits with the restart code, which the unit turns into a start into service."""
    from kiosk.core.bootguard import RESTART_EXIT_CODE

    config, _key = broken(tmp_path)
    proc, sock = start_under_notify(tmp_path, config)
    try:
        assert ready_status(proc, sock).startswith("out of service: ")
        fix(tmp_path, config)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == RESTART_EXIT_CODE, err[-1500:]
        assert "is fixed: restarting into service" in err and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()


def test_the_rescue_screen_keeps_the_broken_files_valid_panel_settings(tmp_path):
    """A rotated 7" panel with a typo elsewhere: the reason is shown the right way up."""
    bad = tmp_path / "kiosk.toml"
    bad.write_text(
        '\ufeff[display]\nrotation = 90\nwidth = 800\nheight = 480\nlanguage = "en"\nidel_timeout = 60\n'
        'large_text = "yes"\n',
        encoding="utf-8",
    )
    cfg = rescue_config(str(tmp_path / "scratch"), bad)
    d = cfg.display
    assert (d.rotation, d.width, d.height, d.language) == (90, 800, 480, "en")
    assert d.large_text is False  # the invalid one keeps the built-in value
    assert rescue_config(str(tmp_path / "s2"), tmp_path / "missing.toml").display.rotation == 0
    (tmp_path / "garbage.toml").write_text("[[[", encoding="utf-8")
    assert rescue_config(str(tmp_path / "s3"), tmp_path / "garbage.toml").display.width == 1280

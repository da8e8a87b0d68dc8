"""The systemd unit, the udev rule and the installer, checked with the real tools where they run."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "kiosk.service"
RULES = ROOT / "systemd" / "99-kiosk.rules"
INSTALL = ROOT / "systemd" / "install.sh"


def unit_entries(text: str) -> dict[str, list[str]]:
    """section.key -> values (systemd keys may repeat, configparser cannot)."""
    out: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key}", []).append(value)
    return out


def _verify(tmp_path, text: str, name: str = "kiosk.service") -> subprocess.CompletedProcess:
    tool = shutil.which("systemd-analyze")
    if not tool:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    path = tmp_path / name
    path.write_text(text)
    # Outside a booted systemd it still parses and checks the unit offline;
    # SYSTEMD_LOG_LEVEL keeps unrelated host noise out of the way.
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "warning"}
    proc = subprocess.run([tool, "verify", str(path)], capture_output=True, text=True, env=env, timeout=60)
    if "Failed to initialize manager" in proc.stderr or "Failed to setup working directory" in proc.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {proc.stderr.strip()[:200]}")
    return proc


def _with_existing_binary(text: str) -> str:
    # The real ExecStart (/opt/hall-kiosk/current/venv/bin/kiosk) exists only on a device;
    # verify would rightly fail on it, so point it at a binary that exists.
    return re.sub(r"(?m)^ExecStart=\S+", "ExecStart=" + shutil.which("true"), text)


def test_systemd_analyze_verify_passes_on_the_unit(tmp_path):
    proc = _verify(tmp_path, _with_existing_binary(UNIT.read_text()))
    assert proc.returncode == 0, proc.stderr
    # Unknown keys and bad values are only warnings for systemd: none allowed.
    problems = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "kiosk.service" in ln]
    assert problems == []


def test_verify_here_really_catches_mistakes(tmp_path):
    """Control: the same run flags a misspelt key and a bad value, so the pass above means something."""
    broken = _with_existing_binary(UNIT.read_text()).replace("WatchdogSec=30", "WatchdogSecs=30")
    broken = broken.replace("Type=notify", "Type=notifi")
    proc = _verify(tmp_path, broken)
    out = proc.stdout + proc.stderr
    assert "WatchdogSecs" in out and "notifi" in out


def test_unit_has_what_a_kiosk_needs():
    e = unit_entries(UNIT.read_text())
    one = {k: v[-1] for k, v in e.items()}
    assert one["Service.Type"] == "notify"
    assert one["Service.NotifyAccess"] in ("main", "all")
    assert int(one["Service.WatchdogSec"]) >= 10
    assert one["Service.Restart"] == "on-failure"
    assert one["Service.User"] == "kiosk"
    assert one["Service.TTYPath"] == "/dev/tty1" and one["Service.PAMName"]
    assert one["Service.StandardInput"] == "tty-fail"
    assert "getty@tty1.service" in one["Unit.Conflicts"]
    assert int(one["Unit.StartLimitBurst"]) > 3  # above the boot guard's 3 crashed starts
    assert one["Service.ProtectSystem"] == "strict" and one["Service.StateDirectory"] == "kiosk"
    assert one["Service.NoNewPrivileges"] == "yes" and one["Service.PrivateTmp"] == "yes"
    assert one["Service.DevicePolicy"] == "closed"
    allowed = " ".join(e["Service.DeviceAllow"])
    devices = ("/dev/kiosk-printer", "/dev/kiosk-scanner", "/dev/kiosk-idcard")
    for dev in (*devices, "char-drm", "char-input", "char-gpiochip", "/dev/tty1"):
        assert dev in allowed
    # USB printer class (major 180 "usb"), a Pi's own UARTs (ttyAMA0, ttyS0 = serial0), USB-serial.
    for dev in ("char-usb", "char-ttyS", "char-ttyAMA", "char-ttyUSB", "char-ttyACM"):
        assert f"{dev} rw" in [v.strip() for v in e["Service.DeviceAllow"]]
    assert {"dialout", "lp", "gpio"} <= set(one["Service.SupplementaryGroups"].split())
    env = dict(v.split("=", 1) for v in e["Service.Environment"])
    assert env["SDL_VIDEODRIVER"] == "kmsdrm" and env["KIVY_WINDOW"] == "sdl2" and env["KIVY_GL_BACKEND"] == "sdl2"
    from kiosk.core.bootguard import RESTART_EXIT_CODE

    assert one["Service.RestartForceExitStatus"] == str(RESTART_EXIT_CODE)
    assert one["Install.WantedBy"] == "multi-user.target"


def test_udev_rule_names_printer_and_scanner_and_keeps_modemmanager_away():
    lines = [ln for ln in RULES.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    names = set()
    usb_printer = []
    for line in lines:
        assert re.search(r'ATTRS\{idVendor\}=="[0-9a-f]{4}"', line)
        assert re.search(r'ATTRS\{idProduct\}=="[0-9a-f]{4}"', line)
        name = re.search(r'SYMLINK\+="([^"]+)"', line).group(1)
        names.add(name)
        if 'SUBSYSTEM=="usbmisc"' in line:  # usblp's /dev/usb/lp*: not a tty, ModemManager leaves it alone
            assert name == "kiosk-printer" and 'KERNEL=="lp[0-9]*"' in line and 'GROUP="lp"' in line
            usb_printer.append(line)
        else:
            assert 'SUBSYSTEM=="tty"' in line and 'ENV{ID_MM_DEVICE_IGNORE}="1"' in line
        # every clause is key op "value", comma separated: a typo makes udev skip the rule
        for clause in line.split(", "):
            assert re.fullmatch(r'[A-Z_]+(\{[A-Za-z_]+\})?(==|\+=|=)"[^"]*"', clause), clause
    assert names == {"kiosk-printer", "kiosk-scanner", "kiosk-idcard"}
    assert len(usb_printer) == 1


def test_install_script_dry_run_does_every_step(tmp_path):
    proc = subprocess.run(
        [
            "bash",
            str(INSTALL),
            "--role",
            "dispenser",
            "--printer-id",
            "0416:5011",
            "--scanner-id",
            "05E0:1701",
            "--idcard-id",
            "10C4:EA60",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for pkg in ("libgles2", "libegl1", "libgbm1", "libgl1-mesa-dri", "fonts-wqy-microhei", "libmtdev1"):
        assert pkg in out
    assert "venv --system-site-packages" in out
    assert re.search(r"usermod -a -G video,render,input,dialout,lp,gpio kiosk", out)
    assert "config/dispenser.toml /etc/kiosk/kiosk.toml" in out
    assert re.search(r"install -m 0600 -o kiosk -g kiosk /dev/null /etc/kiosk/token", out)
    assert "/etc/systemd/system/kiosk.service" in out and "/etc/udev/rules.d/99-kiosk.rules" in out
    assert "systemctl set-default multi-user.target" in out
    assert "systemctl enable kiosk.service" in out
    # the USB ids given end up in the rule, lower-cased, for the serial and the USB printer-class line
    printer = r'rule: .*idVendor\}=="0416", ATTRS\{idProduct\}=="5011", SYMLINK\+="kiosk-printer"'
    assert len(re.findall(printer, out)) == 2
    assert re.search(r'rule: .*idVendor\}=="05e0", ATTRS\{idProduct\}=="1701", SYMLINK\+="kiosk-scanner"', out)
    assert re.search(r'rule: .*idVendor\}=="10c4", ATTRS\{idProduct\}=="ea60", SYMLINK\+="kiosk-idcard"', out)


def test_install_script_refuses_bad_arguments():
    proc = subprocess.run(["bash", str(INSTALL), "--role", "printer", "--dry-run"], capture_output=True, text=True)
    assert proc.returncode != 0 and "dispenser, lookup or pad" in proc.stderr
    proc = subprocess.run(
        ["bash", str(INSTALL), "--role", "pad", "--printer-id", "1a86-7523", "--dry-run"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "vendor:product" in proc.stderr


@pytest.mark.parametrize("role", ["dispenser", "lookup", "pad"])
def test_example_configs_match_the_install_layout(role):
    import tomllib

    data = tomllib.loads((ROOT / "config" / f"{role}.toml").read_text())
    assert data["central"]["token_file"] == "/etc/kiosk/token"
    assert data["storage"]["dir"] == "/var/lib/kiosk"  # the unit's StateDirectory, the only writable place


def test_install_script_tells_identical_printers_apart_by_serial():
    cmd = ["bash", str(INSTALL), "--role", "dispenser", "--printer-id", "0416:5011", "--dry-run"]
    out = subprocess.run([*cmd, "--printer-serial", "SN2024-07"], capture_output=True, text=True, timeout=60).stdout
    rules = [ln for ln in out.splitlines() if 'SYMLINK+="kiosk-printer"' in ln]
    assert len(rules) == 2 and all('ATTRS{idProduct}=="5011", ATTRS{serial}=="SN2024-07"' in r for r in rules)
    bad = subprocess.run([*cmd, "--printer-serial", 'x" RUN+="/bin/sh'], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "--printer-serial" in bad.stderr


def _exposure(tmp_path, text: str) -> float:
    tool = shutil.which("systemd-analyze")
    if not tool:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    path = tmp_path / "kiosk.service"
    path.write_text(text)
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "warning"}
    proc = subprocess.run(
        [tool, "security", "--offline=true", str(path)], capture_output=True, text=True, env=env, timeout=60
    )
    m = re.search(r"Overall exposure level for kiosk\.service: ([0-9.]+)", proc.stdout + proc.stderr)
    if proc.returncode != 0 and m is None:
        pytest.skip(f"systemd-analyze security --offline cannot run here: {proc.stderr.strip()[:200]}")
    assert m, proc.stdout[-2000:]
    return float(m.group(1))


def test_the_unit_is_hardened_to_2_5_or_lower(tmp_path):
    """systemd's own exposure score: no capabilities, a system-call filter, no IPC left behind …"""
    assert _exposure(tmp_path, UNIT.read_text()) <= 2.5


def test_the_exposure_score_really_moves(tmp_path):
    """Control: taking the capability bound and the system-call filter out raises the score."""
    loose = re.sub(r"(?m)^(CapabilityBoundingSet|SystemCallFilter)=.*\n", "", UNIT.read_text())
    assert _exposure(tmp_path, loose) > _exposure(tmp_path, UNIT.read_text()) + 1.0


@pytest.mark.parametrize("name", ["kiosk-update.service", "kiosk-update.timer"])
def test_the_update_timer_and_its_service_verify(tmp_path, name):
    """kiosk-update.timer starts kiosk-update.service, which installs the central's offer and restarts the kiosk."""
    text = (ROOT / "systemd" / name).read_text()
    if name.endswith(".timer"):
        (tmp_path / "kiosk-update.service").write_text(
            _with_existing_binary((ROOT / "systemd" / "kiosk-update.service").read_text())
        )
    proc = _verify(tmp_path, _with_existing_binary(text), name)
    problems = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "kiosk-update" in ln]
    assert proc.returncode == 0 and problems == [], proc.stdout + proc.stderr
    entries = unit_entries(text)
    if name.endswith(".service"):
        assert (
            "--central" in entries["Service.ExecStart"][0]
            and "--restart-unit kiosk.service" in entries["Service.ExecStart"][0]
        )
    else:
        assert entries["Timer.RandomizedDelaySec"] and entries["Install.WantedBy"] == ["timers.target"]

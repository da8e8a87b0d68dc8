"""`kiosk provision` end to end against the bench central over real HTTP: one
checked config and one working token per inventory row; a bad row gets neither."""

from __future__ import annotations

import stat

from kiosk.core.config import load_config
from kiosk.sync.client import CentralClient
from tests.helpers import DEMO
from tests.release.conftest import KIOSK, run

INVENTORY = """id,roles,window,printer_port,scanner_port,printer_profile,group
hall01-kiosk01,dispenser lookup,,/dev/kiosk-printer,/dev/kiosk-scanner,,pilot
hall01-pad01,pad,01,,,,pilot
hall01-pad07,pad,07,,,,
"""


def template(tmp_path):
    """The hall's shared settings: the demo config with the device's own paths."""
    text = DEMO.read_text(encoding="utf-8")
    text = text.replace('dir = "demo-data"', 'dir = "/var/lib/kiosk"')
    path = tmp_path / "hall.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_provision_writes_checked_configs_and_tokens_that_work(tmp_path, central):
    inv = tmp_path / "hall.csv"
    inv.write_text(INVENTORY, encoding="utf-8")
    pw = tmp_path / "pw"
    pw.write_text(central.bench_password)
    out = tmp_path / "out"
    cmd = [*KIOSK, "provision", "--inventory", inv, "--template", template(tmp_path), "--out", out]
    proc = run([*cmd, "--central", central.url, "--password-file", pw])
    assert proc.stdout.count("token written (0600)") == 3

    kiosk = load_config(out / "hall01-kiosk01" / "kiosk.toml")
    assert kiosk.device.id == "hall01-kiosk01" and list(kiosk.device.roles) == ["dispenser", "lookup"]
    assert kiosk.printer.backend == "serial" and kiosk.printer.port == "/dev/kiosk-printer"
    assert kiosk.scanner.port == "/dev/kiosk-scanner" and kiosk.central.token_file == "/etc/kiosk/token"
    pad = load_config(out / "hall01-pad07" / "kiosk.toml")
    assert pad.pad.window == "07" and list(pad.device.roles) == ["pad"]
    # Each token is the device's own, scoped to its roles and window, and the central knows its group.
    for device, window in (("hall01-kiosk01", None), ("hall01-pad07", "07")):
        token_file = out / device / "token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        who = CentralClient(central.url, token_file.read_text().strip()).whoami()
        assert who["device_id"] == device and who["window"] == window
    assert central.store.group_of("hall01-pad01") == "pilot"
    assert central.store.group_of("hall01-pad07") == "default"


def test_a_bad_row_gets_no_config_and_no_token_and_says_where(tmp_path, central):
    inv = tmp_path / "hall.csv"
    inv.write_text(INVENTORY + "hall01-bad,pad;printer,,,,,\nhall01-pad99,pad,99,,,,\n", encoding="utf-8")
    pw = tmp_path / "pw"
    pw.write_text(central.bench_password)
    out = tmp_path / "out"
    cmd = [*KIOSK, "provision", "--inventory", inv, "--template", template(tmp_path), "--out", out]
    proc = run([*cmd, "--central", central.url, "--password-file", pw], ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{inv}:5 (hall01-bad): device.roles" in proc.stderr  # the check-config message, with the row
    assert f"{inv}:6 (hall01-pad99): no token" in proc.stderr  # the central has no window 99
    assert "2 of 5 devices not provisioned" in proc.stderr
    for bad in ("hall01-bad", "hall01-pad99"):
        assert not (out / bad / "kiosk.toml").exists() and not (out / bad / "token").exists()
    assert (out / "hall01-pad01" / "token").exists()
    # A wrong password: no device gets a token.
    pw.write_text("not-the-password")
    proc = run([*cmd, "--central", central.url, "--password-file", pw, "--out", tmp_path / "o2"], ok=False)
    assert proc.returncode == 1 and "HTTP 401" in proc.stderr

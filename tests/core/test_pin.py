"""No shipped secrets, no cheap PINs (issue 15 item 10)."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from kiosk.core.config import load_config
from kiosk.core.pin import DEMO_PIN, DEMO_PIN_HASH, hash_pin, verify_pin
from tests.helpers import ROOT, write_config


@pytest.mark.parametrize("role", ["dispenser", "lookup", "pad"])
def test_example_configs_carry_no_pin_and_check_config_says_how_to_set_one(role):
    path = ROOT / "config" / f"{role}.toml"
    assert "pin_hash" not in tomllib.loads(path.read_text(encoding="utf-8")).get("technician", {})
    warnings = {w.key: w for w in load_config(path).warnings}
    assert "kiosk hash-pin" in warnings["technician.pin_hash"].fix


def test_the_demo_pin_on_a_device_is_a_warning(tmp_path):
    cfg = load_config(
        write_config(tmp_path, {"device": {"id": "hall01-kiosk07"}, "technician": {"pin_hash": DEMO_PIN_HASH}})
    )
    assert any(w.key == "technician.pin_hash" and "demo" in w.what for w in cfg.warnings)
    assert verify_pin(DEMO_PIN, DEMO_PIN_HASH)  # it really is the published one


@pytest.mark.parametrize("pin", ["1234", "12345", "abcdef", "1234567890123"])
def test_short_or_odd_pins_are_refused(pin):
    with pytest.raises(ValueError, match="6 to 12 digits"):
        hash_pin(pin)


def test_hash_pin_prints_a_line_ready_to_paste(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk", "hash-pin", "--pin", "135790"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    pasted = tomllib.loads("[technician]\n" + proc.stdout)["technician"]["pin_hash"]
    assert verify_pin("135790", pasted) and not verify_pin("135791", pasted)
    short = subprocess.run(
        [sys.executable, "-m", "kiosk", "hash-pin", "--pin", "1234"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert short.returncode == 2 and "6 to 12 digits" in short.stderr and "Traceback" not in short.stderr

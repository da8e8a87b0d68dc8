"""A screenshot or preview leaves the device's real ledger, leases and the central untouched (15.8)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from kiosk.core import keys
from kiosk.core.config import load_config
from kiosk.wiring import build_runtime
from tests.helpers import ROOT, write_config


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "-"


def test_screenshots_lease_nothing_and_write_nothing_real(tmp_path, central):
    token = central.issue_token("demo-kiosk")
    cfg_path = write_config(tmp_path, {"central": {"url": central.url}}, token=token)
    cfg = load_config(cfg_path)
    rt = build_runtime(cfg)  # the device as it stands, once: its ledger exists
    rt.stop()
    ledger = next(tmp_path.rglob(keys.LEDGER_FILE))
    before = digest(ledger), central.store.leases()
    requests_before = len(central.store.events())
    for cmd in (
        ["screenshot", "--screen", "dispenser"],
        ["dispenser-screenshot", "--state", "done"],
        ["pad-screenshot", "--state", "rate"],
        ["lookup-screenshot", "--state", "reviewing"],
    ):
        out = tmp_path / (cmd[0] + ".png")
        proc = subprocess.run(
            [sys.executable, "-m", "kiosk", cmd[0], "--config", str(cfg_path), *cmd[1:], "--out", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert out.stat().st_size > 5000
    after = digest(ledger), central.store.leases()
    assert after == before  # no ticket, no lease, no event on the device
    assert len(central.store.events()) == requests_before  # and nothing reached the central

"""No boot loop: crashed starts are counted; the third one in a row gives the out-of-service screen."""

import subprocess
import sys

import pytest

from kiosk.core.bootguard import BootGuard, OutOfServiceRuntime
from kiosk.core.config import load_config
from kiosk.wiring import build_runtime
from tests.helpers import AppHarness, write_config


class FakeClock:
    def __init__(self):
        self.t = 1_800_000_000.0

    def __call__(self):
        return self.t


def test_counting_crashes_healthy_and_clean_exits(tmp_path):
    clock = FakeClock()
    g = lambda: BootGuard(tmp_path, max_crashed=3, window_s=900, clock=clock)
    for _ in range(3):
        assert g().begin() is None  # each of these "crashes": no clean exit
        clock.t += 10
    tripped = g().begin()
    assert tripped and tripped.crashed_starts == 3

    g().reset()
    a = g()
    assert a.begin() is None
    a.clean_exit()  # systemctl stop / technician restart: not a crash
    for _ in range(2):
        assert g().begin() is None
        clock.t += 10
    b = g()
    assert b.begin() is None  # 2 crashed before: still fine
    b.mark_healthy()  # ... and this one stayed up: count cleared
    for _ in range(3):
        assert g().begin() is None
        clock.t += 10

    g().reset()
    for _ in range(3):
        g().begin()
        clock.t += 400  # spread out beyond the window: never trips
    assert g().begin() is None


def test_error_text_is_kept_and_scrubbed(tmp_path):
    g = BootGuard(tmp_path)
    g.begin()
    g.record_error(ValueError("bad row for 110105194912310020 phone 13812345678\nmore"))
    st = g.state()
    assert st["last_error"].startswith("ValueError: bad row for ***")
    assert "13812345678" not in st["last_error"] and "more" not in st["last_error"]


@pytest.fixture
def crashing_config(tmp_path):
    # A font path that does not exist: a provisioning mistake that kills every start.
    return write_config(tmp_path, {"display": {"font": str(tmp_path / "gone.ttf")}})


def start_device(config):
    """One real start of `kiosk run`, as systemd does it."""
    return subprocess.run(
        [sys.executable, "-m", "kiosk", "run", "--config", str(config)], capture_output=True, text=True, timeout=60
    )


def test_repeated_crashed_starts_show_out_of_service_with_data_intact(tmp_path, crashing_config, monkeypatch):
    cfg = load_config(crashing_config)
    rt = build_runtime(cfg)  # records made before the trouble started
    rt.start(without=["sync"])
    with rt.ledger.transaction() as tx:
        ids = [rt.ledger.add_event(tx, "ticket", {"n": i}) for i in range(5)]
    rt.stop()

    for _ in range(3):
        proc = start_device(crashing_config)
        assert proc.returncode == 3, proc.stderr[-800:]

    guard = BootGuard(cfg.storage.dir)
    tripped = guard.begin()  # the fourth start, in this process: the app harness renders it
    assert tripped and tripped.crashed_starts == 3 and "FontMissing" in tripped.last_error

    oos = OutOfServiceRuntime(cfg, tripped, guard)
    # The harness builds a Runtime; on this start run() builds the out-of-service one instead.
    import kiosk.wiring

    monkeypatch.setattr(kiosk.wiring, "build_runtime", lambda cfg: oos)
    h = AppHarness(crashing_config)
    monkeypatch.undo()
    try:
        app = h.app
        assert app.sm.current == "outofservice"
        assert set(app.sm.screen_names) == {"outofservice"}  # no role screen started (service: on first use)
        h.find("暂停服务")
        reason = h.app.screen("outofservice").ids.reason.text
        assert "3 starts" in reason and "FontMissing" in reason and cfg.device.id in reason
        h.app.toggle_language()
        h.pump(2)
        h.find("Out of service")
    finally:
        h.close()

    # data intact, and a reset (cause fixed) starts normally again
    rt = build_runtime(cfg)
    rt.start(without=["sync"])
    try:
        assert rt.ledger.integrity_ok()
        assert [e.uuid for e in rt.ledger.pending_events()] == ids
    finally:
        rt.stop()
    guard.reset()
    assert BootGuard(cfg.storage.dir).begin() is None


def test_boot_guard_command_shows_and_resets(tmp_path, crashing_config, capsys):
    from kiosk.cli import main

    cfg = load_config(crashing_config)
    for _ in range(2):
        BootGuard(cfg.storage.dir).begin()
    assert main(["boot-guard", "--config", str(crashing_config)]) == 0
    assert "crashed starts in the last 15 min: 2" in capsys.readouterr().out
    assert main(["boot-guard", "--config", str(crashing_config), "--reset"]) == 0
    assert BootGuard(cfg.storage.dir).state()["recent_unhealthy_starts"] == 0

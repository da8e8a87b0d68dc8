"""`kiosk selftest`: a verdict per line, exit 1 when a required check fails; real ptys, real gpiozero."""

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.core.config import load_config
from kiosk.technician import selftest
from kiosk.wiring import build_runtime
from tests.helpers import write_config


def run_cli(capsys, *argv):
    code = main(["selftest", *argv])
    return code, capsys.readouterr().out


def rows_by_name(out_json):
    return {r["name"]: r for r in json.loads(out_json)["rows"]}


def test_demo_config_passes_with_a_row_per_check(tmp_path, capsys):
    code, out = run_cli(capsys, "--config", str(write_config(tmp_path)))
    assert code == 0, out
    for name in ("config", "ledger", "disk", "font", "printer", "scanner", "gpio", "central", "clock"):
        assert any(line.startswith(name + " ") for line in out.splitlines()), name
    assert out.strip().splitlines()[-1].startswith("ok:")


def test_invalid_config_is_a_failed_row_and_exit_1(tmp_path, capsys):
    path = write_config(tmp_path, {"display": {"rotation": 45}})
    code, out = run_cli(capsys, "--config", str(path))
    assert code == 1
    assert "FAIL" in out and "display.rotation" in out


def test_missing_serial_scanner_fails_and_a_real_pty_passes(tmp_path, capsys):
    path = write_config(tmp_path, {"scanner": {"backend": "serial", "port": str(tmp_path / "nope")}})
    code, out = run_cli(capsys, "--config", str(path), "--json")
    assert code == 1
    row = rows_by_name(out)["scanner"]
    assert row["verdict"] == "fail" and row["required"] and "does not exist" in row["detail"]

    master, slave = os.openpty()
    try:
        path = write_config(tmp_path, {"scanner": {"backend": "serial", "port": os.ttyname(slave)}})
        code, out = run_cli(capsys, "--config", str(path), "--json")
        assert rows_by_name(out)["scanner"]["verdict"] == "ok"
        assert code == 0
    finally:
        os.close(master)
        os.close(slave)


def test_serial_printer_port_missing_fails_for_a_dispenser(tmp_path, capsys):
    path = write_config(
        tmp_path,
        {"device": {"roles": ["dispenser"]}, "printer": {"backend": "serial", "port": str(tmp_path / "kiosk-printer")}},
    )
    code, out = run_cli(capsys, "--config", str(path), "--json")
    row = rows_by_name(out)["printer"]
    if row["detail"].startswith("serial printer not attached"):
        pytest.fail("port check skipped")
    assert code == 1 and row["verdict"] == "fail"


def test_gpio_pins_claimable_with_the_mock_factory(tmp_path, capsys):
    path = write_config(
        tmp_path,
        {
            "device": {"roles": ["pad"]},
            "pad": {"keypad_pins": [5, 6, 13, 19, 26], "led_pins": [12, 16, 20, 21, 25], "clerk_button_pin": 4},
        },
    )
    _code, out = run_cli(capsys, "--config", str(path), "--json")
    row = rows_by_name(out)["gpio"]
    assert row["verdict"] == "ok" and "11 pins" in row["detail"], row


@pytest.mark.skipif(Path("/proc/device-tree/model").exists(), reason="a real Pi has GPIO")
def test_gpio_without_a_gpio_header_fails_with_a_hint(tmp_path, capsys):
    path = write_config(
        tmp_path, {"device": {"roles": ["pad"]}, "gpio": {"pin_factory": "native"}, "pad": {"clerk_button_pin": 4}}
    )
    code, out = run_cli(capsys, "--config", str(path), "--json")
    row = rows_by_name(out)["gpio"]
    assert code == 1 and row["verdict"] == "fail" and "gpio" in row["detail"]


@pytest.fixture
def rt(tmp_path):
    r = build_runtime(load_config(write_config(tmp_path)))
    r.start(without=["sync"])
    yield r
    r.stop()


def test_clock_in_the_past_or_before_the_newest_record_fails(rt):
    old = datetime(2021, 3, 1, tzinfo=UTC)
    assert selftest.check_clock(rt.cfg, rt, now=old).verdict == "fail"
    with rt.ledger.transaction() as tx:
        rt.ledger.add_event(tx, "test", {"n": 1})
    now = datetime.now(UTC).astimezone()
    assert selftest.check_clock(rt.cfg, rt, now=now, synced=True).verdict == "ok"
    assert selftest.check_clock(rt.cfg, rt, now=now - timedelta(hours=2)).verdict == "fail"
    assert selftest.check_clock(rt.cfg, rt, now=now - timedelta(seconds=30)).verdict == "warn"


def test_clock_far_in_the_future_fails_and_an_unsynchronised_one_warns(rt):
    future = selftest.check_clock(rt.cfg, rt, now=datetime(2099, 1, 1, tzinfo=UTC), synced=True)
    assert future.verdict == "fail" and "far in the future" in future.detail
    unsynced = selftest.check_clock(rt.cfg, rt, now=datetime.now(UTC).astimezone(), synced=False)
    assert unsynced.verdict == "warn" and "timedatectl" in unsynced.detail and not unsynced.required


def test_low_disk_fails_the_run(rt, monkeypatch):
    monkeypatch.setattr(selftest, "MIN_FREE_MB", 10**9)
    result = selftest.run_checks(rt.cfg, rt)
    disk = next(r for r in result.rows if r.name == "disk")
    assert disk.verdict == "fail" and not result.ok


def test_damaged_ledger_fails(tmp_path, capsys):
    path = write_config(tmp_path)
    rt = build_runtime(load_config(path))
    rt.start(without=["sync"])
    with rt.ledger.transaction() as tx:
        for i in range(400):
            rt.ledger.add_event(tx, "test", {"n": i, "pad": "x" * 200})
    db = rt.ledger.path
    rt.ledger._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rt.stop()
    raw = bytearray(Path(db).read_bytes())
    for off in range(4096 * 3, len(raw), 4096):  # smash page headers of later b-tree pages
        raw[off : off + 16] = b"\xff" * 16
    Path(db).write_bytes(bytes(raw))
    code, out = run_cli(capsys, "--config", str(path), "--json")
    assert code == 1
    rows = rows_by_name(out)
    assert rows["ledger"]["verdict"] == "fail"  # also when the damage stops the runtime from opening it


def test_background_check_lands_on_the_runtime(rt):
    t = selftest.start_background(rt)
    t.join(20)
    res = rt.selftest_result
    assert res["ok"] is True and {r["name"] for r in res["rows"]} >= {"ledger", "clock"}
    json.dumps(res)  # heartbeat-ready


def test_a_crashing_check_becomes_a_fail_row(rt):
    def check_broken(cfg, rt):
        raise RuntimeError("boom")

    result = selftest.run_checks(rt.cfg, rt, checks=(selftest.check_disk, check_broken))
    assert [r.name for r in result.rows] == ["disk", "broken"]
    assert result.rows[1].verdict == "fail" and not result.ok


def test_hid_scanner_row_names_the_missing_node_and_the_group(tmp_path, capsys):
    path = write_config(tmp_path, {"device": {"roles": ["lookup"]}, "scanner": {"backend": "hid", "port": "/nope"}})
    code, out = run_cli(capsys, "--config", str(path), "--json")
    row = rows_by_name(out)["scanner"]
    assert code == 1 and row["verdict"] == "fail" and "/dev/input/by-id" in row["detail"]
    # A character device that is no input device: it opens, it cannot be grabbed.
    path = write_config(tmp_path, {"device": {"roles": ["lookup"]}, "scanner": {"backend": "hid", "port": "/dev/null"}})
    code, out = run_cli(capsys, "--config", str(path), "--json")
    row = rows_by_name(out)["scanner"]
    assert row["verdict"] == "fail" and "cannot be grabbed" in row["detail"] and "event-kbd" in row["detail"]

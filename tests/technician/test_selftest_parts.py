"""Self-check rows against real parts: a printer on a real pty pair answering DLE EOT,
the bench central over loopback HTTP, gpiozero's MockFactory pins."""

import json

import pytest

from kiosk.cli import main
from kiosk.core.config import load_config
from kiosk.technician import selftest
from kiosk.wiring import build_runtime
from tests.devices.conftest import PtyDevice
from tests.helpers import write_config

ONLINE = 0x12  # DLE EOT 1: online;      DLE EOT 4: paper ok
PAPER_OUT = 0x72  # DLE EOT 4: bits 5-6 set, roll end


def selftest_json(capsys, path):
    code = main(["selftest", "--config", str(path), "--json"])
    out = json.loads(capsys.readouterr().out)
    return code, {r["name"]: r for r in out["rows"]}


# ---- printer: the dispenser's own PrinterWorker on a pty ---------------------


@pytest.fixture
def printer_pty():
    made = []

    def make(answers):
        dev = PtyDevice(answers=answers)
        made.append(dev)
        return dev

    yield make
    for dev in made:
        dev.unplug()


def dispenser_config(tmp_path, port):
    return write_config(
        tmp_path,
        {"device": {"roles": ["dispenser"]}, "printer": {"backend": "serial", "port": port, "status_timeout": 0.2}},
    )


@pytest.mark.parametrize(
    "answers, verdict, words",
    [
        ({1: ONLINE, 4: ONLINE}, "ok", "online, paper ok"),
        ({1: ONLINE, 4: PAPER_OUT}, "fail", "out of paper"),
        ({}, "warn", "status unknown"),  # some printers never answer DLE EOT
    ],
)
def test_printer_row_from_the_running_printer_worker(tmp_path, printer_pty, answers, verdict, words):
    dev = printer_pty(answers)
    rt = build_runtime(load_config(dispenser_config(tmp_path, dev.path)))
    rt.start(without=["sync"])
    try:
        row = selftest.check_printer(rt.cfg, rt)
    finally:
        rt.stop()
    assert (row.verdict, row.required) == (verdict, True), row
    assert words in row.detail and dev.path in row.detail
    assert 1 in dev.queries  # it really asked the printer over the line


def test_paper_out_fails_the_selftest_command(tmp_path, printer_pty, capsys):
    dev = printer_pty({1: ONLINE, 4: PAPER_OUT})
    code, rows = selftest_json(capsys, dispenser_config(tmp_path, dev.path))
    assert code == 1 and rows["printer"]["verdict"] == "fail"
    assert "load a new roll" in rows["printer"]["detail"]


def test_unplugged_printer_port_fails_with_what_to_check(tmp_path, capsys):
    code, rows = selftest_json(capsys, dispenser_config(tmp_path, str(tmp_path / "kiosk-printer")))
    assert code == 1 and rows["printer"]["verdict"] == "fail"
    assert "kiosk-printer" in rows["printer"]["detail"]


# ---- central: whoami against the bench central on 127.0.0.1 -----------------


def central_config(tmp_path, central, token, device_id="hall01-lookup01"):
    return write_config(
        tmp_path,
        {
            "device": {"id": device_id, "roles": ["lookup"]},
            "central": {"url": central.url, "connect_timeout": 0.5, "read_timeout": 2.0},
        },
        token=token,
    )


def test_good_token_is_reachable_and_authorised(tmp_path, central):
    rt = build_runtime(load_config(central_config(tmp_path, central, central.issue_token("hall01-lookup01"))))
    rt.start(without=["sync"])
    try:
        row = selftest.check_central(rt.cfg, rt)
    finally:
        rt.stop()
    assert row.verdict == "ok" and "reachable and authorised as hall01-lookup01" in row.detail


def test_revoked_token_fails_not_authorised_and_fails_the_run(tmp_path, central, capsys):
    path = central_config(tmp_path, central, central.issue_token("hall01-lookup01"))
    central.store.revoke_tokens("hall01-lookup01")
    code, rows = selftest_json(capsys, path)
    row = rows["central"]
    assert code == 1 and row["verdict"] == "fail" and row["required"]
    assert "NOT AUTHORISED" in row["detail"] and "new token for hall01-lookup01" in row["detail"]
    assert str(tmp_path / "token") in row["detail"]


def test_wrong_token_fails_not_authorised(tmp_path, central):
    cfg = load_config(central_config(tmp_path, central, "not-a-token-the-central-issued"))
    row = selftest.check_central(cfg, None)  # no runtime: the check makes its own client
    assert row.verdict == "fail" and "NOT AUTHORISED" in row.detail


def test_token_of_another_device_is_named(tmp_path, central):
    cfg = load_config(central_config(tmp_path, central, central.issue_token("hall01-pad07")))
    row = selftest.check_central(cfg, None)
    assert row.verdict == "fail" and "belongs to device hall01-pad07" in row.detail


def test_central_down_is_unreachable_but_not_required(tmp_path, central, capsys):
    path = central_config(tmp_path, central, central.issue_token("hall01-lookup01"))
    central.stop()
    code, rows = selftest_json(capsys, path)
    row = rows["central"]
    assert row["verdict"] == "fail" and not row["required"] and "unreachable" in row["detail"]
    assert "works offline" in row["detail"]
    assert code == 0  # the device does its job offline


# ---- GPIO: gpiozero's MockFactory --------------------------------------------

KEYPAD = [5, 6, 13, 19, 26]
LEDS = [12, 16, 20, 21, 25]


def pad_config(tmp_path, factory):
    return write_config(
        tmp_path,
        {
            "device": {"roles": ["pad"]},
            "gpio": {"pin_factory": factory},
            "pad": {"keypad_pins": KEYPAD, "led_pins": LEDS, "clerk_button_pin": 4},
        },
    )


def test_pins_claimable_without_a_runtime(tmp_path):
    row = selftest.check_gpio(load_config(pad_config(tmp_path, "mock")), None)
    assert row.verdict == "ok" and "11 pins: 11 claimable" in row.detail


def test_pins_held_by_the_running_pad_keys_are_ok(tmp_path):
    rt = build_runtime(load_config(pad_config(tmp_path, "mock")))
    rt.start(without=["sync"])
    try:
        assert rt.pad.buttons is not None and rt.pad.leds is not None
        row = selftest.check_gpio(rt.cfg, rt)
    finally:
        rt.stop()
    assert row.verdict == "ok" and "11 held by the running buttons/LEDs" in row.detail


@pytest.fixture
def shared_mock_factory():
    """gpiozero's default factory as a MockFactory: what 'native' uses, shared like a Pi's GPIO chip."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    old = Device.pin_factory
    Device.pin_factory = MockFactory()
    yield Device.pin_factory
    Device.pin_factory.close()
    Device.pin_factory = old


def test_a_pin_claimed_by_something_else_fails_naming_it(tmp_path, shared_mock_factory, capsys):
    from gpiozero import LED

    other = LED(13, pin_factory=shared_mock_factory)  # another program's LED on the ★3 key pin
    try:
        code, rows = selftest_json(capsys, pad_config(tmp_path, "native"))
    finally:
        other.close()
    row = rows["gpio"]
    assert code == 1 and row["verdict"] == "fail"
    assert "GPIO13 (keypad 3)" in row["detail"] and "GPIOPinInUse" in row["detail"]
    assert "GPIO5 " not in row["detail"]  # only the pin that is taken is named


# ---- ID card reader: the emulated GA/T 467 reader on a pty -------------------


def test_idcard_rows_see_the_reader_and_the_hall_key(tmp_path, capsys):
    from tests.helpers import wait_until
    from tests.idcard_emulator import IdCardReaderEmulator

    emu = IdCardReaderEmulator(tmp_path / "kiosk-idcard")
    key = tmp_path / "hall.key"
    key.write_text("ab" * 32)
    key.chmod(0o600)
    path = write_config(
        tmp_path,
        {"idcard": {"backend": "serial", "port": str(emu.link), "hall_key_file": str(key), "answer_timeout": 0.3}},
    )
    try:
        code, rows = selftest_json(capsys, path)
        assert rows["idcard"]["verdict"] == "ok" and rows["idcard key"]["verdict"] == "ok"
        assert rows["idcard"]["required"] is False
        # A reader that stops answering fails its row once the running reader has asked it.
        emu.silent = True
        rt = build_runtime(load_config(path))
        try:
            rt.start(only=["idcard"])
            assert wait_until(lambda: rt.dispenser.idcard_reader.answering is False, 5)
            row = selftest.check_idcard(rt.cfg, rt)[0]
            assert row.verdict == selftest.FAIL and "does not answer" in row.detail
        finally:
            rt.stop()
        key.chmod(0o644)  # a key others can read is a config error: the config row names it
        code, rows = selftest_json(capsys, path)
        assert code == 1 and rows["config"]["verdict"] == "fail"
        assert "idcard.hall_key_file" in rows["config"]["detail"] and "chmod 600" in rows["config"]["detail"]
    finally:
        emu.unplug()

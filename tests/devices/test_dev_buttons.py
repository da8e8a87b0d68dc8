"""Buttons and LEDs on gpiozero's own MockFactory."""

import os
import tempfile
import threading
import time

import pytest
from gpiozero import Button
from gpiozero.exc import GPIOPinInUse
from gpiozero.pins.mock import MockFactory

from devices.buttons import ButtonBank, GPIOSetupError, LedBank, make_pin_factory

KEYS = {"star5": 5, "star4": 6, "star3": 13, "star2": 19, "star1": 26}


@pytest.fixture
def factory():
    f = make_pin_factory("mock")
    yield f
    f.reset()


def press(factory, pin):
    factory.pin(pin).drive_low()  # pull-up: pressed = pulled to ground
    factory.pin(pin).drive_high()


def test_pin_factory_kinds():
    assert isinstance(make_pin_factory("mock"), MockFactory)
    assert make_pin_factory("default") is None  # gpiozero's default
    with pytest.raises(ValueError, match="default, lgpio, rpigpio, pigpio, mock"):
        make_pin_factory("pigpio-remote")


def test_presses_reach_the_callback_by_name(factory):
    pressed = []
    bank = ButtonBank(KEYS, pressed.append, bounce_time=0.01, pin_factory=factory)
    for name in ("star5", "star1", "star3"):
        press(factory, KEYS[name])
    time.sleep(0.02)
    press(factory, KEYS["star5"])
    assert pressed == ["star5", "star1", "star3", "star5"]
    assert not bank.is_pressed("star5")
    factory.pin(KEYS["star2"]).drive_low()
    assert bank.is_pressed("star2")
    bank.close()


def test_toggle_storm_is_debounced(factory):
    pressed = []
    bank = ButtonBank({"ok": 17, "other": 27}, pressed.append, bounce_time=0.05, pin_factory=factory)
    pin = factory.pin(17)
    start = time.monotonic()
    for i in range(1000):
        pin.drive_low() if i % 2 == 0 else pin.drive_high()
    elapsed = time.monotonic() - start
    assert elapsed < 1.0, f"storm took {elapsed:.2f}s, not a storm"
    assert 1 <= pressed.count("ok") <= 3
    press(factory, 27)  # the other button is not affected by the storm
    assert pressed[-1] == "other"
    time.sleep(0.06)
    press(factory, 17)  # after a quiet pin, a real press counts again
    assert pressed[-1] == "ok"
    bank.close()


def test_storm_from_two_threads_never_crashes(factory):
    count = []
    bank = ButtonBank({"ok": 17}, count.append, bounce_time=0.05, pin_factory=factory)
    pin = factory.pin(17)

    def storm():
        for i in range(500):
            pin.drive_low() if i % 2 == 0 else pin.drive_high()

    threads = [threading.Thread(target=storm) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= len(count) <= 3
    bank.close()


def test_handler_error_does_not_escape(factory):
    def broken(name):
        raise RuntimeError("ui bug")

    bank = ButtonBank({"ok": 17}, broken, pin_factory=factory)
    press(factory, 17)  # would raise here if the error reached gpiozero's thread
    bank.close()


def test_close_releases_pins(factory):
    bank = ButtonBank({"ok": 17}, lambda name: None, pin_factory=factory)
    with pytest.raises(GPIOPinInUse):
        Button(17, pin_factory=factory)
    bank.close()
    Button(17, pin_factory=factory).close()  # free again
    leds = LedBank({"ok": 22}, pin_factory=factory)
    leds.close()
    LedBank({"again": 22}, pin_factory=factory).close()


def test_pin_used_twice_is_a_clear_error_and_frees_what_it_took(factory):
    with pytest.raises(GPIOSetupError, match=r"GPIO17 for 'b'.*each pin once"):
        ButtonBank({"a": 17, "b": 17}, lambda name: None, pin_factory=factory)
    Button(17, pin_factory=factory).close()  # "a" was released on the failure


def test_a_pin_held_elsewhere_is_named_by_key_and_the_board_frees_the_rest(factory):
    # The board fails on its third pin; the error names that key, and the
    # two pins the board had claimed before it are free again.
    held = Button(19, pin_factory=factory)
    try:
        with pytest.raises(GPIOSetupError, match=r"GPIO19 for 'star2'.*each pin once"):
            ButtonBank({"star5": 5, "star4": 6, "star2": 19}, lambda name: None, pin_factory=factory)
        with pytest.raises(GPIOSetupError, match=r"GPIO19 for 'star2'"):
            LedBank({"star5": 5, "star2": 19}, pin_factory=factory)
    finally:
        held.close()
    for pin in (5, 6):
        Button(pin, pin_factory=factory).close()


def test_any_name_is_a_key_name(factory):
    # Our names are not gpiozero attributes: a category code like "value" or "1" works.
    pressed = []
    bank = ButtonBank({"value": 5, "1": 6}, pressed.append, bounce_time=0, pin_factory=factory)
    leds = LedBank({"close": 20}, pin_factory=factory)
    try:
        press(factory, 6)
        press(factory, 5)
        leds.on("close")
        assert pressed == ["1", "value"] and bank.names == ["value", "1"] and factory.pin(20).state
    finally:
        bank.close()
        leds.close()


def test_leds(factory):
    leds = LedBank({"star5": 20, "star1": 21}, pin_factory=factory)
    leds.on("star5")
    assert leds.is_lit("star5") and factory.pin(20).state
    assert not leds.is_lit("star1")
    leds.blink("star1", on_time=0.01, off_time=0.01, n=3)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and len(factory.pin(21).states) < 7:
        time.sleep(0.01)
    levels = [s.state for s in factory.pin(21).states]
    assert levels[-6:] == [True, False] * 3
    leds.all_off()
    assert not leds.is_lit("star5") and not leds.is_lit("star1")
    with pytest.raises(KeyError, match="configured LEDs are star5, star1"):
        leds.on("star9")
    leds.close()


def test_lgpio_gets_a_writable_working_directory(tmp_path, monkeypatch):
    """lgpio puts its .lgd-nfy pipes in LG_WD, else the current directory (an admin's home
    under `sudo -u kiosk kiosk selftest`): the factory is made with LG_WD at the storage folder."""
    from devices.buttons import lgpio_workdir

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LG_WD", raising=False)
    state = tmp_path / "state"
    assert make_pin_factory("default", workdir=str(state)) is None
    assert os.environ["LG_WD"] == str(state) and state.is_dir()
    # A writable LG_WD set by the unit or the technician is kept.
    other = tmp_path / "run"
    other.mkdir()
    monkeypatch.setenv("LG_WD", str(other))
    assert lgpio_workdir(str(state)) == str(other)
    # One that does not exist (a typo, a tmpfs not mounted) is replaced.
    monkeypatch.setenv("LG_WD", str(tmp_path / "gone"))
    assert lgpio_workdir(str(state)) == str(state) == os.environ["LG_WD"]
    # No storage folder to be had (a file where it should be): the temporary folder.
    monkeypatch.delenv("LG_WD")
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    assert lgpio_workdir(str(blocker / "state")) == tempfile.gettempdir() == os.environ["LG_WD"]


def test_the_unit_gives_lgpio_a_writable_directory():
    """Under systemd the working directory is the state folder systemd makes writable."""
    from tests.test_systemd_unit import UNIT, unit_entries

    unit = unit_entries(UNIT.read_text())
    assert unit["Service.WorkingDirectory"] == ["/var/lib/kiosk"]
    assert unit["Service.StateDirectory"] == ["kiosk"]  # /var/lib/kiosk, owned by User=, writable under ProtectSystem
    assert "LG_WD=/var/lib/kiosk" in unit["Service.Environment"]

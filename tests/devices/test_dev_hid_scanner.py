"""The USB HID (keyboard-mode) scanner, read from its event node.

The emulator is a scanner as the kernel reports it: struct input_event
records (EV_KEY press/release with shift, EV_MSC scan codes, EV_SYN) in the
order a US-layout keyboard-mode scanner sends them. They reach the reader
through a FIFO — the same open/select/read path the backend takes on
/dev/input/eventN — because this machine has no /dev/uinput. Where
/dev/uinput exists (and python-evdev is installed), the last test drives a
real virtual keyboard through evdev's UInput and checks the grab.
"""

from __future__ import annotations

import os
import struct
import threading
import time

import pytest

from devices import hid_scanner
from devices.hid_scanner import EVENT, HidScanner, KeyDecoder
from tests.helpers import wait_until

EV_SYN, EV_KEY, EV_MSC = 0, 1, 4
SHIFT = 42

# US layout: character -> (key code, shift), as a scanner set to "USB keyboard, US" types it.
_US = {}
for code, pair in hid_scanner._ROWS.items():
    _US.setdefault(pair[0], (code, False))
    _US.setdefault(pair[1], (code, True))
for code, ch in hid_scanner._LETTERS.items():
    _US[ch] = (code, False)
    _US[ch.upper()] = (code, True)


def record(kind: int, code: int, value: int) -> bytes:
    now = time.time()
    return EVENT.pack(int(now), int(now % 1 * 1e6), kind, code, value)


def keystroke(code: int, shift: bool = False) -> bytes:
    """One key as the kernel reports it: MSC_SCAN, press, SYN, release, SYN (shift around it)."""
    out = b""
    if shift:
        out += record(EV_KEY, SHIFT, 1) + record(EV_SYN, 0, 0)
    out += record(EV_MSC, 4, 0x70000 + code) + record(EV_KEY, code, 1) + record(EV_SYN, 0, 0)
    out += record(EV_KEY, code, 0) + record(EV_SYN, 0, 0)
    if shift:
        out += record(EV_KEY, SHIFT, 0) + record(EV_SYN, 0, 0)
    return out


def typed(text: str, suffix: str | None = "\n") -> bytes:
    out = b"".join(keystroke(*_US[ch]) for ch in text)
    if suffix == "\n":
        out += keystroke(28)  # Enter
    elif suffix == "\t":
        out += keystroke(15)
    return out


class FifoScanner:
    """The emulated scanner's side of a FIFO the backend reads like an event node."""

    def __init__(self, path):
        os.mkfifo(path)
        self.path = str(path)
        # O_RDWR: opening does not wait for the reader, and the reader sees no end of stream
        # until this end is closed (as a device node gives none until unplugged).
        self.fd = os.open(self.path, os.O_RDWR)

    def send(self, data: bytes, chunk: int | None = None) -> None:
        for i in range(0, len(data), chunk or len(data) or 1):
            os.write(self.fd, data[i : i + (chunk or len(data))])

    def unplug(self) -> None:
        if self.fd != -1:
            os.close(self.fd)
            self.fd = -1


@pytest.fixture
def fifo(tmp_path):
    dev = FifoScanner(tmp_path / "event-kbd")
    yield dev
    dev.unplug()


@pytest.fixture
def reader(fifo):
    made = []

    def make(**kw):
        got = []
        scanner = HidScanner(fifo.path, got.append, reconnect_delay=0.05, **kw).start()
        made.append(scanner)
        return scanner, got

    yield make
    for s in made:
        s.close()


RECEIPT = "ZW2026004711|835201"  # 受理编号|查询码, the lookup's typed form
URL = "https://zwfw.example.gov.cn/cx?slbh=ZW2026004711&cxm=835201#A~b_c-d+e"


def test_a_receipt_payload_with_a_bar_arrives_whole_whatever_the_system_keymap(fifo, reader):
    # "|" is shift + KEY_BACKSLASH (43); the UK keymap would make it "~" through the UI's keyboard.
    _, got = reader()
    fifo.send(typed(RECEIPT))
    assert wait_until(lambda: len(got) == 1, 5)
    assert got[0].valid and got[0].text == RECEIPT


def test_a_url_with_upper_case_and_symbols_arrives_exactly(fifo, reader):
    _, got = reader()
    fifo.send(typed(URL, suffix="\t"), chunk=7)  # records split across reads, as a pipe may
    assert wait_until(lambda: len(got) == 1, 5)
    assert got[0].text == URL


def test_caps_lock_and_the_keypad_are_read_as_a_scanner_sends_them(fifo, reader):
    _, got = reader()
    caps = keystroke(58)
    # Caps Lock on: letters upper case, shift+letter lower case; keypad digits; Caps Lock off again.
    fifo.send(caps + typed("zw", None) + keystroke(17, True) + keystroke(79) + keystroke(82) + caps + keystroke(96))
    assert wait_until(lambda: len(got) == 1, 5)
    assert got[0].text == "ZWw10"


def test_a_scanner_without_a_suffix_is_delivered_after_the_idle_gap_not_glued_to_the_next(fifo, reader):
    _, got = reader(idle_gap=0.15)
    fifo.send(typed("ZW2026004711|835201", suffix=None))
    assert wait_until(lambda: len(got) == 1, 5), "no delivery after the idle gap"
    fifo.send(typed("ZW2026004712|111111", suffix=None))
    assert wait_until(lambda: len(got) == 2, 5)
    assert [p.text for p in got] == ["ZW2026004711|835201", "ZW2026004712|111111"]


def test_a_burst_with_a_stall_shorter_than_the_gap_stays_one_scan(fifo, reader):
    """A 60 ms hiccup mid-burst (USB polling, a loaded machine) does not cut the payload:
    the reader has its own thread and its own gap, not the UI's frame time."""
    _, got = reader(idle_gap=0.3)
    first, second = typed(RECEIPT[:8], None), typed(RECEIPT[8:])
    fifo.send(first)
    t = threading.Timer(0.06, fifo.send, (second,))
    t.start()
    assert wait_until(lambda: len(got) == 1, 5)
    t.join()
    assert got[0].text == RECEIPT


def test_keys_it_cannot_read_make_the_scan_undecodable_not_shorter(fifo, reader):
    _, got = reader()
    fifo.send(typed("ZW20", None) + keystroke(59) + typed("26"))  # F1 in the middle
    assert wait_until(lambda: len(got) == 1, 5)
    assert not got[0].valid and got[0].problem == "undecodable" and got[0].text == ""


def test_an_endless_burst_is_one_too_long_payload(fifo, reader):
    _, got = reader()
    fifo.send(typed("A" * 600))
    assert wait_until(lambda: len(got) == 1, 5)
    assert not got[0].valid and got[0].problem == "too_long"


def test_unplug_and_replug(tmp_path, fifo, reader):
    scanner, got = reader()
    fifo.send(typed(RECEIPT))
    assert wait_until(lambda: len(got) == 1 and scanner.connected, 5), scanner.detail
    assert "not grabbed (a FIFO stream)" in scanner.detail
    fifo.unplug()  # the last writer gone: the end of the stream, like ENODEV on a pulled device
    assert wait_until(lambda: not scanner.connected, 5)
    assert "lost" in scanner.detail and "USB cable" in scanner.detail
    fifo.fd = os.open(fifo.path, os.O_RDWR)  # plugged in again
    fifo.send(typed(RECEIPT))
    assert wait_until(lambda: len(got) == 2 and scanner.connected, 5), scanner.detail
    assert got[1].text == RECEIPT


def test_a_wrong_path_says_what_to_check(tmp_path):
    got = []
    plain = tmp_path / "not-a-device"
    plain.write_bytes(b"\0" * 48)
    for path, words in ((tmp_path / "missing", "/dev/input/by-id"), (plain, "not an input device")):
        scanner = HidScanner(str(path), got.append, reconnect_delay=0.05).start()
        try:
            assert wait_until(lambda s=scanner, w=words: w in s.detail, 5), scanner.detail
            assert not scanner.connected
        finally:
            scanner.close()
    assert got == []


def test_the_record_layout_and_key_codes_are_the_kernels():
    """Our table against python-evdev's (which reads linux/input-event-codes.h), where installed."""
    ecodes = pytest.importorskip("evdev.ecodes", reason="python-evdev not installed")
    # Two C longs (the kernel's __kernel_ulong_t seconds and microseconds), then type, code, value.
    assert EVENT.size == 2 * struct.calcsize("l") + 8 == (24 if struct.calcsize("P") == 8 else 16)
    assert ecodes.KEY_BACKSLASH == 43 and ecodes.KEY_ENTER == hid_scanner.KEY_ENTER
    for code, ch in hid_scanner._LETTERS.items():
        assert ecodes.KEY[code] == f"KEY_{ch.upper()}"
    assert ecodes.KEY[hid_scanner.KEY_LEFTSHIFT] == "KEY_LEFTSHIFT" and ecodes.KEY[58] == "KEY_CAPSLOCK"
    assert ecodes.EV_KEY == hid_scanner.EV_KEY


def test_decoder_alone_keeps_shift_state_across_records():
    d = KeyDecoder()
    assert d.feed(record(EV_KEY, SHIFT, 1)) == []
    assert d.feed(record(EV_KEY, 43, 1) + record(EV_KEY, 43, 0) + record(EV_KEY, SHIFT, 0)) == []
    [p] = d.feed(keystroke(28))
    assert p.text == "|"


def _uinput_reason() -> str | None:
    if not os.path.exists("/dev/uinput"):
        return "no /dev/uinput on this machine (modprobe uinput needs the module and root)"
    if not os.access("/dev/uinput", os.W_OK):
        return "/dev/uinput is not writable by this user"
    try:
        import evdev  # noqa: F401
    except ImportError:
        return "python-evdev not installed (pip install evdev)"
    return None


@pytest.mark.skipif(_uinput_reason() is not None, reason=str(_uinput_reason()))
def test_a_uinput_keyboard_is_read_grabbed_and_its_keys_reach_nobody_else():
    import evdev
    from evdev import UInput, ecodes

    keys = sorted({c for c, _ in _US.values()} | {28, SHIFT})
    with UInput({ecodes.EV_KEY: keys}, name="emulated-qr-scanner") as ui:
        path = ui.device.path
        got = []
        scanner = HidScanner(path, got.append).start()
        other = evdev.InputDevice(path)  # another reader of the node: the UI, the console
        try:
            assert wait_until(lambda: scanner.connected and scanner.grabbed, 5), scanner.detail
            for ch in RECEIPT + "\n":
                code, shift = _US.get(ch, (28, False))
                if shift:
                    ui.write(ecodes.EV_KEY, SHIFT, 1)
                ui.write(ecodes.EV_KEY, code, 1)
                ui.write(ecodes.EV_KEY, code, 0)
                if shift:
                    ui.write(ecodes.EV_KEY, SHIFT, 0)
                ui.syn()
            assert wait_until(lambda: len(got) == 1, 5)
            assert got[0].text == RECEIPT
            assert other.read_one() is None  # grabbed: nothing leaked to the other reader
        finally:
            scanner.close()
            other.close()

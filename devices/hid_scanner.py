"""A USB HID ("keyboard") QR scanner read from its own input device node.

Most scanners sold to halls enumerate as a USB keyboard. Read through the
UI's keyboard (the Kivy wedge), a scan goes through the system keymap — on
Raspberry Pi OS's default UK layout a US-layout scanner's ``|`` arrives as
``~``, so ``受理编号|查询码`` payloads are refused — and through the UI's frame
loop, where one slow frame mid-burst cuts the payload in two. Here the
scanner's event node (``/dev/input/by-id/usb-…-event-kbd``) is read on a
thread of its own:

- key codes are the kernel's (linux/input-event-codes.h), decoded with the
  US layout scanners are sold with, whatever keymap the console or X has;
- the node is grabbed (EVIOCGRAB), so the keystrokes reach nobody else:
  a scan never types into the UI;
- a scan ends with Enter (or Tab), or, for a scanner set to send no suffix,
  after ``idle_gap`` seconds without a key.

The reader takes a path to anything that carries ``struct input_event``
records: a real event node, or a FIFO (tests and bench recordings). python-
evdev is not needed at run time: the record layout and the ioctl are the
kernel's ABI; the tests use python-evdev's UInput where /dev/uinput exists.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import select
import stat
import struct
import threading
import time
from collections.abc import Callable

from devices.scanner import ScanPayload, _deliver

log = logging.getLogger(__name__)

# struct input_event on a 64-bit kernel: struct timeval (two longs), __u16 type, __u16 code, __s32 value.
EVENT = struct.Struct("llHHi")
EV_KEY = 0x01
KEY_RELEASE, KEY_PRESS, KEY_REPEAT = 0, 1, 2
EVIOCGRAB = 0x40044590  # _IOW('E', 0x90, int)

KEY_ENTER, KEY_KPENTER, KEY_TAB = 28, 96, 15
KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_CAPSLOCK = 42, 54, 58
SHIFTS = (KEY_LEFTSHIFT, KEY_RIGHTSHIFT)
ENDS = (KEY_ENTER, KEY_KPENTER, KEY_TAB)
# Ctrl, Alt, Meta and Num Lock type nothing by themselves; some scanners send them around a scan.
MODIFIERS = (29, 97, 56, 100, 125, 126, 69)

# US layout: key code -> (unshifted, shifted). Letters are handled with Caps Lock below.
_ROWS = {
    2: "1!",
    3: "2@",
    4: "3#",
    5: "4$",
    6: "5%",
    7: "6^",
    8: "7&",
    9: "8*",
    10: "9(",
    11: "0)",
    12: "-_",
    13: "=+",
    26: "[{",
    27: "]}",
    39: ";:",
    40: "'\"",
    41: "`~",
    43: "\\|",
    51: ",<",
    52: ".>",
    53: "/?",
    57: "  ",
}
_LETTERS = dict(
    zip(
        (16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 30, 31, 32, 33, 34, 35, 36, 37, 38, 44, 45, 46, 47, 48, 49, 50),
        "qwertyuiopasdfghjklzxcvbnm",
        strict=True,
    )
)
# The keypad (scanners set to "numeric keypad" mode for digits).
_KEYPAD = {
    71: "7",
    72: "8",
    73: "9",
    74: "-",
    75: "4",
    76: "5",
    77: "6",
    78: "+",
    79: "1",
    80: "2",
    81: "3",
    82: "0",
    83: ".",
    98: "/",
    55: "*",
}


def key_char(code: int, shift: bool, caps: bool) -> str | None:
    """The character a US-layout key types, or None for a key that types none (F-keys, Ctrl …)."""
    if code in _LETTERS:
        ch = _LETTERS[code]
        return ch.upper() if shift != caps else ch
    if code in _ROWS:
        return _ROWS[code][1 if shift else 0]
    return _KEYPAD.get(code)


def node_problem(path: str) -> str | None:
    """What stops a HID scanner being read from `path` (opened and grabbed once, then let go), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.EACCES:
            return f"{path}: no permission (the kiosk user must be in group input)"
        return f"{path} cannot be opened ({exc.strerror}): plugged in? see ls -l /dev/input/by-id/ (…-event-kbd)"
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISFIFO(mode):
            return None  # a recorded stream: nothing to grab
        if not stat.S_ISCHR(mode):
            return f"{path} is not an input device: use its /dev/input/by-id/…-event-kbd path"
        try:
            fcntl.ioctl(fd, EVIOCGRAB, 1)
            fcntl.ioctl(fd, EVIOCGRAB, 0)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                return f"{path} is grabbed by another program (the running kiosk? stop it to test here)"
            return f"{path} cannot be grabbed ({exc.strerror}): is it an event node (…-event-kbd), not hidraw or a tty?"
        return None
    finally:
        os.close(fd)


class KeyDecoder:
    """input_event records in, payloads out: shift and Caps Lock state, Enter/Tab or idle gap ends a scan."""

    def __init__(self, max_len: int = 512):
        self.max_len = max_len
        self._shift: set[int] = set()
        self._caps = False
        self._chars: list[str] = []
        self._unknown = 0
        self._overflow = False
        self._partial = b""

    @property
    def pending(self) -> bool:
        return bool(self._chars) or self._overflow

    def feed(self, data: bytes) -> list[ScanPayload]:
        data = self._partial + data
        whole = len(data) - len(data) % EVENT.size
        self._partial = data[whole:]  # a pipe may split a record; a device node never does
        out: list[ScanPayload] = []
        for _sec, _usec, kind, code, value in EVENT.iter_unpack(data[:whole]):
            if kind != EV_KEY:
                continue  # EV_SYN, EV_MSC (scan codes), LEDs: nothing typed
            if code in SHIFTS:
                (self._shift.add if value else self._shift.discard)(code)
            elif value == KEY_PRESS and code == KEY_CAPSLOCK:
                self._caps = not self._caps
            elif value == KEY_PRESS and code in ENDS:
                out += self.flush()
            elif code in MODIFIERS:
                continue
            elif value in (KEY_PRESS, KEY_REPEAT):
                self._key(code)
        return out

    def _key(self, code: int) -> None:
        ch = key_char(code, bool(self._shift), self._caps)
        if ch is None:
            self._unknown += 1
        elif len(self._chars) >= self.max_len:
            self._overflow = True
        else:
            self._chars.append(ch)

    def flush(self) -> list[ScanPayload]:
        """End the scan (Enter, Tab or the idle gap)."""
        text, unknown, overflow = "".join(self._chars), self._unknown, self._overflow
        self._chars, self._unknown, self._overflow = [], 0, False
        self._shift.clear()  # a scanner releases its shift within the scan; a lost release must not leak
        if overflow:
            return [ScanPayload("", False, "too_long", len(text))]
        if unknown:
            # A key we cannot read (a scanner set to another layout or to send function keys):
            # an honest "undecodable", never a payload with characters silently missing.
            return [ScanPayload("", False, "undecodable", len(text) + unknown)]
        return [ScanPayload(text, True, None, len(text))] if text else []

    def reset(self) -> None:
        self._chars, self._unknown, self._overflow, self._partial = [], 0, False, b""
        self._shift.clear()


class HidScanner:
    """A HID scanner's event node read by its own thread, grabbed from the rest of the system.

    on_payload(ScanPayload) is called *on the reader thread* (the lookup's ScanHub
    hands it to the UI). ``connected`` and ``grabbed`` say how the device is read;
    losing and regaining it is logged once per change, with what to check."""

    def __init__(
        self,
        path: str,
        on_payload: Callable[[ScanPayload], None],
        idle_gap: float = 0.2,
        max_len: int = 512,
        reconnect_delay: float = 1.0,
        grab: bool = True,
    ):
        self.path = path
        self.on_payload = on_payload
        self.idle_gap = idle_gap
        self.reconnect_delay = reconnect_delay
        self.grab = grab
        self.connected = False
        self.grabbed = False
        self.detail = "not started"
        self._state: bool | None = None
        self._stream = False  # reading a FIFO (a recorded or emulated stream), not a device node
        self._decoder = KeyDecoder(max_len)
        self._fd: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scanner-hid", daemon=True)

    @property
    def started(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> HidScanner:
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()
        return self

    def _set_state(self, connected: bool, detail: str) -> None:
        self.detail = detail
        if connected == self._state:
            return
        self._state = connected
        self.connected = connected
        (log.info if connected else log.warning)("%s", detail)

    def _open(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            advice = (
                "no permission: the kiosk user must be in group input"
                if exc.errno == errno.EACCES
                else "check the USB cable and the path (ls -l /dev/input/by-id/, the one ending in -event-kbd)"
            )
            self._set_state(False, f"HID scanner {self.path} cannot be opened ({exc.strerror}): {advice}")
            return False
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
            os.close(fd)
            self._set_state(
                False, f"HID scanner {self.path} is not an input device: use its /dev/input/by-id/…-event-kbd path"
            )
            return False
        self.grabbed = False
        if self.grab and stat.S_ISCHR(mode):
            try:
                fcntl.ioctl(fd, EVIOCGRAB, 1)
                self.grabbed = True
            except OSError as exc:
                os.close(fd)
                what = (
                    "another program holds it (a second kiosk process?)"
                    if exc.errno == errno.EBUSY
                    else f"{exc.strerror}: is it an event node (…-event-kbd), not a hidraw or tty?"
                )
                self._set_state(False, f"HID scanner {self.path} cannot be grabbed: {what}")
                return False
        self._fd = fd
        self._decoder.reset()
        # A FIFO opens whether or not anything writes to it: it counts as connected
        # when its first record arrives, so a stream with no writer does not flicker.
        self._stream = stat.S_ISFIFO(mode)
        if not self._stream:
            how = "grabbed" if self.grabbed else "NOT grabbed: its keys also reach the UI"
            self._set_state(True, f"HID scanner on {self.path} connected, {how}")
        return True

    def _drop(self, why: str) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)  # closing releases the grab
            except OSError:
                pass
        self._fd = None
        self.grabbed = False
        self._decoder.reset()
        self._set_state(False, f"HID scanner on {self.path} lost ({why}): check the USB cable")

    def _run(self) -> None:
        last_key = time.monotonic()
        while not self._stop.is_set():
            if self._fd is None and not self._open():
                self._stop.wait(self.reconnect_delay)
                continue
            fd = self._fd
            if fd is None:
                continue
            # A short wait lets the thread notice close() and the idle gap in time.
            wait = min(0.1, self.idle_gap / 2) if self.idle_gap else 0.1
            ready, _, _ = select.select([fd], [], [], wait)
            data = b""
            if ready:
                try:
                    data = os.read(fd, EVENT.size * 64)
                except BlockingIOError:
                    data = b""
                except OSError as exc:  # ENODEV: unplugged
                    self._drop(exc.strerror or str(exc))
                    continue
                if not data:  # end of stream: the writer of a FIFO went away (or never came)
                    if self.connected:
                        self._drop("end of stream")
                    else:
                        os.close(fd)
                        self._fd = None
                    self._stop.wait(self.reconnect_delay)
                    continue
                if self._stream and not self.connected:
                    self._set_state(True, f"HID scanner on {self.path} connected, not grabbed (a FIFO stream)")
            now = time.monotonic()
            if self.idle_gap and self._decoder.pending and now - last_key >= self.idle_gap:
                # Also before new data: what came before the silence is a scan of its own.
                _deliver(self.on_payload, self._decoder.flush())
            if data:
                last_key = now
                _deliver(self.on_payload, self._decoder.feed(data))
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self, timeout: float = 2.0) -> None:
        """Stop the reader and release the device (and its grab)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

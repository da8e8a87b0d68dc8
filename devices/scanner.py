"""QR scanners: serial (line-terminated), keyboard wedge, and a simulator.

All three hand the app `ScanPayload`s, so the lookup service sees one kind of
input whatever the hardware.  The device layer only frames and decodes; what
a payload *means* (URL or `受理编号|查询码`) is the lookup service's job.

Payloads carry receipt numbers and query codes, so their text is kept out of
`repr` and out of the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

TERMINATORS = (0x0D, 0x0A)  # CR, LF; CRLF gives an empty line, which is skipped


@dataclass(frozen=True)
class ScanPayload:
    text: str = field(repr=False)  # may hold a receipt number: never log it
    valid: bool = True
    problem: str | None = None  # "too_long" | "undecodable"
    length: int = 0  # raw length in bytes (or characters for the wedge)


def decode_line(raw: bytes) -> ScanPayload:
    """UTF-8 first (what QR payloads normally are), then GB18030 (scanners set
    to a Chinese code page); otherwise an invalid payload, never an exception."""
    for encoding in ("utf-8", "gb18030"):
        try:
            return ScanPayload(raw.decode(encoding), True, None, len(raw))
        except UnicodeDecodeError:
            continue
    return ScanPayload(raw.decode("utf-8", errors="replace"), False, "undecodable", len(raw))


class LineDecoder:
    """Bytes in, payloads out: CR / LF / CRLF framing with a length limit.

    An over-long line is reported once as invalid and the rest of it, up to
    the next terminator, is dropped: a scanner stuck sending garbage must not
    fill memory or flood the screen with errors."""

    def __init__(self, max_len: int = 512):
        self.max_len = max_len
        self._buffer = bytearray()
        self._discarding = False

    @property
    def pending(self) -> bool:
        return bool(self._buffer)

    def flush(self) -> list[ScanPayload]:
        """End the line without a terminator: a scanner set to send no suffix went quiet."""
        out = [decode_line(bytes(self._buffer))] if self._buffer and not self._discarding else []
        self._buffer.clear()
        self._discarding = False
        return out

    def reset(self) -> None:
        """Forget a partial line (after a reconnect it is garbage)."""
        self._buffer.clear()
        self._discarding = False

    def feed(self, data: bytes) -> list[ScanPayload]:
        out: list[ScanPayload] = []
        for b in data:
            if b in TERMINATORS:
                if self._discarding:
                    self._discarding = False
                elif self._buffer:
                    out.append(decode_line(bytes(self._buffer)))
                self._buffer.clear()
            elif not self._discarding:
                self._buffer.append(b)
                if len(self._buffer) > self.max_len:
                    out.append(ScanPayload("", False, "too_long", len(self._buffer)))
                    self._buffer.clear()
                    self._discarding = True
        return out


def _deliver(on_payload: Callable[[ScanPayload], None], payloads: list[ScanPayload]) -> None:
    for payload in payloads:
        try:
            on_payload(payload)
        except Exception:  # the app's bug must not kill the reader
            log.exception("scanner payload handler failed")


class SerialScanner:
    """A serial QR scanner read by its own thread.

    on_payload(ScanPayload) is called *on the reader thread*: the app must
    hand it to the UI thread (Kivy `Clock.schedule_once`).  on_state(connected,
    detail), if given, reports losing and regaining the port, once per change,
    with a message for the technician."""

    def __init__(
        self,
        port: str,
        baudrate: int = 9600,
        on_payload: Callable[[ScanPayload], None] | None = None,
        max_len: int = 512,
        reconnect_delay: float = 1.0,
        on_state: Callable[[bool, str], None] | None = None,
        idle_gap: float = 0.0,
    ):
        """idle_gap: seconds of silence that end a scan without CR/LF (0 = only a terminator ends it).
        Scanners are sold with and without a suffix; without one, and without this, a scan
        would wait for the next citizen's and be glued to its front."""
        if on_payload is None:
            raise ValueError("SerialScanner needs an on_payload callback")
        self.port = port
        self.baudrate = baudrate
        self.on_payload = on_payload
        self.on_state = on_state
        self.reconnect_delay = reconnect_delay
        self.idle_gap = idle_gap
        self.connected = False
        self._state: bool | None = None  # last reported state; None = not reported yet
        self._decoder = LineDecoder(max_len)
        self._serial = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scanner-reader", daemon=True)

    def start(self) -> SerialScanner:
        """Open the port and read on its own thread (reopening after a replug)."""
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()
        return self

    def _set_state(self, connected: bool, detail: str) -> None:
        """Report a change of connection state once, not on every retry."""
        if connected == self._state:
            return
        self._state = connected
        self.connected = connected
        (log.info if connected else log.warning)("%s", detail)
        if self.on_state:
            try:
                self.on_state(connected, detail)
            except Exception:
                log.exception("scanner state handler failed")

    def _open(self) -> bool:
        import serial

        try:
            # a short read timeout lets the thread notice close() and an idle gap quickly
            read_timeout = min(0.1, self.idle_gap / 2) if self.idle_gap else 0.1
            self._serial = serial.Serial(self.port, self.baudrate, timeout=read_timeout, exclusive=True)
        except (serial.SerialException, OSError) as exc:
            self._set_state(
                False,
                f"scanner port {self.port} cannot be opened ({exc}): check the scanner cable, "
                "the udev rule and that the kiosk user is in the dialout group",
            )
            return False
        self._decoder.reset()
        self._set_state(True, f"scanner on {self.port} connected")
        return True

    def _drop(self, exc: Exception) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except Exception:
                pass
        self._serial = None
        self._decoder.reset()
        self._set_state(False, f"scanner on {self.port} lost ({exc}): check the scanner cable")

    def _run(self) -> None:
        import serial

        last_byte = time.monotonic()
        while not self._stop.is_set():
            if self._serial is None and not self._open():
                self._stop.wait(self.reconnect_delay)
                continue
            port = self._serial
            if port is None:  # _open() said yes: it set the port; for the type checker
                continue
            try:
                data = port.read(port.in_waiting or 1)
            except (serial.SerialException, OSError) as exc:
                self._drop(exc)
                self._stop.wait(self.reconnect_delay)
                continue
            now = time.monotonic()
            if self.idle_gap and self._decoder.pending and now - last_byte >= self.idle_gap:
                # Also before new data: what came before the silence is a scan of its own.
                _deliver(self.on_payload, self._decoder.flush())
            if data:
                last_byte = now
                _deliver(self.on_payload, self._decoder.feed(data))
        if self._serial is not None:
            self._serial.close()
            self._serial = None

    def close(self, timeout: float = 2.0) -> None:
        """Stop the reader thread and release the port."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


class SimScanner:
    """Injects payloads as if scanned, through the same framing and limits.

    on_payload is called on the thread that calls inject()."""

    def __init__(self, on_payload: Callable[[ScanPayload], None], max_len: int = 512):
        self.on_payload = on_payload
        self._decoder = LineDecoder(max_len)

    def inject(self, payload: str | bytes) -> None:
        raw = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        _deliver(self.on_payload, self._decoder.feed(raw + b"\r"))

    def close(self) -> None:
        pass


class WedgeAssembler:
    """Tells a keyboard-wedge scan from a person typing, by keystroke timing.

    A wedge scanner "types" its payload at machine speed (a few ms per key)
    and ends it with Enter; people type far slower.  Characters are kept only
    while each follows the previous within `max_gap` seconds; a longer pause
    starts afresh.  Enter yields a payload only if it, too, came fast and at
    least `min_length` characters were collected.  Times are monotonic
    seconds (Kivy key events carry none: use time.monotonic() on arrival).

    A scanner whose USB polling hiccups for longer than max_gap mid-payload
    yields only the tail; the lookup parser then rejects it kindly."""

    def __init__(self, max_gap: float = 0.05, min_length: int = 4, max_len: int = 512):
        self.max_gap = max_gap
        self.min_length = min_length
        self.max_len = max_len
        self.reset()

    def reset(self) -> None:
        self._chars: list[str] = []
        self._last: float | None = None
        self._overflow = False

    def key(self, char: str, t: float) -> None:
        if self._last is not None and t - self._last > self.max_gap:
            self._chars.clear()
            self._overflow = False
        self._last = t
        if len(self._chars) >= self.max_len:
            self._overflow = True
        else:
            self._chars.append(char)

    def enter(self, t: float) -> ScanPayload | None:
        fast = self._last is not None and t - self._last <= self.max_gap
        text, overflow = "".join(self._chars), self._overflow
        self.reset()
        if not fast or len(text) < self.min_length:
            return None
        if overflow:
            return ScanPayload("", False, "too_long", len(text))
        return ScanPayload(text, True, None, len(text))

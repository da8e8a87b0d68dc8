"""二代身份证 readers: the GA/T 467 SAM frame protocol on a serial line, and a simulator.

A frame to the reader is ``AA AA AA 96 69 | LEN (2, big-endian) | CMD PARA |
DATA | CHK`` and one from it ``AA AA AA 96 69 | LEN | SW1 SW2 SW3 | DATA |
CHK``; LEN counts every byte after itself including CHK, and CHK is the XOR
of every byte after the preamble except itself. To read a card the host
sends find (20 01, success SW3 = 9F), select (20 02) and read base info
(30 01, success SW3 = 90), no faster than every 300 ms. After a read the
reader does not find the same card again until it has left the field.

Only two things of a card are decoded: the name and the ID number, from the
fixed-width UCS-2LE text block. The address bytes are skipped unread and the
photo (a vendor's wavelet format) is never looked at; neither is kept. A
CardRead keeps both values out of its repr, and nothing here logs them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
FIND = (0x20, 0x01)
SELECT = (0x20, 0x02)
READ = (0x30, 0x01)
SW_OK = 0x90
SW_FOUND = 0x9F
SW_NO_CARD = 0x80
MAX_LEN = 4096  # a base-info reply is 1288; a longer LEN is line noise

# The text block: fixed-width UCS-2LE fields (bytes), in this order.
TEXT_FIELDS = (
    ("name", 30),
    ("gender", 2),
    ("nation", 4),
    ("birth", 16),
    ("address", 70),
    ("id_number", 36),
    ("authority", 30),
    ("valid_from", 16),
    ("valid_to", 16),
)
TEXT_SIZE = 256
PHOTO_SIZE = 1024


def _offset(name: str) -> tuple[int, int]:
    at = 0
    for fname, size in TEXT_FIELDS:
        if fname == name:
            return at, size
        at += size
    raise KeyError(name)


NAME_AT = _offset("name")
ID_AT = _offset("id_number")


def checksum(body: bytes) -> int:
    x = 0
    for b in body:
        x ^= b
    return x


def frame(cmd: int, para: int, data: bytes = b"") -> bytes:
    """A command frame to the reader (the host's side of the protocol)."""
    n = len(data) + 3  # CMD, PARA, CHK
    body = n.to_bytes(2, "big") + bytes([cmd, para]) + data
    return PREAMBLE + body + bytes([checksum(body)])


def reply_frame(sw3: int, data: bytes = b"", sw1: int = 0, sw2: int = 0) -> bytes:
    """A reply frame from the reader (for the simulator and emulators)."""
    n = len(data) + 4  # SW1..SW3, CHK
    body = n.to_bytes(2, "big") + bytes([sw1, sw2, sw3]) + data
    return PREAMBLE + body + bytes([checksum(body)])


@dataclass(frozen=True)
class Reply:
    sw3: int
    data: bytes = field(repr=False)


class FrameDecoder:
    """Bytes in, replies out: finds the preamble, waits for a whole frame, checks it.

    Noise before a preamble is dropped; a frame whose checksum or length is
    wrong counts in ``bad`` and the search starts again just after its
    preamble, so one bad frame never hides the good one behind it."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.bad = 0

    def reset(self) -> None:
        self._buf.clear()
        self.bad = 0

    def feed(self, data: bytes) -> list[Reply]:
        self._buf += data
        out: list[Reply] = []
        while True:
            at = self._buf.find(PREAMBLE)
            if at < 0:
                del self._buf[: max(0, len(self._buf) - len(PREAMBLE) + 1)]  # keep a partial preamble
                return out
            del self._buf[:at]
            if len(self._buf) < 7:
                return out
            n = int.from_bytes(self._buf[5:7], "big")
            if not 4 <= n <= MAX_LEN:
                self.bad += 1
                del self._buf[:1]
                continue
            if len(self._buf) < 7 + n:
                return out
            body = bytes(self._buf[5 : 7 + n - 1])
            chk = self._buf[7 + n - 1]
            if checksum(body) != chk:
                self.bad += 1
                del self._buf[:1]
                continue
            del self._buf[: 7 + n]
            out.append(Reply(body[4], body[5:]))


@dataclass(frozen=True)
class CardRead:
    """What the dispenser gets of a card. Both values are personal: never in a repr or a log."""

    name: str = field(repr=False)
    id_number: str = field(repr=False)


@dataclass(frozen=True)
class ReaderEvent:
    """One thing the reader thread reports: a card, or a problem a citizen must hear about.

    kind: "card" | "bad_frame" (a reply that failed its checksum or made no sense) |
    "read_failed" (found and selected, then lost: a card taken away mid-read) |
    "not_answering" (the reader stopped answering) | "connected" | "lost" (the port)."""

    kind: str
    card: CardRead | None = None
    detail: str = ""


def decode_base_info(data: bytes) -> CardRead:
    """The name and ID number from a base-info reply's data; ValueError when it is not one.

    data = text length (2, big-endian) | photo length (2) | text | photo. Only the
    two fields are sliced out of the text; the rest is never decoded."""
    if len(data) < 4:
        raise ValueError("base info shorter than its header")
    text_len = int.from_bytes(data[0:2], "big")
    if text_len < ID_AT[0] + ID_AT[1] or len(data) < 4 + text_len:
        raise ValueError(f"text block of {text_len} bytes is too short")
    text = data[4 : 4 + text_len]

    def field_of(at: tuple[int, int]) -> str:
        return text[at[0] : at[0] + at[1]].decode("utf-16-le").rstrip(" \x00")

    try:
        name, number = field_of(NAME_AT), field_of(ID_AT)
    except UnicodeDecodeError:
        raise ValueError("text block is not UCS-2") from None
    if not name or len(number) != 18:
        raise ValueError("no name or no 18-character number in the text block")
    return CardRead(name, number)


def encode_base_info(name: str, id_number: str, address: str = "", photo: bytes = b"") -> bytes:
    """A base-info reply's data as a card holds it (for the simulator and emulators)."""
    values = {"name": name, "id_number": id_number, "address": address, "gender": "1", "nation": "01"}
    text = b""
    for fname, size in TEXT_FIELDS:
        raw = values.get(fname, "").encode("utf-16-le")[:size]
        text += raw + " ".encode("utf-16-le") * ((size - len(raw)) // 2)
    text += b"\x20\x00" * ((TEXT_SIZE - len(text)) // 2)
    photo = (photo + bytes(PHOTO_SIZE))[:PHOTO_SIZE]
    return TEXT_SIZE.to_bytes(2, "big") + PHOTO_SIZE.to_bytes(2, "big") + text + photo


def _deliver(on_event: Callable[[ReaderEvent], None], event: ReaderEvent) -> None:
    try:
        on_event(event)
    except Exception:  # the app's bug must not stop the reader
        log.exception("ID card event handler failed")


class SerialIdCardReader:
    """A GA/T 467 reader polled by its own thread (``idcard-reader``).

    on_event(ReaderEvent) is called on that thread; the app hands it on to
    its own thread. A card is reported once: the next one is reported only
    after a find has come back empty (the card left the field), whatever the
    reader itself does. Losing the port is reported once, and the thread
    reopens it until it is back (a reader unplugged and plugged in again)."""

    def __init__(
        self,
        port: str,
        on_event: Callable[[ReaderEvent], None],
        *,
        baudrate: int = 115200,
        poll_interval: float = 0.5,
        answer_timeout: float = 1.0,
        reconnect_delay: float = 1.0,
    ):
        self.port = port
        self.on_event = on_event
        self.baudrate = baudrate
        self.poll_interval = max(0.3, poll_interval)  # the standard's floor, whatever is asked
        self.answer_timeout = answer_timeout
        self.reconnect_delay = reconnect_delay
        self.connected = False
        self.answering: bool | None = None  # None: not asked yet
        self.reads = 0
        self.bad_frames = 0
        self._state: bool | None = None
        self._card_in_field = False
        self._decoder = FrameDecoder()
        self._serial = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="idcard-reader", daemon=True)

    def start(self) -> SerialIdCardReader:
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()
        return self

    def close(self, timeout: float = 3.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- the port ----------------------------------------------------------
    def _set_state(self, connected: bool, detail: str) -> None:
        if connected == self._state:
            return
        self._state = connected
        self.connected = connected
        (log.info if connected else log.warning)("%s", detail)
        _deliver(self.on_event, ReaderEvent("connected" if connected else "lost", detail=detail))

    def _open(self) -> bool:
        import serial

        try:
            self._serial = serial.Serial(self.port, self.baudrate, timeout=0.05, exclusive=True)
        except (serial.SerialException, OSError) as exc:
            self._set_state(
                False,
                f"ID card reader port {self.port} cannot be opened ({exc}): check the reader's cable, "
                "the udev rule (idcard.port) and that the kiosk user is in the dialout group",
            )
            return False
        self._decoder.reset()
        self._set_state(True, f"ID card reader on {self.port} connected")
        return True

    def _drop(self, exc: Exception) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except Exception:
                pass
        self._serial = None
        self._card_in_field = False
        self._set_state(False, f"ID card reader on {self.port} lost ({exc}): check the reader's cable")

    # -- one exchange --------------------------------------------------------
    def _ask(self, cmd: tuple[int, int]) -> Reply | None:
        """Send one command and wait for its reply; None when none came in time."""
        port = self._serial
        assert port is not None
        self._decoder.reset()
        port.reset_input_buffer()  # a late reply to an earlier command must not answer this one
        port.write(frame(*cmd))
        deadline = time.monotonic() + self.answer_timeout
        while time.monotonic() < deadline and not self._stop.is_set():
            data = port.read(port.in_waiting or 1)
            if not data:
                continue
            replies = self._decoder.feed(data)
            if replies:
                return replies[0]
            if self._decoder.bad:
                # Readers do not send a frame again: the exchange is lost, the next poll asks anew.
                self.bad_frames += self._decoder.bad
                raise _BadFrame
        return None

    def _poll(self) -> None:
        """find; on a card, select and read; report what a citizen must hear about."""
        try:
            found = self._ask(FIND)
            if found is None:
                self._no_answer()
                return
            self._answered()
            if found.sw3 != SW_FOUND:
                self._card_in_field = False  # the field is empty: the next card may be read
                return
            if self._card_in_field:
                return  # this reader finds a card still lying there: it was read already
            selected = self._ask(SELECT)
            if selected is None or selected.sw3 != SW_OK:
                # Found and then gone: a card swiped past or lifted at once.
                _deliver(self.on_event, ReaderEvent("read_failed", detail="select failed"))
                return
            info = self._ask(READ)
            if info is None or info.sw3 != SW_OK:
                _deliver(self.on_event, ReaderEvent("read_failed", detail="read failed: card taken away?"))
                return
            try:
                card = decode_base_info(info.data)
            except ValueError as e:
                self.bad_frames += 1
                _deliver(self.on_event, ReaderEvent("bad_frame", detail=f"base info: {e}"))
                return
        except _BadFrame:
            _deliver(self.on_event, ReaderEvent("bad_frame", detail="reply failed its checksum"))
            return
        self._card_in_field = True
        self.reads += 1
        _deliver(self.on_event, ReaderEvent("card", card))

    def _no_answer(self) -> None:
        if self.answering is not False:
            log.warning("ID card reader on %s does not answer: check its power and the baud rate", self.port)
            _deliver(self.on_event, ReaderEvent("not_answering", detail=f"no answer within {self.answer_timeout}s"))
        self.answering = False
        self._card_in_field = False

    def _answered(self) -> None:
        if self.answering is False:
            log.info("ID card reader on %s answers again", self.port)
        self.answering = True

    def _run(self) -> None:
        import serial

        # A pulled cable surfaces as SerialException, OSError or, from tcflush in
        # reset_input_buffer, termios.error (not an OSError): all mean "port lost".
        lost: tuple[type[Exception], ...] = (serial.SerialException, OSError)
        try:
            import termios

            lost += (termios.error,)
        except ImportError:  # not POSIX: pyserial raises SerialException there
            pass
        while not self._stop.is_set():
            if self._serial is None and not self._open():
                self._stop.wait(self.reconnect_delay)
                continue
            started = time.monotonic()
            try:
                self._poll()
            except lost as exc:
                self._drop(exc)
                self._stop.wait(self.reconnect_delay)
                continue
            # One exchange per poll interval, measured from its start.
            self._stop.wait(max(0.0, self.poll_interval - (time.monotonic() - started)))
        if self._serial is not None:
            self._serial.close()
            self._serial = None


class _BadFrame(Exception):
    pass


class SimIdCardReader:
    """A reader without hardware: ``present(name, id_number)`` reports a card as if read.

    on_event is called on the thread that calls present() or fail()."""

    def __init__(self, on_event: Callable[[ReaderEvent], None]):
        self.on_event = on_event
        self.connected = True
        self.answering: bool | None = True
        self.reads = 0

    def present(self, name: str, id_number: str) -> None:
        self.reads += 1
        _deliver(self.on_event, ReaderEvent("card", CardRead(name, id_number)))

    def fail(self, kind: str = "bad_frame") -> None:
        _deliver(self.on_event, ReaderEvent(kind, detail="simulated"))

    def start(self) -> SimIdCardReader:
        return self

    def close(self) -> None:
        pass

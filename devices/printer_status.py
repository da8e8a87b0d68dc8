"""Paper and online status by DLE EOT, read so that it can be trusted.

A status byte is one byte on a line that also carries other things: the
late answer to an earlier query, a second copy of an answer, automatic
status-back (ASB) bursts of four bytes, XON/XOFF, line noise.  Reading
"the next byte" turned a paper-end answer into "paper ok" when one stray
byte came first, so a query here:

1. discards what is waiting and waits for the line to go quiet, so an answer
   (or its duplicate) still on its way from an earlier query is not taken
   for this one;
2. sends DLE EOT n and reads until a byte with the fixed bits of a DLE EOT
   answer arrives or the reply timeout runs out, skipping every byte that
   does not have them.  ASB bytes can never pass: their first byte has
   bit 1 clear, the other three have bit 4 clear, while a DLE EOT answer has
   bits 1 and 4 set and bits 0 and 7 clear.

No answer is "unknown", never "paper out" and never "paper ok".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

DLE_EOT = b"\x10\x04"
PAPER_STATES = ("ok", "near_end", "out", "unknown")

# Long enough for a byte already on the wire at 9600 baud (about 1 ms each)
# plus a USB-serial adapter's latency timer (16 ms by default) to arrive.
QUIET = 0.03


@dataclass(frozen=True)
class PrinterStatus:
    online: bool | None  # None: the printer did not answer, we do not know
    paper: str  # "ok" | "near_end" | "out" | "unknown"
    detail: str = ""

    @property
    def can_print(self) -> bool:
        """Block issuing only on a *known* fault: unknown must not read as paper out."""
        return self.online is not False and self.paper != "out"

    @property
    def fault(self) -> bool:
        """A fault the printer itself reported (paper out, offline): a job it was given may be cut short."""
        return self.online is False or self.paper == "out"


def status_byte_valid(b: int) -> bool:
    # DLE EOT answers have bit 1 and bit 4 set, bits 0 and 7 clear.
    return b & 0x93 == 0x12


def parse_online(b: int) -> bool | None:
    """DLE EOT 1 (printer status): bit 3 set = offline."""
    if not status_byte_valid(b):
        return None
    return not b & 0x08


def parse_paper(b: int) -> str:
    """DLE EOT 4 (roll paper sensor): bits 5-6 = paper out, bits 2-3 = near end."""
    if not status_byte_valid(b):
        return "unknown"
    if b & 0x60:
        return "out"
    if b & 0x0C:
        return "near_end"
    return "ok"


class StatusLink(Protocol):
    """The two-way line a backend offers for status queries."""

    def read_some(self, timeout: float) -> bytes:
        """Whatever arrived within timeout seconds (b"" if nothing)."""

    def send(self, data: bytes) -> None: ...


def settle(link: StatusLink, limit: float) -> tuple[bytes, bool]:
    """Read and drop input until the line has been quiet for QUIET seconds (at most `limit` s).

    Returns what was dropped and whether the line went quiet at all."""
    dropped = bytearray()
    deadline = time.monotonic() + limit
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(dropped), False
        got = link.read_some(min(QUIET, left))
        if not got:
            # Quiet only after a whole QUIET of silence: the last sliver before the
            # deadline says nothing about a line that talks all the time.
            return bytes(dropped), left >= min(QUIET, limit)
        dropped += got


class NoisyLine(Exception):
    """The printer talks without being asked for the whole wait: a wrong baud rate or a
    wrong device turns the line into noise, and one noise byte in 16 has the fixed bits
    of a status answer, so any answer read from it would be a guess."""

    def __init__(self, dropped: int):
        super().__init__(f"{dropped} bytes arrived unasked")
        self.dropped = dropped


def ask(link: StatusLink, n: int, timeout: float) -> tuple[int | None, bytes]:
    """Send DLE EOT n; (the answer byte or None, the bytes skipped on the way).

    Raises NoisyLine when the line never goes quiet before the query."""
    dropped, quiet = settle(link, timeout)
    if not quiet:
        raise NoisyLine(len(dropped))
    skipped = bytearray(dropped)
    link.send(DLE_EOT + bytes([n]))
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, bytes(skipped)
        for b in link.read_some(left):
            if status_byte_valid(b):
                # Bytes after the answer stay unread; the next query settles them away.
                return b, bytes(skipped)
            skipped.append(b)


PAPER_DETAIL = {
    "ok": "paper ok",
    "near_end": "paper near end: load a new roll soon",
    "out": "paper out: load a new roll",
    "unknown": "paper sensor did not answer",
}


def read_status(link: StatusLink, timeout: float, where: str) -> PrinterStatus:
    """DLE EOT 1 then DLE EOT 4; `where` names the printer in the messages ("printer on /dev/...")."""
    try:
        online_byte, skipped = ask(link, 1, timeout)
        paper_byte = ask(link, 4, timeout)[0] if online_byte is not None else None
    except NoisyLine as e:
        return PrinterStatus(
            None,
            "unknown",
            f"{where} sends data without being asked ({e.dropped} bytes in {timeout:g} s): check "
            "printer.baudrate against the printer's self-test slip, and that the port is the printer",
        )
    if online_byte is None:
        junk = f" (it sent {len(skipped)} bytes that are not status answers)" if skipped else ""
        return PrinterStatus(
            None,
            "unknown",
            f"{where} did not answer the status query within {timeout:g} s{junk}: check that it is "
            "switched on; some printers do not answer DLE EOT at all (printer.status_timeout sets the wait)",
        )
    online = parse_online(online_byte)
    paper = "unknown" if paper_byte is None else parse_paper(paper_byte)
    detail = PAPER_DETAIL[paper]
    if online is False:
        detail = "printer reports offline (cover open or paper out?); " + detail
    return PrinterStatus(online, paper, detail)

"""ESC/POS ticket documents and their encoding to printer bytes.

A ticket is built as a small `Document` of blocks (text lines, feeds, a QR
code, raster images, a cut) and turned into bytes by `encode(doc, profile)`.
The profile says what the printer can do, so the same ticket prints on a
Chinese printer with native QR (about 300 bytes), on a printer without a
Chinese font (Chinese lines as raster images) or one without native QR.

We encode ourselves instead of using python-escpos's text path because its
Chinese handling only switches to GB18030 for strings with common Chinese
characters and prints full-width punctuation alone as '???'.

Command reference (Epson ESC/POS, followed by the common Chinese printers):
  ESC @            1B 40            initialise
  ESC a n          1B 61 n          align 0 left / 1 centre / 2 right
  ESC E n          1B 45 n          emphasis (bold) off/on
  GS ! n           1D 21 n          character size: (width-1) << 4 | (height-1)
  FS & / FS .      1C 26 / 1C 2E    enter / leave Chinese character mode
  LF               0A               print the line buffer and feed one line
  ESC d n          1B 64 n          print and feed n lines
  GS ( k ...       1D 28 6B pL pH cn fn [params]   2D code (cn = 0x31 is QR)
  GS v 0 m x y d   1D 76 30 m xL xH yL yH data     raster bit image
  GS V m           1D 56 m          cut (0 full, 1 partial)
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from PIL import Image as PILImage

from devices import textraster
from kiosk.core.ports import PAPER_DOTS, PRINTER_PROFILES

# The document vocabulary is shared with the roles that build tickets (kiosk/core/ports/document.py);
# this module turns it into bytes. Re-exported: encoder tests and callers read it from here.
from kiosk.core.ports.document import (  # noqa: F401
    ALIGNS,
    QR,
    QR_ERROR_LEVELS,
    QR_MAX_BYTES,
    Block,
    Cut,
    Document,
    Feed,
    Image,
    Text,
    check_align,
)

ESC = b"\x1b"
GS = b"\x1d"
FS = b"\x1c"
LF = b"\n"

INIT = ESC + b"@"
CHINESE_ON = FS + b"&"
CHINESE_OFF = FS + b"."

RASTER_BAND_ROWS = 256  # send tall images in bands: small printers have small receive buffers


# --- printer profiles -----------------------------------------------------


@dataclass(frozen=True)
class PrinterProfile:
    """What a printer model can do; chosen by name in the device config."""

    name: str
    dots_per_line: int = PAPER_DOTS[80]  # 58 mm printers have PAPER_DOTS[58]
    chinese_text: bool = True  # has a GB18030 font; False → Chinese lines as raster
    chinese_mode_commands: bool = False  # needs FS & / FS . around Chinese text
    native_qr: bool = True  # understands GS ( k; False → QR as raster
    # Serial flow control when the config leaves it open.  XON/XOFF by default:
    # it needs no extra wires, and a printer that does not send XOFF is not
    # disturbed by it (we never read 0x11/0x13 as a status answer).
    flow_control: str = "xonxoff"
    font_path: str | None = None  # CJK font for raster text (wiring hands in kiosk/core/fonts' find)

    @property
    def columns(self) -> int:
        """Half-width characters per line at size 1."""
        return self.dots_per_line // textraster.HALF_CELL


PROFILES: dict[str, PrinterProfile] = {
    p.name: p
    for p in (
        PrinterProfile("default"),
        PrinterProfile("chinese-mode", chinese_mode_commands=True),
        PrinterProfile("no-chinese", chinese_text=False),
        PrinterProfile("no-qr", native_qr=False),
        PrinterProfile("chinese-mode-no-qr", chinese_mode_commands=True, native_qr=False),
        PrinterProfile("no-chinese-no-qr", chinese_text=False, native_qr=False),
    )
}
# check-config accepts exactly the names in ports; a profile added here and
# not there (or the other way round) would be refused or crash at start.
if tuple(PROFILES) != PRINTER_PROFILES:
    raise RuntimeError("devices/escpos.py PROFILES and kiosk/core/ports.py PRINTER_PROFILES disagree: fix both")


def get_profile(name: str, **overrides) -> PrinterProfile:
    """A built-in profile, optionally with fields replaced (e.g. dots_per_line=384)."""
    try:
        profile = PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown printer profile {name!r}: use one of {', '.join(PROFILES)}") from None
    return dataclasses.replace(profile, **overrides) if overrides else profile


DEFAULT_PROFILE = PROFILES["default"]


# --- single commands (each has a golden-byte test) ------------------------


def align_cmd(align: str) -> bytes:
    return ESC + b"a" + bytes([ALIGNS[check_align(align)]])


def bold_cmd(on: bool) -> bytes:
    return ESC + b"E" + bytes([1 if on else 0])


def size_cmd(width: int, height: int) -> bytes:
    return GS + b"!" + bytes([((width - 1) << 4) | (height - 1)])


def feed_cmd(lines: int) -> bytes:
    return ESC + b"d" + bytes([lines])


def cut_cmd(partial: bool = False) -> bytes:
    return GS + b"V" + bytes([1 if partial else 0])


def _qr_function(fn: int, params: bytes) -> bytes:
    """GS ( k with cn = 49 (QR); pL pH count cn, fn and the parameters."""
    length = len(params) + 2
    return GS + b"(k" + bytes([length & 0xFF, length >> 8, 49, fn]) + params


def qr_cmds(payload: bytes, module_size: int, error_level: str) -> bytes:
    """Select model 2, set module size and error level, store the data, print it."""
    return b"".join(
        (
            _qr_function(65, b"\x32\x00"),  # fn 65: model 2
            _qr_function(67, bytes([module_size])),  # fn 67: module size
            _qr_function(69, bytes([QR_ERROR_LEVELS[error_level]])),  # fn 69: error level
            _qr_function(80, b"\x30" + payload),  # fn 80: store data (m = 48)
            _qr_function(81, b"\x30"),  # fn 81: print the stored symbol
        )
    )


def raster_cmds(image: PILImage.Image) -> bytes:
    """GS v 0 for an image, in bands of RASTER_BAND_ROWS rows.

    Dark pixels (below 50 % grey) become dots; the width is padded to a
    whole byte with white."""
    grey = image.convert("L")
    width_bytes = (grey.width + 7) // 8
    if grey.width % 8:
        padded = PILImage.new("L", (width_bytes * 8, grey.height), 255)
        padded.paste(grey, (0, 0))
        grey = padded
    # In mode "1" a set bit is white; map dark to 255 so a set bit is a dot.
    bits = grey.point(lambda v: 255 if v < 128 else 0, mode="1")
    out = bytearray()
    for top in range(0, bits.height, RASTER_BAND_ROWS):
        band = bits.crop((0, top, bits.width, min(bits.height, top + RASTER_BAND_ROWS)))
        rows = band.height
        out += GS + b"v0\x00" + bytes([width_bytes & 0xFF, width_bytes >> 8, rows & 0xFF, rows >> 8])
        out += band.tobytes()
    return bytes(out)


# --- text handling --------------------------------------------------------


def clean_text(text: str) -> list[str]:
    """Split into lines and drop control characters.

    Service names come from the central config; an ESC byte in one must not
    reach the printer as a command (escape codes printed as text, or worse,
    a stray cut)."""
    lines = []
    # not str.splitlines(): it also splits on GS, FS and RS (0x1d, 0x1c, 0x1e)
    for raw_line in re.split(r"\r\n|\r|\n", text):
        kept = []
        for ch in raw_line:
            if ch == "\t":
                kept.append(" ")
            elif unicodedata.category(ch) in ("Cc", "Cs"):
                # Cs: a lone surrogate cannot be encoded; show the replacement mark
                if unicodedata.category(ch) == "Cs":
                    kept.append("\ufffd")
            else:
                kept.append(ch)
        lines.append("".join(kept))
    return lines


def wrap(text: str, columns: int) -> list[str]:
    """Greedy wrap by printer cells (Chinese = 2); ASCII words break at spaces."""
    if textraster.text_cells(text) <= columns:
        return [text]
    lines: list[str] = []
    current = ""
    used = 0
    for ch in text:
        w = textraster.cells(ch)
        if used + w > columns and current:
            head, tail = current, ""
            if ch != " " and " " in current and current[-1] != " " and ch.isascii():
                head, _, tail = current.rpartition(" ")
            lines.append(head.rstrip())
            current, used = tail, textraster.text_cells(tail)
            if ch == " " and not current:
                continue
        current += ch
        used += w
    lines.append(current)
    return lines


def gb18030(text: str) -> bytes:
    return text.encode("gb18030")


# --- encoder ----------------------------------------------------------------


class _Encoder:
    """Tracks the printer's mode so each command is sent only when it changes."""

    def __init__(self, profile: PrinterProfile):
        self.profile = profile
        self.out = bytearray(INIT)
        self.align = "left"
        self.bold = False
        self.size = (1, 1)

    def set_align(self, align: str) -> None:
        if align != self.align:
            self.out += align_cmd(align)
            self.align = align

    def set_style(self, bold: bool, width: int, height: int) -> None:
        if bold != self.bold:
            self.out += bold_cmd(bold)
            self.bold = bold
        if (width, height) != self.size:
            self.out += size_cmd(width, height)
            self.size = (width, height)

    def text(self, block: Text) -> None:
        self.set_align(block.align)
        columns = max(1, self.profile.columns // block.width)
        for logical in clean_text(block.text):
            for line in wrap(logical, columns):
                if line.isascii() or self.profile.chinese_text:
                    self.text_line(line, block)
                else:
                    self.image(
                        textraster.render_line(line, block.width, block.height, block.bold, self.profile.font_path),
                        block.align,
                        line_gap=True,
                    )

    def text_line(self, line: str, block: Text) -> None:
        self.set_style(block.bold, block.width, block.height)
        data = gb18030(line)
        if self.profile.chinese_mode_commands and not line.isascii():
            data = CHINESE_ON + data + CHINESE_OFF
        self.out += data + LF

    def image(self, image: PILImage.Image, align: str, line_gap: bool = False) -> None:
        limit = self.profile.dots_per_line
        if image.width > limit:  # shrink rather than let the printer clip or wrap it
            image = image.resize((limit, max(1, image.height * limit // image.width)))
        if line_gap:  # rendered text keeps the printer's line spacing below it
            spaced = PILImage.new("L", (image.width, image.height + 6), 255)
            spaced.paste(image, (0, 0))
            image = spaced
        self.set_align(align)
        self.out += raster_cmds(image)

    def qr(self, block: QR) -> None:
        if block.margin_lines:
            self.out += feed_cmd(block.margin_lines)
        if self.profile.native_qr:
            self.set_align(block.align)
            self.out += qr_cmds(block.payload, block.module_size, block.error_level)
        else:
            self.image(qr_image(block), block.align)
        if block.margin_lines:
            self.out += feed_cmd(block.margin_lines)

    def add(self, block: Block) -> None:
        if isinstance(block, Text):
            self.text(block)
        elif isinstance(block, Feed):
            self.out += feed_cmd(block.lines)
        elif isinstance(block, QR):
            self.qr(block)
        elif isinstance(block, Image):
            self.image(block.image, block.align)
        elif isinstance(block, Cut):
            if block.feed:
                self.out += feed_cmd(block.feed)
            self.out += cut_cmd(block.partial)
        else:
            raise TypeError(f"not a ticket block: {block!r}")


def qr_image(block: QR) -> PILImage.Image:
    return qr_image_from_payload(block.payload, block.module_size, block.error_level)


def qr_image_from_payload(payload: bytes, module_size: int, error_level: str) -> PILImage.Image:
    """The QR symbol as an image, one module = module_size dots, no quiet zone
    (the native command prints none either; the paper around it is white).
    Shared by the no-qr profile and the preview, so both draw the same symbol."""
    import qrcode  # imported here: only the no-qr profile and the preview need it

    levels = {
        "L": qrcode.constants.ERROR_CORRECT_L,
        "M": qrcode.constants.ERROR_CORRECT_M,
        "Q": qrcode.constants.ERROR_CORRECT_Q,
        "H": qrcode.constants.ERROR_CORRECT_H,
    }
    code = qrcode.QRCode(error_correction=levels[error_level], box_size=module_size, border=0)
    code.add_data(payload)
    code.make(fit=True)
    return code.make_image(fill_color="black", back_color="white").get_image().convert("L")


def encode(doc: Document | Iterable[Block], profile: PrinterProfile = DEFAULT_PROFILE) -> bytes:
    """The exact bytes to send to the printer for this document."""
    encoder = _Encoder(profile)
    for block in doc:
        encoder.add(block)
    return bytes(encoder.out)

"""The printed document, as the roles build it and the printer adapters encode it.

A ticket is an ordered list of blocks (text lines, feeds, a QR code, a raster
image, a cut). Roles build one (kiosk/roles/dispenser/layout.py) without
knowing any printer; devices/escpos.py turns it into the bytes of a printer
profile. Both sides import it from here, the one part of kiosk/ that devices/
may import.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image as PILImage

ALIGNS = {"left": 0, "center": 1, "right": 2}
# ESC/POS's codes for the QR error levels; the keys are what a document may ask for.
QR_ERROR_LEVELS = {"L": 48, "M": 49, "Q": 50, "H": 51}
QR_MAX_BYTES = 7089  # QR version 40, level L, byte mode upper bound; printers accept less


def check_align(align: str) -> str:
    if align not in ALIGNS:
        raise ValueError(f"align must be left, center or right, got {align!r}")
    return align


@dataclass(frozen=True)
class Text:
    """One logical line of text; long lines wrap to the paper width."""

    text: str
    align: str = "left"
    bold: bool = False
    width: int = 1  # character width multiplier, 1..8
    height: int = 1  # character height multiplier, 1..8

    def __post_init__(self) -> None:
        check_align(self.align)
        for name in ("width", "height"):
            value = getattr(self, name)
            if not 1 <= value <= 8:
                raise ValueError(f"text {name} multiplier must be 1..8, got {value}")


@dataclass(frozen=True)
class Feed:
    lines: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.lines <= 255:
            raise ValueError(f"feed must be 1..255 lines, got {self.lines}")


@dataclass(frozen=True)
class QR:
    data: str
    module_size: int = 6  # dots per QR module, 1..16
    error_level: str = "M"
    align: str = "center"
    # Blank lines fed above and below: phone cameras need a quiet zone of about
    # four modules, and neither the native command nor the raster adds one.
    margin_lines: int = 1

    def __post_init__(self) -> None:
        check_align(self.align)
        if not 0 <= self.margin_lines <= 10:
            raise ValueError(f"QR margin must be 0..10 lines, got {self.margin_lines}")
        if not 1 <= self.module_size <= 16:
            raise ValueError(f"QR module size must be 1..16 dots, got {self.module_size}")
        if self.error_level not in QR_ERROR_LEVELS:
            raise ValueError(f"QR error level must be one of L M Q H, got {self.error_level!r}")
        if not self.data:
            raise ValueError("QR data is empty")
        if len(self.payload) > QR_MAX_BYTES:
            raise ValueError(f"QR data is {len(self.payload)} bytes, more than a QR code holds")

    @property
    def payload(self) -> bytes:
        # UTF-8 is what phone scanners assume for byte-mode QR data.
        return self.data.encode("utf-8")


@dataclass(frozen=True)
class Image:
    """A raster image (logo, rendered text); black where the image is dark."""

    image: PILImage.Image
    align: str = "center"

    def __post_init__(self) -> None:
        check_align(self.align)


@dataclass(frozen=True)
class Cut:
    feed: int = 4  # lines fed first: the cutter sits a few lines above the print head
    partial: bool = False


Block = Text | Feed | QR | Image | Cut


@dataclass
class Document:
    """An ordered list of blocks with chainable builders:

    Document().text("取号凭条", align="center", bold=True).qr(url).cut()
    """

    blocks: list[Block] = field(default_factory=list)

    def add(self, block: Block) -> Document:
        self.blocks.append(block)
        return self

    def text(self, text: str, align: str = "left", bold: bool = False, width: int = 1, height: int = 1) -> Document:
        return self.add(Text(text, align, bold, width, height))

    def feed(self, lines: int = 1) -> Document:
        return self.add(Feed(lines))

    def qr(
        self, data: str, module_size: int = 6, error_level: str = "M", align: str = "center", margin_lines: int = 1
    ) -> Document:
        return self.add(QR(data, module_size, error_level, align, margin_lines))

    def image(self, image: PILImage.Image, align: str = "center") -> Document:
        return self.add(Image(image, align))

    def cut(self, feed: int = 4, partial: bool = False) -> Document:
        return self.add(Cut(feed, partial))

    def __iter__(self) -> Iterator[Block]:
        return iter(self.blocks)

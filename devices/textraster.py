"""Draw a line of text the way a thermal printer lays it out, as dots.

Two users need this: the "no-chinese" printer profile (printers without a
Chinese font get their Chinese lines as raster images) and the ticket preview
(which must show what the printer would print).  Both use the same grid as the
printer's own font A: a half-width cell is 12 x 24 dots, a full-width cell
24 x 24, and the width/height multipliers of GS ! scale the cells.  A
character is full width when the printer receives it as a multi-byte GB18030
sequence, which is exactly how a Chinese printer decides.
"""

from __future__ import annotations

import functools
import os

from PIL import Image, ImageDraw, ImageFont

HALF_CELL = 12  # dots, font A half-width cell
CELL_HEIGHT = 24  # dots, font A cell height


class FontNotFound(RuntimeError):
    """No CJK font to draw with: Chinese cannot be drawn as dots."""


# devices/ does not search the system for fonts (kiosk/core/fonts.py does,
# once, for the screens too): the composition root hands the path in, per
# call (``font_path``) or with the printer profile (its ``font_path``).


def font_face(path: str | None) -> tuple[str, int]:
    """(file, face index) from "file" or "file.ttc#2"."""
    if not path:
        raise FontNotFound(
            "no CJK font given for Chinese raster text: install fonts-wqy-microhei "
            "(apt-get install fonts-wqy-microhei) or set [display] font in the device config"
        )
    face = 0
    if "#" in path:
        path, _, face_text = path.rpartition("#")
        face = int(face_text)
    if not os.path.exists(path):
        raise FontNotFound(
            f"CJK font {path} not found: fix [display] font in the device config or install fonts-wqy-microhei"
        )
    return path, face


@functools.lru_cache(maxsize=8)
def _load_font(path: str, face: int, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size=size, index=face)


def cells(ch: str) -> int:
    """Width of one character in half-width cells (1 or 2), as the printer sees it."""
    return 1 if len(ch.encode("gb18030", errors="replace")) == 1 else 2


def text_cells(text: str) -> int:
    return sum(cells(ch) for ch in text)


def render_line(
    text: str,
    width: int = 1,
    height: int = 1,
    bold: bool = False,
    font_path: str | None = None,
) -> Image.Image:
    """Render one line to a greyscale image (white paper, black ink).

    The line is drawn at the base 24-dot size cell by cell, then scaled with
    nearest-neighbour like the printer's own dot multiplication, so a 2x4
    number in the preview looks as blocky as on paper."""
    path, face = font_face(font_path)
    font = _load_font(path, face, CELL_HEIGHT - 2)
    base_w = max(1, text_cells(text) * HALF_CELL)
    img = Image.new("L", (base_w, CELL_HEIGHT), 255)
    draw = ImageDraw.Draw(img)
    x = 0
    for ch in text:
        cell_w = cells(ch) * HALF_CELL
        centre = (x + cell_w / 2, CELL_HEIGHT / 2)
        draw.text(centre, ch, font=font, fill=0, anchor="mm")
        if bold:  # printers emphasise by double-striking one dot to the right
            draw.text((centre[0] + 1, centre[1]), ch, font=font, fill=0, anchor="mm")
        x += cell_w
    if width != 1 or height != 1:
        img = img.resize((base_w * width, CELL_HEIGHT * height), Image.Resampling.NEAREST)
    return img

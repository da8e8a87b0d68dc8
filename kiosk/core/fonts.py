"""Find a font that has Chinese glyphs.

Kivy's default font (Roboto) has none, so every label would show boxes.
Kivy's SDL2 text provider opens only face 0 of a .ttc: wqy-microhei face 0
is Simplified Chinese, but Noto CJK's face 0 is the Japanese variant, so
the Noto .ttc comes last and the SC-only .otf files are preferred to it.
"""
from __future__ import annotations

import os

CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansSC-Regular.otf",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)

INSTALL_HINT = "no Chinese font found: install one with `sudo apt-get install fonts-wqy-microhei`"


class FontMissing(Exception):
    pass


def find_cjk_font(configured: str = "") -> str:
    """The configured font if it exists, else the first known CJK font on the system."""
    if configured:
        if os.path.isfile(configured):
            return configured
        raise FontMissing(f"display.font {configured!r} does not exist ({INSTALL_HINT}, or fix the path)")
    env = os.environ.get("KIOSK_FONT")
    for path in ((env,) if env else ()) + CANDIDATES:
        if path and os.path.isfile(path):
            return path
    raise FontMissing(INSTALL_HINT)

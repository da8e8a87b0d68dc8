"""Find a font that has Chinese glyphs: once, for the screens and the printer.

Kivy's default font (Roboto) has none, so every label would show boxes; the
printer's raster text (the "no-chinese" profile) and the ticket preview draw
Chinese with Pillow and need one too. devices/ does not look for fonts
itself: kiosk/wiring.py hands it the path found here, so the screens and the
paper can never disagree about which font the device has.

A .ttc holds several faces. Kivy's SDL2 text provider opens only face 0:
wqy-microhei face 0 is Simplified Chinese, but Noto CJK's face 0 is the
Japanese variant (Japanese glyph forms look wrong to a Chinese reader). So the
SC-only .otf files come before the Noto .ttc, and the .ttc is offered only to
Pillow (``any_face=True``), as "file.ttc#2" for its Simplified Chinese face.
"""

from __future__ import annotations

import os

# (path, face index), best first.
CANDIDATES: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansSC-Regular.otf", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
)

INSTALL_HINT = "no Chinese font found: install one with `sudo apt-get install fonts-wqy-microhei`"


class FontMissing(Exception):
    pass


def find_cjk_font(configured: str = "", *, any_face: bool = False) -> str:
    """The configured font if it exists, else the first known CJK font on the system.

    With ``any_face`` (Pillow, which opens any face of a .ttc) the answer may
    name a face as "file.ttc#2"; without it (Kivy) only face-0 fonts are offered."""
    if configured:
        if os.path.isfile(configured.rpartition("#")[0] if any_face and "#" in configured else configured):
            return configured
        raise FontMissing(f"display.font {configured!r} does not exist ({INSTALL_HINT}, or fix the path)")
    env = os.environ.get("KIOSK_FONT")
    if env and os.path.isfile(env):
        return env
    for path, face in CANDIDATES:
        if (face == 0 or any_face) and os.path.isfile(path):
            return f"{path}#{face}" if face else path
    raise FontMissing(INSTALL_HINT)

"""One CJK font finder (kiosk/core/fonts.py) for the screens and for the printer side."""

from __future__ import annotations

import pytest

from kiosk.core import fonts


def test_kivy_gets_a_face_zero_font_and_pillow_may_get_a_face(tmp_path, monkeypatch):
    ttc = tmp_path / "NotoSansCJK-Regular.ttc"
    ttc.write_bytes(b"not really a font")
    monkeypatch.delenv("KIOSK_FONT", raising=False)
    monkeypatch.setattr(fonts, "CANDIDATES", ((str(ttc), 2),))
    # Kivy opens only face 0 of a .ttc, which is Japanese in Noto CJK: not offered to the screens
    with pytest.raises(fonts.FontMissing, match="fonts-wqy-microhei"):
        fonts.find_cjk_font()
    assert fonts.find_cjk_font(any_face=True) == f"{ttc}#2"


def test_a_configured_font_wins_and_may_name_a_face_for_pillow(tmp_path):
    ttc = tmp_path / "x.ttc"
    ttc.write_bytes(b"x")
    assert fonts.find_cjk_font(str(ttc)) == str(ttc)
    assert fonts.find_cjk_font(f"{ttc}#1", any_face=True) == f"{ttc}#1"
    with pytest.raises(fonts.FontMissing):
        fonts.find_cjk_font(f"{ttc}#1")  # Kivy cannot open "file#1"

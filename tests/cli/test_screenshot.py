"""`kiosk screenshot` renders real frames with a real CJK font, with no display."""

import os
import subprocess
import sys

import pytest
from PIL import Image, ImageChops, ImageFont

from kiosk.core.fonts import FontMissing, find_cjk_font
from tests.helpers import ROOT, write_config


def run_kiosk(*args, timeout=120):
    env = {**os.environ, "SDL_VIDEODRIVER": "offscreen"}
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout, env=env
    )


def test_found_font_has_chinese_glyphs_not_boxes():
    font = ImageFont.truetype(find_cjk_font(), 48)
    box = font.getmask("\ue000")  # private-use code point: drawn as the 'missing glyph' box
    for ch in "取号办件查询评价满意":
        assert font.getmask(ch).getbbox() is not None
        assert bytes(font.getmask(ch)) != bytes(box), f"{ch} renders as a box"


def test_missing_configured_font_names_the_package(tmp_path):
    with pytest.raises(FontMissing) as e:
        find_cjk_font(str(tmp_path / "nope.ttf"))
    assert "fonts-wqy-microhei" in str(e.value)
    r = run_kiosk(
        "screenshot",
        "--config",
        str(write_config(tmp_path, {"display": {"font": "nope.ttf"}})),
        "--screen",
        "home",
        "--out",
        str(tmp_path / "x.png"),
    )
    assert r.returncode == 3 and "fonts-wqy-microhei" in r.stderr and "Traceback" not in r.stderr


def test_screenshot_home_in_both_languages(tmp_path):
    cfg = write_config(tmp_path, {"display": {"width": 1024, "height": 600}})
    zh, en = tmp_path / "zh.png", tmp_path / "en.png"
    for out, lang in ((zh, "zh"), (en, "en")):
        r = run_kiosk("screenshot", "--config", str(cfg), "--screen", "home", "--out", str(out), "--lang", lang)
        assert r.returncode == 0, r.stderr[-2000:]
    a, b = Image.open(zh).convert("RGB"), Image.open(en).convert("RGB")
    assert a.size == (1024, 600)
    # Real pixels: the header is the theme's deep blue, the page is not one flat colour.
    assert a.getpixel((5, 5)) == (11, 61, 145)
    assert len(a.getcolors(maxcolors=1 << 20)) > 50
    # The language really changed what was drawn.
    assert ImageChops.difference(a, b).getbbox() is not None


def test_screenshot_of_a_screen_the_device_does_not_have(tmp_path):
    cfg = write_config(tmp_path, {"device": {"roles": ["pad"]}})
    r = run_kiosk("screenshot", "--config", str(cfg), "--screen", "dispenser", "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "not on this device" in r.stderr

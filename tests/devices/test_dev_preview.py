"""The preview interprets the exact bytes the printer would get."""

import shutil
import subprocess

import pytest
from PIL import Image

from devices import escpos, textraster
from devices.escpos import Text, encode, get_profile
from devices.preview import interpret, render_png
from tests.helpers import printer_font

ZBARIMG = shutil.which("zbarimg")


def decode_qr(path) -> list[str]:
    out = subprocess.run([ZBARIMG, "-q", "--raw", str(path)], capture_output=True, text=True, timeout=30)
    return out.stdout.split()


@pytest.mark.parametrize(
    "profile", ["default", "chinese-mode", "no-chinese", "no-qr", "chinese-mode-no-qr", "no-chinese-no-qr"]
)
def test_ticket_preview_shows_text_and_a_scannable_qr(tmp_path, ticket, ticket_url, profile):
    out = tmp_path / "ticket.png"
    preview = render_png(encode(ticket, get_profile(profile, font_path=printer_font())), out, font_path=printer_font())
    assert preview.problems == []
    assert preview.cuts == 1
    if profile in ("default", "chinese-mode", "no-qr", "chinese-mode-no-qr"):
        assert preview.lines[:3] == ["北京市朝阳区政务服务中心", "社保医保综合窗口", "A023"]
    else:  # Chinese lines arrive as images; only ASCII stays text
        assert preview.lines == ["A023"]
        assert preview.rasters >= 5
    if profile.endswith("no-qr"):
        assert preview.qr_payloads == []
    else:
        assert preview.qr_payloads == [ticket_url.encode()]
    image = Image.open(out)
    assert image.width == 576 + 2 * 24
    if ZBARIMG:
        assert decode_qr(out) == [ticket_url]


def test_sizes_and_alignment_are_drawn(tmp_path):
    small = interpret(encode([Text("8", align="left")]), font_path=printer_font()).image
    big = interpret(encode([Text("8", align="right", width=4, height=4)]), font_path=printer_font()).image
    assert big.height > small.height + 60

    def ink_columns(img):
        grey = img.convert("L")
        return [x for x in range(grey.width) if any(grey.getpixel((x, y)) < 100 for y in range(grey.height))]

    assert max(ink_columns(small)) < 24 + 12  # inside the first cell after the margin
    assert min(ink_columns(big)) > 24 + 576 - 4 * 12 - 1  # in the last 4x-wide cell


def test_unknown_bytes_are_reported_not_printed():
    data = b"\x1b@AB\x1bZ\x07CD\x1d\x99\n\x1c\x41"
    preview = interpret(data, font_path=printer_font())
    assert preview.lines == ["ABCD"]
    assert len(preview.problems) == 4
    assert "ESC 0x5a" in preview.problems[0]
    assert "0x07" in preview.problems[1]
    assert "GS 0x99" in preview.problems[2]
    assert "FS 0x41" in preview.problems[3]
    # the marker is drawn in red in the margin so a technician notices it
    assert (220, 0, 0) in {c for _, c in preview.image.getcolors(1 << 20)}


def test_truncated_and_invalid_streams_do_not_crash():
    assert interpret(b"\x1d\x28\x6b\x10\x00\x31", font_path=printer_font()).problems  # QR data cut short
    assert interpret(b"\x1d\x76\x30\x00\x02\x00\x05\x00\x00", font_path=printer_font()).problems  # raster cut short
    assert interpret(b"\xd6", font_path=printer_font()).problems  # half a Chinese character
    assert interpret(b"A", font_path=printer_font()).problems == [
        "byte 1: text at the end without LF stays in the printer's buffer"
    ]


def test_chinese_bytes_outside_chinese_mode_are_flagged():
    # a printer that needs FS & prints garbage for Chinese sent after FS .
    data = b"\x1c\x26\xd6\xd0\x1c\x2e\n\xd6\xd0\n"
    preview = interpret(data, font_path=printer_font())
    assert preview.lines == ["中", "中"]
    assert len(preview.problems) == 1 and "FS &" in preview.problems[0]


def test_raster_image_round_trip():
    img = Image.new("L", (16, 3), 255)
    img.putpixel((3, 1), 0)
    preview = interpret(escpos.INIT + escpos.align_cmd("left") + escpos.raster_cmds(img), font_path=printer_font())
    assert preview.rasters == 1
    page = preview.image.convert("L")
    dark = [(x, y) for x in range(page.width) for y in range(page.height) if page.getpixel((x, y)) < 100]
    assert dark == [(24 + 3, 24 + 1)]


def test_devices_draw_only_with_the_font_they_are_given():
    # devices/ has no font finder of its own (kiosk/core/fonts.py is the one):
    # without a font from its caller, raster text says what to do instead of guessing.
    with pytest.raises(textraster.FontNotFound, match="fonts-wqy-microhei"):
        textraster.render_line("中")
    with pytest.raises(textraster.FontNotFound, match="not found"):
        textraster.render_line("中", font_path="/nonexistent/font.ttc#2")
    img = textraster.render_line("中", font_path=printer_font())
    assert img.getextrema()[0] == 0  # ink: the glyph was drawn

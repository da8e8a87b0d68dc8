"""Golden-byte tests for the ESC/POS encoder (expected bytes computed by hand
from the Epson ESC/POS reference)."""

import pytest
from PIL import Image

from devices import escpos
from devices.escpos import QR, Cut, Feed, Text, encode, get_profile
from tests.helpers import printer_font

INIT = b"\x1b\x40"


# --- single commands ----------------------------------------------------------


@pytest.mark.parametrize(
    "align, expected", [("left", b"\x1b\x61\x00"), ("center", b"\x1b\x61\x01"), ("right", b"\x1b\x61\x02")]
)
def test_align(align, expected):
    assert escpos.align_cmd(align) == expected


def test_bold():
    assert escpos.bold_cmd(True) == b"\x1b\x45\x01"
    assert escpos.bold_cmd(False) == b"\x1b\x45\x00"


@pytest.mark.parametrize(
    "w, h, expected",
    [(1, 1, b"\x1d\x21\x00"), (2, 3, b"\x1d\x21\x12"), (4, 4, b"\x1d\x21\x33"), (8, 8, b"\x1d\x21\x77")],
)
def test_size(w, h, expected):
    assert escpos.size_cmd(w, h) == expected


def test_feed_and_cut():
    assert escpos.feed_cmd(3) == b"\x1b\x64\x03"
    assert escpos.cut_cmd() == b"\x1d\x56\x00"
    assert escpos.cut_cmd(partial=True) == b"\x1d\x56\x01"


def test_native_qr_sequence():
    expected = (
        b"\x1d\x28\x6b\x04\x00\x31\x41\x32\x00"  # model 2
        b"\x1d\x28\x6b\x03\x00\x31\x43\x04"  # module size 4
        b"\x1d\x28\x6b\x03\x00\x31\x45\x31"  # error level M (49)
        b"\x1d\x28\x6b\x05\x00\x31\x50\x30\x41\x42"  # store "AB": pL = 2 + 3
        b"\x1d\x28\x6b\x03\x00\x31\x51\x30"  # print
    )
    assert escpos.qr_cmds(b"AB", 4, "M") == expected


def test_native_qr_long_data_length_bytes():
    cmds = escpos.qr_cmds(b"x" * 300, 6, "H")
    store = cmds.index(b"\x31\x50\x30") - 4  # GS ( k pL pH precede cn fn m
    assert cmds[store + 2 : store + 4] == b"\x2f\x01"  # 303 = 0x012F, little endian
    assert b"\x1d\x28\x6b\x03\x00\x31\x45\x33" in cmds  # level H = 51


def test_raster_image_bits():
    img = Image.new("L", (10, 2), 255)
    img.putpixel((0, 0), 0)
    img.putpixel((9, 0), 0)
    # 10 dots → 2 bytes per row; row 0 = 1000 0000 0100 0000, row 1 blank
    assert escpos.raster_cmds(img) == b"\x1d\x76\x30\x00\x02\x00\x02\x00\x80\x40\x00\x00"


def test_raster_image_is_sent_in_bands():
    img = Image.new("L", (8, 300), 0)
    data = escpos.raster_cmds(img)
    assert data[:8] == b"\x1d\x76\x30\x00\x01\x00\x00\x01"  # 256 rows
    band2 = 8 + 256
    assert data[band2 : band2 + 8] == b"\x1d\x76\x30\x00\x01\x00\x2c\x00"  # 44 rows
    assert len(data) == 8 + 256 + 8 + 44


# --- text -----------------------------------------------------------------------


def test_ascii_line_default_style_is_just_text():
    assert encode([Text("A023")]) == INIT + b"A023\n"


def test_chinese_is_gb18030():
    assert encode([Text("中文")]) == INIT + b"\xd6\xd0\xce\xc4\n"


def test_full_width_punctuation_alone_is_not_question_marks():
    # the python-escpos failure mode: a line of only full-width punctuation
    assert encode([Text("，。！：")]) == INIT + b"\xa3\xac\xa1\xa3\xa3\xa1\xa3\xba\n"


def test_rare_character_uses_four_byte_gb18030():
    assert encode([Text("𠀀")]) == INIT + b"\x95\x32\x82\x36\n"


def test_style_commands_only_when_changed():
    doc = [
        Text("A", align="center", bold=True, width=2, height=2),
        Text("B", align="center", bold=True, width=2, height=2),
        Text("C"),
    ]
    expected = INIT + b"\x1b\x61\x01\x1b\x45\x01\x1d\x21\x11A\n" + b"B\n" + b"\x1b\x61\x00\x1b\x45\x00\x1d\x21\x00C\n"
    assert encode(doc) == expected


def test_control_characters_never_reach_the_printer():
    # a service name from the central config with an ESC and a GS V (cut) in it
    data = encode([Text("A\x1b@B\x1dV\x00C\tD")])
    assert data == INIT + b"A@BVC D\n"


def test_newlines_split_lines():
    assert encode([Text("A\nB")]) == INIT + b"A\nB\n"


def test_wrapping_counts_chinese_as_two_columns():
    profile = get_profile("default", dots_per_line=120)  # 10 columns
    data = encode([Text("一二三四五六")], profile)
    assert data == INIT + "一二三四五".encode("gb18030") + b"\n" + "六".encode("gb18030") + b"\n"


def test_wrapping_breaks_ascii_at_spaces_and_respects_width_multiplier():
    profile = get_profile("default", dots_per_line=120)  # 10 columns, 5 at width 2
    assert escpos.wrap("hello world foo", 10) == ["hello", "world foo"]
    data = encode([Text("abcdefg", width=2)], profile)
    assert data == INIT + b"\x1d\x21\x10abcde\nfg\n"


def test_chinese_mode_profile_wraps_chinese_lines_in_fs_commands():
    data = encode([Text("中A"), Text("plain")], get_profile("chinese-mode"))
    assert data == INIT + b"\x1c\x26\xd6\xd0A\x1c\x2e\n" + b"plain\n"


def test_feed_and_cut_blocks():
    assert encode([Feed(2), Cut(feed=3)]) == INIT + b"\x1b\x64\x02" + b"\x1b\x64\x03\x1d\x56\x00"
    assert encode([Cut(feed=0, partial=True)]) == INIT + b"\x1d\x56\x01"


def test_qr_block_aligns_then_prints_native():
    data = encode([QR("AB", module_size=4, error_level="M", margin_lines=0)])
    assert data == INIT + b"\x1b\x61\x01" + escpos.qr_cmds(b"AB", 4, "M")


def test_qr_block_feeds_a_quiet_zone_around_the_symbol():
    data = encode([QR("AB", module_size=4, error_level="M")])
    assert data == INIT + b"\x1b\x64\x01\x1b\x61\x01" + escpos.qr_cmds(b"AB", 4, "M") + b"\x1b\x64\x01"


def test_qr_data_is_utf8():
    data = encode([QR("查询")])
    assert "查询".encode() in data


# --- profiles -----------------------------------------------------------------------


def test_no_chinese_profile_rasterises_only_non_ascii_lines():
    data = encode([Text("中文", align="center"), Text("A023")], get_profile("no-chinese", font_path=printer_font()))
    assert "中文".encode("gb18030") not in data
    assert data.startswith(INIT + b"\x1b\x61\x01\x1d\x76\x30\x00")
    # the raster is 2 full-width cells = 48 dots = 6 bytes wide, 24 + 6 rows high
    assert data[9:13] == b"\x06\x00\x1e\x00"
    assert data.endswith(b"\x1b\x61\x00A023\n")


def test_no_qr_profile_prints_qr_as_raster():
    data = encode([QR("https://example.org/x", margin_lines=0)], get_profile("no-qr"))
    assert b"\x1d\x28\x6b" not in data
    assert data.startswith(INIT + b"\x1b\x61\x01\x1d\x76\x30\x00")


def test_unknown_profile_names_the_choices():
    with pytest.raises(ValueError, match="default, chinese-mode, no-chinese, no-qr"):
        get_profile("epson-x")


def test_profile_override():
    assert get_profile("default", dots_per_line=384).columns == 32


@pytest.mark.parametrize(
    "make",
    [
        lambda: Text("x", align="middle"),
        lambda: Text("x", width=9),
        lambda: Feed(0),
        lambda: QR(""),
        lambda: QR("x", module_size=17),
        lambda: QR("x", error_level="X"),
        lambda: QR("x" * 8000),
        lambda: QR("x", margin_lines=11),
    ],
)
def test_bad_blocks_are_refused_with_a_message(make):
    with pytest.raises(ValueError):
        make()


def test_wide_image_is_shrunk_to_the_paper():
    data = encode([escpos.Image(Image.new("L", (1152, 10), 0))])
    assert data[len(INIT) + 3 + 4 : len(INIT) + 3 + 8] == b"\x48\x00\x05\x00"  # 72 bytes x 5 rows


# --- the ticket -------------------------------------------------------------------------


def test_normal_ticket_is_under_one_kilobyte(ticket):
    data = encode(ticket)
    assert len(data) < 1024
    assert data.endswith(b"\x1b\x64\x04\x1d\x56\x00")
    assert "社保医保综合窗口".encode("gb18030") in data


def test_profiles_cost_what_they_cost(ticket):
    sizes = {name: len(encode(ticket, get_profile(name, font_path=printer_font()))) for name in escpos.PROFILES}
    assert sizes["chinese-mode"] > sizes["default"]
    assert sizes["no-chinese"] > 2 * sizes["default"]
    assert sizes["no-qr"] > 2 * sizes["default"]

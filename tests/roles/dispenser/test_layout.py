"""Tickets laid out for the paper the printer has: 80 mm (576 dots, 48 columns) and 58 mm (384, 32)."""

from __future__ import annotations

import dataclasses
import re

from devices.preview import interpret
from kiosk.core.config import load_config
from kiosk.roles.dispenser.layout import ticket_for
from kiosk.roles.dispenser.samples import sample_ticket
from kiosk.wiring import encode_document, printer_profile
from tests.helpers import printer_font, write_config

LONG_EN = "Real estate registration and transfer"  # 38 characters: more than a 58 mm line holds


def printed(tmp_path, paper_width: int, paper_dots: int):
    """The sample ticket as this device encodes it, interpreted on paper `paper_dots` wide."""
    cfg = load_config(
        str(
            write_config(
                tmp_path,
                {"printer": {"paper_width": paper_width}},
            )
        )
    )
    cfg.dispenser.categories[0]["name_en"] = LONG_EN
    # "前面还有 1234 人等候  Ahead: 1234" is 33 cells
    ticket = dataclasses.replace(sample_ticket(cfg), people_ahead=1234)
    data = encode_document(ticket_for(ticket, cfg), cfg)
    return cfg, interpret(data, dots=paper_dots, font_path=printer_font())


def words_cut(lines: list[str]) -> list[str]:
    """English words of LONG_EN that no printed line holds whole."""
    text_words = {w for ln in lines for w in re.findall(r"[A-Za-z]+", ln)}
    return [w for w in LONG_EN.split() if w not in text_words]


def test_a_58mm_printer_gets_a_ticket_laid_out_for_32_columns(tmp_path):
    cfg, on_58 = printed(tmp_path, 58, 384)
    assert printer_profile(cfg).dots_per_line == 384 and printer_profile(cfg).columns == 32
    assert on_58.problems == [] and on_58.image.width >= 384
    # The encoder wrapped at word boundaries, so the printer had nothing to cut.
    assert words_cut(on_58.lines) == []
    # Chinese and English go on lines of their own when together they would not fit.
    assert "前面还有 1234 人等候" in on_58.lines and "Ahead: 1234" in on_58.lines
    assert on_58.qr_payloads  # the queue QR still fits the narrow paper


def test_the_80mm_layout_on_58mm_paper_would_cut_words(tmp_path):
    """What the paper_width key is for: the 80 mm layout on a 58 mm printer breaks lines mid-word."""
    cfg, on_80 = printed(tmp_path, 80, 576)
    assert printer_profile(cfg).dots_per_line == 576
    assert words_cut(on_80.lines) == [] and any("Ahead: 1234" in ln and "前面" in ln for ln in on_80.lines)
    _, misfit = printed(tmp_path, 80, 384)
    assert words_cut(misfit.lines) != []


def test_check_config_refuses_a_paper_width_the_printers_do_not_have(tmp_path):
    import pytest

    from kiosk.core.config import ConfigError

    with pytest.raises(ConfigError, match=r"printer\.paper_width"):
        load_config(str(write_config(tmp_path, {"printer": {"paper_width": 76}})))

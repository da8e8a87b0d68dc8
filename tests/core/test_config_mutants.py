"""Config mutants a technician's editor or a copy-paste makes: each is refused with one
line naming the file and the key, never a traceback, and text that reaches the screen
or the paper carries no invisible control characters."""

from __future__ import annotations

import pytest

from kiosk.cli import main
from tests.helpers import write_config

MUTANTS = {
    "a bidi override in the hall name": ("device", "hall", "示范市\u202e心中务服"),
    "a blank hall name": ("device", "hall", "   "),
    "an ESC byte in a category name": (
        "dispenser",
        "categories",
        [{"code": "A", "name_zh": "社保\x1bi", "name_en": "S"}],
    ),
    "a zero-width space in a reason": ("pad", "reasons", [{"code": "A01", "zh": "态度\u200b差", "en": "Rude"}]),
    "a blank help phone": ("lookup", "help_phone", "  "),
    "an empty storage dir": ("storage", "dir", ""),
    "a storage dir name too long": ("storage", "dir", "/tmp/" + "x" * 5000),
    "an empty token file": ("central", "token_file", ""),
    "a NUL in the CA file": ("central", "ca_file", "/etc/kiosk/ca\x00.pem"),
    "no opening hours at all": ("dispenser", "open_hours", []),
    "a queue link that is not a link": ("dispenser", "queue_url", "see the screen"),
    "a queue link too long for a QR": ("dispenser", "queue_url", "https://q.example/" + "x" * 2000),
    "a huge reasons version": ("pad", "reasons_version", "x" * 5000),
}


@pytest.mark.parametrize("mutant", MUTANTS.values(), ids=MUTANTS.keys())
def test_a_mutant_is_one_line_naming_file_and_key(tmp_path, capsys, mutant):
    section, key, value = mutant
    path = write_config(tmp_path, {section: {key: value}}, token=None if key == "token_file" else "test-token")
    code = main(["check-config", str(path)])
    cap = capsys.readouterr()
    out = cap.out + cap.err
    assert code == 2, out
    assert "Traceback" not in out
    line = next(ln for ln in out.splitlines() if f"{section}.{key}" in ln)
    assert str(path) in line and len(line) < 400  # a huge value is not echoed whole


def test_the_hall_as_the_examples_write_it_is_still_fine(tmp_path, capsys):
    path = write_config(tmp_path, {"device": {"hall": "示范市政务服务中心 (东区)"}, "lookup": {"help_phone": ""}})
    assert main(["check-config", str(path)]) == 0, capsys.readouterr().out


SHARED_PREFIXES = {
    "two categories, one prefix": [
        {"code": "A", "name_zh": "社保", "name_en": "Social"},
        {"code": "B", "prefix": "A", "name_zh": "不动产", "name_en": "Estate"},
    ],
    "a category named like the priority series": [{"code": "V", "name_zh": "社保", "name_en": "Social"}],
}


@pytest.mark.parametrize("categories", SHARED_PREFIXES.values(), ids=SHARED_PREFIXES.keys())
def test_two_series_printing_one_prefix_are_refused(tmp_path, capsys, categories):
    path = write_config(tmp_path, {"dispenser": {"categories": categories, "priority_prefix": "V", "button_pins": {}}})
    assert main(["check-config", str(path)]) == 2
    out = capsys.readouterr()
    assert "dispenser.categories" in out.out + out.err and "prefix" in out.out + out.err


def test_a_central_config_giving_two_series_one_prefix_is_refused(central):
    from kiosk.sync import validate

    doc = central.store.device_config()[0]
    assert validate.check_central_config(doc) == []
    doc["categories"][1]["prefix"] = doc["categories"][0]["prefix"]
    assert any("config.categories[1].prefix" in p for p in validate.check_central_config(doc))


def test_a_port_out_of_range_is_refused(tmp_path, capsys):
    path = write_config(tmp_path, {"central": {"url": "https://zwfw.example.gov.cn:99999"}})
    assert main(["check-config", str(path)]) == 2
    assert "central.url" in capsys.readouterr().err

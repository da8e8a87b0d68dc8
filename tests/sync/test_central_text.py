"""Text the central sends that a citizen reads (a staff name on the pad, a service on
the dispenser, a case on the lookup kiosk) carries no invisible control characters:
a bidi override reverses what the screen shows, an ESC is a printer command."""

from __future__ import annotations

import copy

import pytest

from kiosk.core import keys
from kiosk.sync import validate

HIDDEN = ["\u202e", "\u2067", "\u200b", "\x1b", "\x00", "\x07"]


@pytest.mark.parametrize("ch", HIDDEN, ids=[f"U+{ord(c):04X}" for c in HIDDEN])
def test_a_staff_name_with_a_hidden_character_is_not_shown(device, ch):
    w = device.worker(window="03")
    w.run_once()
    card = device.cache.get(keys.staff_card("03"))["card"]
    device.central.store.set_staff(card["staff_id"], name="李" + ch + "明")
    s = w.run_once()
    assert s["pulled"]["staff"].startswith("rejected: staff card.name")
    assert device.cache.get(keys.staff_card("03"))["card"]["name"] == card["name"]


@pytest.mark.parametrize("ch", HIDDEN, ids=[f"U+{ord(c):04X}" for c in HIDDEN])
def test_a_service_name_with_a_hidden_character_keeps_the_last_good_config(device, ch):
    w = device.worker()
    w.run_once()
    good = device.cache.get(keys.CENTRAL_CONFIG)
    cats = copy.deepcopy(good["categories"])
    cats[0]["name_zh"] = "社保" + ch + "医保"
    device.central.store.update_device_config(categories=cats)
    assert "config.categories[0].name_zh" in w.run_once()["pulled"]["config"]
    assert device.cache.get(keys.CENTRAL_CONFIG) == good


def test_a_case_with_a_hidden_character_is_refused_and_line_breaks_are_text(central):
    case = central.create_case("营业执照变更", "王五", status="refused", refusal_reason="材料不全\n请补正")
    answer = central.store.lookup_case(case["receipt_no"], case["query_code"])
    assert validate.check_case(answer) == []
    assert validate.check_case({**answer, "item_name": "营业\u202e执照"}) == [
        "case.item_name: must be a non-empty string of at most 300 characters, without control characters"
    ]
    # the problem names the field, never the text (it may carry a name)
    assert validate.check_case({**answer, "handler": "郑\x1b伟"}) == [
        "case.handler: must be a non-empty string of at most 300 characters, without control characters"
    ]

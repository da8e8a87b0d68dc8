"""The offline range against the central's numbering ranges: `kiosk selftest` refuses an overlap."""

from __future__ import annotations

import json

import pytest

from kiosk.cli import main
from kiosk.roles.dispenser.numbering import offline_range_overlaps
from tests.helpers import write_config


def selftest_rows(capsys, path):
    code = main(["selftest", "--config", str(path), "--json"])
    return code, {r["name"]: r for r in json.loads(capsys.readouterr().out)["rows"]}


def dispenser_config(tmp_path, central, offline_range):
    return write_config(
        tmp_path,
        {
            "device": {"id": "hall01-kiosk01", "roles": ["dispenser"]},
            "central": {"url": central.url, "connect_timeout": 0.5, "read_timeout": 2.0},
            "dispenser": {"offline_range": offline_range},
            "printer": {"backend": "sim"},
        },
        token=central.issue_token("hall01-kiosk01"),
    )


def test_an_offline_range_inside_the_centrals_numbers_fails_the_selftest(tmp_path, central, capsys):
    code, rows = selftest_rows(capsys, dispenser_config(tmp_path, central, [500, 950]))
    row = rows["numbering"]
    assert code == 1 and row["verdict"] == "fail" and row["required"]
    assert "offline_range 500..950" in row["detail"] and "1..899" in row["detail"]
    assert "category A" in row["detail"] and "priority" in row["detail"]


def test_an_offline_range_above_the_centrals_numbers_passes(tmp_path, central, capsys):
    _, rows = selftest_rows(capsys, dispenser_config(tmp_path, central, [900, 999]))
    assert rows["numbering"]["verdict"] == "ok"


def test_a_central_range_moved_up_is_caught(tmp_path, central, capsys):
    cfg = central.store.device_config()[0]
    central.store.update_device_config(categories=[{**c, "number_max": 920} for c in cfg["categories"]])
    code, rows = selftest_rows(capsys, dispenser_config(tmp_path, central, [900, 999]))
    assert code == 1 and "900..999" in rows["numbering"]["detail"]


@pytest.mark.parametrize("rng, hits", [([900, 999], 0), ([899, 999], 2), ([1, 1], 2), ([1000, 1100], 0)], ids=str)
def test_overlap_is_inclusive_at_both_ends(rng, hits):
    central = {
        "categories": [{"code": "A", "number_min": 1, "number_max": 899}],
        "priority": {"number_min": 1, "number_max": 899},
    }
    assert len(offline_range_overlaps(rng, central)) == hits

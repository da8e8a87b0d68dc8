"""Provisioning config: every problem named by file, key and remedy; no traceback."""

import os
import subprocess
import sys
import typing

import pytest

from kiosk.core.config import SCHEMA, SECTION_TYPES, TABLES, Config, ConfigError, load_config
from tests.helpers import ROOT, refused_url, write_config


def check_config(path):
    return subprocess.run(
        [sys.executable, "-m", "kiosk", "check-config", str(path)], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


@pytest.mark.parametrize("name", ["demo", "dispenser", "lookup", "pad"])
def test_shipped_configs_pass(name):
    r = check_config(ROOT / "config" / f"{name}.toml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok" in r.stdout
    assert "Traceback" not in r.stderr


def test_valid_config_summary(tmp_path):
    r = check_config(write_config(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "demo-kiosk" in r.stdout and "dispenser, lookup, pad" in r.stdout


def problems_of(tmp_path, changes, **kw):
    path = write_config(tmp_path, changes, **kw)
    r = check_config(path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    for line in lines:
        assert line.startswith(f"{path}: "), line
        assert line.endswith(")"), line
    return lines


def test_unknown_key_is_an_error_naming_the_key(tmp_path):
    lines = problems_of(tmp_path, {"display": {"idle_timout": 30}})
    assert any(": display.idle_timout: unknown key" in ln for ln in lines)


def test_open_hours_that_are_not_strings_are_a_problem_not_a_crash(tmp_path):
    lines = problems_of(tmp_path, {"dispenser": {"open_hours": [830]}})
    assert any(": dispenser.open_hours: 830 is not a time span" in ln for ln in lines)


def test_each_section_type_declares_exactly_the_schemas_keys():
    """The typed views (cfg.printer.port) and SCHEMA describe the same keys, of the same types."""
    assert set(SECTION_TYPES) == set(SCHEMA) == set(typing.get_type_hints(Config))
    for name, keys in SCHEMA.items():
        assert typing.get_type_hints(Config)[name] is SECTION_TYPES[name]
        declared = typing.get_type_hints(SECTION_TYPES[name])
        tables = {t.split(".")[1] for t in TABLES if t.split(".")[0] == name}
        assert set(declared) == set(keys) | tables, name
        for key, spec in keys.items():
            hint = declared[key]
            assert (typing.get_origin(hint) or hint) is spec.type, f"{name}.{key}"


def test_unknown_section(tmp_path):
    lines = problems_of(tmp_path, {"printr": {"port": "/dev/x"}})
    assert any(": printr: unknown section" in ln for ln in lines)


def test_types_ranges_enums_all_reported_at_once(tmp_path):
    lines = problems_of(tmp_path, {"display": {"idle_timeout": "sixty", "language": "fr", "width": 10}})
    text = "\n".join(lines)
    assert "display.idle_timeout: 'sixty' is not an integer" in text
    assert "display.language: 'fr' is not one of" in text
    assert "display.width: 10 is out of range (use a value from 320 to 4096)" in text


def test_roles_checked(tmp_path):
    lines = problems_of(tmp_path, {"device": {"roles": ["dispenser", "kiosk"]}})
    assert any("device.roles" in ln for ln in lines)


def test_gpio_pin_used_twice(tmp_path):
    lines = problems_of(tmp_path, {"pad": {"clerk_button_pin": 5, "keypad_pins": [5, 6, 13, 19, 26]}})
    assert any("pad.keypad_pins[0]: GPIO 5 is already used by pad.clerk_button_pin" in ln for ln in lines)


def test_token_readable_by_others_is_refused(tmp_path):
    path = write_config(tmp_path)
    os.chmod(tmp_path / "token", 0o644)
    r = check_config(path)
    assert r.returncode == 2
    assert "central.token_file" in r.stderr and "chmod 600" in r.stderr


def test_missing_token_is_a_warning_only(tmp_path):
    path = write_config(tmp_path, token=None)
    r = check_config(path)
    assert r.returncode == 0
    assert "warning" in r.stdout and "central.token_file" in r.stdout


def test_plain_http_refused_unless_allowed(tmp_path):
    lines = problems_of(tmp_path, {"central": {"url": "http://central.example", "allow_http": False}})
    assert any("central.url: plain http:// is refused" in ln for ln in lines)
    ok = check_config(write_config(tmp_path, {"central": {"url": refused_url(), "allow_http": True}}))
    assert ok.returncode == 0


def test_serial_printer_needs_a_port(tmp_path):
    lines = problems_of(tmp_path, {"printer": {"backend": "serial"}})
    assert any("printer.port: missing for the serial backend" in ln for ln in lines)


def test_role_section_missing(tmp_path):
    lines = problems_of(tmp_path, {"scanner": None})
    assert any(": scanner: missing, but role 'lookup' needs it" in ln for ln in lines)


def test_toml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[device]\nid = "x"\nhall = "示范\n')
    r = check_config(path)
    assert r.returncode == 2
    assert "line 3" in r.stderr and "Traceback" not in r.stderr


def test_missing_file(tmp_path):
    r = check_config(tmp_path / "nope.toml")
    assert r.returncode == 2 and "not found" in r.stderr


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    cfg = load_config(ROOT / "config" / "demo.toml")
    assert cfg.storage.dir == str(ROOT / "config" / "demo-data")


def test_config_resolution_order(tmp_path, monkeypatch):
    from kiosk.core.config import DEFAULT_PATH, resolve_path

    monkeypatch.delenv("KIOSK_CONFIG", raising=False)
    assert resolve_path(None) == DEFAULT_PATH
    monkeypatch.setenv("KIOSK_CONFIG", "/x/env.toml")
    assert resolve_path(None) == "/x/env.toml"
    assert resolve_path("/x/arg.toml") == "/x/arg.toml"


def test_summary_hides_the_pin_hash(tmp_path):
    cfg = load_config(write_config(tmp_path))
    assert cfg.summary()["technician"]["pin_hash"] == "(set)"
    with pytest.raises(ConfigError):
        load_config(write_config(tmp_path, {"technician": {"pin_hash": "1234"}}))


def test_moved_rating_section_is_still_read_and_check_config_says_where_it_went(tmp_path):
    """[rating] moved into [pad] (one name per role); this release still reads the old keys."""
    from kiosk.core.config import load_config

    text = (ROOT / "config" / "pad.toml").read_text(encoding="utf-8")
    text = text.replace('reasons_version = "GB/T 39734-2020 A.1"\n', "").replace(
        "[[pad.reasons]]", "[[rating.reasons]]"
    )
    text += '\n[rating]\nreasons_version = "old-v1"\n'
    path = tmp_path / "old.toml"
    path.write_text(text, encoding="utf-8")
    cfg = load_config(path)
    assert cfg.pad.reasons_version == "old-v1" and [r["code"] for r in cfg.pad.reasons] == ["R01", "R03", "R04"]
    moved = {w.key: w.what for w in cfg.warnings}
    assert "pad.reasons_version" in moved["rating.reasons_version"]
    assert "[[pad.reasons]]" in moved["rating.reasons"]


def test_a_moved_key_given_twice_is_an_error(tmp_path):
    from kiosk.core.config import ConfigError, load_config

    text = (ROOT / "config" / "pad.toml").read_text(encoding="utf-8") + '\n[rating]\nreasons_version = "x"\n'
    path = tmp_path / "twice.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert any(p.key == "rating.reasons_version" and "twice" in p.what for p in e.value.problems)


def test_a_value_with_a_newline_round_trips(tmp_path):
    # The config writer (tomli-w) must quote what the hand-written one broke: newlines, quotes, backslashes.
    hall = '一楼\n"综合" 大厅 \\ 东'
    cfg = load_config(str(write_config(tmp_path, {"device": {"hall": hall}})))
    assert cfg.device.hall == hall


# -- config mutants (issue 15.11) -------------------------------------------------------


def run_check(path, timeout=30):
    return subprocess.run(
        [sys.executable, "-m", "kiosk", "check-config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_config_saved_with_a_utf8_byte_order_mark_is_read(tmp_path):
    path = write_config(tmp_path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    cfg = load_config(path)
    assert cfg.device.id
    assert run_check(path).returncode == 0


@pytest.mark.parametrize(
    "text",
    ["a = " + "[" * 100_000 + "]" * 100_000, "x = " + "{a = " * 3000 + "1" + "}" * 3000, "id = " + "[" * 20 + "]" * 20],
)
def test_deeply_nested_toml_is_a_line_naming_the_file_not_a_traceback(tmp_path, text):
    path = tmp_path / "deep.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert "nested" in str(e.value)
    p = run_check(path)
    assert p.returncode == 2 and "Traceback" not in p.stderr + p.stdout
    assert f"{path}: (syntax):" in p.stdout + p.stderr


def test_a_fifo_as_the_config_path_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "kiosk.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError) as e:
        load_config(fifo)
    assert "not a regular file" in str(e.value)
    p = run_check(fifo, timeout=30)  # a hang would be this timeout
    assert p.returncode == 2 and f"{fifo}: (file): is not a regular file" in p.stdout + p.stderr


def test_check_config_knows_the_appointment_and_quota_keys(tmp_path):
    lines = problems_of(
        tmp_path,
        {
            "dispenser": {
                "entries": ["appointment", "idcard?"],
                "appointment_ticket": "vip",
                "appointment_late_minutes": 999,
                "quotas": [
                    {"category": "A", "hours": "08:30-12:00", "limit": 50},
                    {"category": "A", "hours": "11:00-13:00", "limit": 10},
                    {"category": "Q", "hours": "08:30-12:00", "limit": 5},
                    {"category": "B", "hours": "12:00-08:00", "limit": 0},
                ],
            }
        },
    )
    text = "\n".join(lines)
    assert "dispenser.entries: ['appointment', 'idcard?'] is not a list of entries" in text
    assert "dispenser.appointment_ticket:" in text and "dispenser.appointment_late_minutes:" in text
    assert "dispenser.quotas[1].hours: 11:00-13:00 overlaps 08:30-12:00 of another quota of A" in text
    assert "dispenser.quotas[2].category: no category has code 'Q'" in text
    assert "dispenser.quotas[3].hours:" in text and "dispenser.quotas[3].limit:" in text


def test_the_appointment_prefix_must_be_a_letter_of_its_own(tmp_path):
    lines = problems_of(tmp_path, {"dispenser": {"appointment_prefix": "V"}})
    assert any("dispenser.appointment_prefix: 'V' is already the prefix" in ln for ln in lines)
    # a valid set of the new keys passes
    path = write_config(
        tmp_path,
        {
            "dispenser": {
                "entries": ["appointment", "service"],
                "appointment_ticket": "priority",
                "quotas": [{"category": "A", "hours": "08:30-12:00", "limit": 50}],
            }
        },
        name="ok.toml",
    )
    assert check_config(path).returncode == 0


def test_a_booking_scanner_needs_a_serial_or_sim_scanner_section(tmp_path):
    lines = problems_of(
        tmp_path, {"device": {"roles": ["dispenser"]}, "scanner": None, "dispenser": {"booking_scanner": True}}
    )
    assert any("dispenser.booking_scanner: needs a [scanner] section" in ln for ln in lines)
    lines = problems_of(
        tmp_path,
        {"device": {"roles": ["dispenser"]}, "scanner": {"backend": "wedge"}, "dispenser": {"booking_scanner": True}},
        name="wedge.toml",
    )
    assert any("dispenser.booking_scanner: a keyboard-wedge scanner" in ln for ln in lines)

"""Self-check verdicts a technician can trust (issue 15.6): what never works by
waiting is a required failure; "unreachable right now" stays a warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.core.config import ConfigError, load_config
from tests.helpers import refused_url, write_config


def selftest(capsys, path):
    code = main(["selftest", "--config", str(path), "--json"])
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    return code, rows


def check_config(capsys, path):
    code = main(["check-config", str(path)])
    cap = capsys.readouterr()
    return code, cap.out + cap.err


def test_a_wrong_url_path_is_a_required_failure(tmp_path, central, capsys):
    token = central.issue_token("demo-kiosk")
    path = write_config(tmp_path, {"central": {"url": central.url + "/kiosk", "allow_http": True}}, token=token)
    code, rows = selftest(capsys, path)
    assert code == 1 and rows["central"]["verdict"] == "fail" and rows["central"]["required"]
    assert "404" in rows["central"]["detail"] and "base URL" in rows["central"]["detail"]


def test_a_url_ending_in_the_api_path_fails_check_config(tmp_path, central, capsys):
    path = write_config(tmp_path, {"central": {"url": central.url + "/api/v1/", "allow_http": True}})
    code, out = check_config(capsys, path)
    assert code == 2 and "central.url" in out and "without /api/v1" in out


def test_https_against_a_plain_http_server_is_a_required_failure(tmp_path, central, capsys):
    token = central.issue_token("demo-kiosk")
    path = write_config(tmp_path, {"central": {"url": central.url.replace("http://", "https://")}}, token=token)
    code, rows = selftest(capsys, path)
    assert code == 1 and rows["central"]["verdict"] == "fail" and rows["central"]["required"]
    assert "TLS" in rows["central"]["detail"]


def test_unreachable_right_now_stays_a_warning(tmp_path, capsys):
    code, rows = selftest(capsys, write_config(tmp_path, {"central": {"url": refused_url()}}))
    assert rows["central"]["verdict"] == "fail" and not rows["central"]["required"] and code == 0


def test_an_empty_token_file_fails_check_config(tmp_path, capsys):
    code, out = check_config(capsys, write_config(tmp_path, token=""))
    assert code == 2 and "central.token_file" in out and "is empty" in out and "issue-token" in out


def test_a_missing_ca_file_fails_check_config_and_selftest(tmp_path, capsys):
    path = write_config(tmp_path, {"central": {"ca_file": str(tmp_path / "ca.pem")}})
    code, out = check_config(capsys, path)
    assert code == 2 and "central.ca_file" in out and "does not exist" in out
    code = main(["selftest", "--config", str(path)])
    out = capsys.readouterr().out
    assert code == 1 and "central.ca_file" in out


def test_a_ca_file_removed_after_start_leaves_the_device_offline_with_the_reason(tmp_path):
    """Lookups, `kiosk sync` and `kiosk status` build the client from the config: no OSError later."""
    from kiosk.wiring import build_runtime

    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    cfg = load_config(write_config(tmp_path, {"central": {"ca_file": str(ca)}}))
    ca.unlink()
    rt = build_runtime(cfg)
    try:
        assert rt.client is None and "does not exist" in rt.central_problem
    finally:
        rt.stop()
    with pytest.raises(ConfigError) as e:
        load_config(cfg.path)
    assert any(p.key == "central.ca_file" for p in e.value.problems)


def test_check_config_refuses_an_offline_range_inside_the_centrals_numbers(tmp_path, capsys):
    """Against the central's config exported to a file (as GET /config answers it)."""
    from kiosk.central import seed

    (tmp_path / "bad").mkdir()
    (tmp_path / "good").mkdir()
    exported = tmp_path / "central-config.json"
    cfg = {"categories": seed.CATEGORIES, "priority": seed.PRIORITY}
    exported.write_text(json.dumps(cfg), encoding="utf-8")
    bad = write_config(tmp_path / "bad", {"dispenser": {"offline_range": [850, 949]}})
    code = main(["check-config", str(bad), "--central-config", str(exported)])
    out = capsys.readouterr()
    assert code == 1
    assert "dispenser.offline_range 850..949 overlaps" in out.err and "category A (A)" in out.err
    good = write_config(tmp_path / "good", {"dispenser": {"offline_range": [900, 999]}})
    assert main(["check-config", str(good), "--central-config", str(exported)]) == 0
    assert "is outside" in capsys.readouterr().out
    # The device's own cached copy is used when no file is given.
    from kiosk.core import keys
    from kiosk.core.cache import Cache

    storage = Path(load_config(bad).storage.dir)
    cache = Cache(storage / keys.CACHE_FILE)
    cache.set(keys.CENTRAL_CONFIG, cfg)
    cache.close()
    assert main(["check-config", str(bad)]) == 1
    assert "the cached central config" in capsys.readouterr().err
    exported.write_text("{not json", encoding="utf-8")
    assert main(["check-config", str(good), "--central-config", str(exported)]) == 2
    assert "cannot read the central config" in capsys.readouterr().err

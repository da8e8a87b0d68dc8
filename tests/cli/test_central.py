"""`kiosk central issue-token`, `kiosk status`, `kiosk sync --once` through the real CLI."""

from __future__ import annotations

import json
import os
import stat

from kiosk.central.server import BenchCentral
from kiosk.cli import main
from kiosk.core import keys
from kiosk.core.ledger import Ledger
from tests.helpers import write_config


def test_issue_token_writes_a_0600_file_the_central_accepts(tmp_path, capsys):
    out = tmp_path / "token"
    assert (
        main(
            [
                "central",
                "issue-token",
                "--data",
                str(tmp_path / "c"),
                "--device",
                "hall01-pad08",
                "--role",
                "pad",
                "--window",
                "08",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    token = out.read_text().strip()
    central = BenchCentral(tmp_path / "c").start()
    try:
        assert central.store.device_for_token(token) == "hall01-pad08"
        # only the hash is stored
        assert token.encode() not in (tmp_path / "c" / keys.CENTRAL_DB_FILE).read_bytes()
    finally:
        central.stop()
    assert (
        main(
            [
                "central",
                "issue-token",
                "--data",
                str(tmp_path / "c"),
                "--device",
                "bad id!",
                "--role",
                "lookup",
                "--out",
                str(tmp_path / "t2"),
            ]
        )
        == 2
    )
    assert main(["central"]) == 2 and "--data" in capsys.readouterr().err


def test_status_and_sync_once(tmp_path, central, capsys):
    token = central.issue_token("demo-kiosk")
    cfg = write_config(tmp_path, {"central": {"url": central.url}}, token=token)
    ledger = Ledger(tmp_path / "data" / keys.LEDGER_FILE)
    with ledger.transaction() as tx:
        for i in range(3):
            ledger.add_event(tx, "audit.test", {"i": i})
        ledger.add_event(tx, "nonsense.kind", {})

    assert main(["status", "--config", str(cfg), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["outbox"]["pending"] == 4 and st["last_sync"] is None
    assert st["central"]["reachable"] and st["central"]["authorised"]

    assert main(["sync", "--config", str(cfg), "--once"]) == 0
    out = capsys.readouterr().out
    assert "delivered 3" in out and "dead letters 1" in out
    assert len(central.events("audit.test")) == 3
    assert main(["status", "--config", str(cfg)]) == 0
    text = capsys.readouterr().out
    assert "pending 0" in text and "delivered 3" in text and "dead 1" in text
    assert "nonsense.kind" in text and "unknown_kind" in text

    with ledger.transaction() as tx:
        ledger.add_event(tx, "audit.test", {"i": 9})
    central.stop()
    assert main(["sync", "--config", str(cfg), "--once"]) == 1
    assert "cannot reach" in capsys.readouterr().err
    assert main(["status", "--config", str(cfg), "--json"]) == 1
    st = json.loads(capsys.readouterr().out)
    assert st["central"]["reachable"] is False and st["outbox"]["pending"] == 1
    central.start()


def test_status_with_a_wrong_token_says_so(tmp_path, central, capsys):
    cfg = write_config(tmp_path, {"central": {"url": central.url}}, token="x" * 40)
    assert main(["status", "--config", str(cfg), "--json"]) == 1
    st = json.loads(capsys.readouterr().out)
    assert st["central"]["reachable"] is True and st["central"]["authorised"] is False
    assert "token" in st["central"]["error"]
    assert main(["sync", "--config", str(cfg), "--once"]) == 1


def _post_rating(central, token, session_id, level, reasons):
    import uuid

    import requests

    ev = {
        "id": str(uuid.uuid4()),
        "kind": "rating.submitted",
        "device_id": "pad-01",
        "created_at": "2026-05-12T10:00:00+08:00",
        "boot_id": "b",
        "seq": 1,
        "body": {"window": "01", "session_id": session_id, "level": level, "reasons": reasons},
    }
    r = requests.post(
        central.url + "/api/v1/events", json={"events": [ev]}, headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert r.json()["results"][0]["status"] == "accepted"


def test_export_ratings_writes_the_profile_or_nothing(tmp_path, central, capsys):
    token = central.issue_token("pad-01", ["pad"], "01")
    _post_rating(central, token, "L-a", 5, [])
    data = ["--data", str(central.data_dir)]
    out = tmp_path / "zj.json"
    args = ["central", "export-ratings", *data, "--profile", "zhejiang", "--day", "2026-05-12", "--out", str(out)]
    assert main(args) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["count"] == 1 and doc["records"][0]["satisfaction"] == "5" and doc["records"][0]["pf"] == "4"
    _post_rating(central, token, "L-b", 1, [{"code": "A07", "zh": "服务态度不好"}])
    assert main(args) == 0  # no flag: the shipped table maps the national list's reasons
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert [r["evalDetail"] for r in doc["records"]] == ["", "507"]
    assert doc["reason_codes"] == {
        "source": "kiosk/data/reason-maps.toml",
        "reasons_version": "GB/T 39734-2020-A.1",
        "verified": False,
    }
    _post_rating(central, token, "L-c", 2, [{"code": "X42", "zh": "本厅自定原因"}])  # a reason of the hall's own
    out.unlink()
    assert main(args) == 2 and "--reason-map" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "zj.json.part").exists()  # nothing half-written
    (tmp_path / "map.json").write_text('{"A07": "501", "X42": "599"}', encoding="utf-8")
    assert main([*args, "--reason-map", str(tmp_path / "map.json")]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert [r["evalDetail"] for r in doc["records"]] == ["", "501", "599"]
    assert doc["reason_codes"] == {"source": "--reason-map"}
    assert main(["central", "export-ratings", *data, "--profile", "national", "--day", "12/05/2026"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
    assert main(["central", "export-ratings", *data, "--profile", "mars", "--day", "2026-05-12"]) == 2


def test_revoke_token_stops_the_device_at_once(tmp_path, central, capsys):
    import requests

    token = central.issue_token("hall01-lookup01")
    who = central.url + "/api/v1/whoami"
    assert requests.get(who, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 200
    assert main(["central", "revoke-token", "--data", str(central.data_dir), "--device", "hall01-lookup01"]) == 0
    assert requests.get(who, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 401
    assert main(["central", "revoke-token", "--data", str(central.data_dir), "--device", "hall01-lookup01"]) == 1
    assert "no valid token" in capsys.readouterr().err

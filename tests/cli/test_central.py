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

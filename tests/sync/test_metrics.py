"""node_exporter textfile metrics: the heartbeat's facts, written atomically by a running device."""

from __future__ import annotations

import re

from kiosk.core.config import load_config
from kiosk.sync.metrics import MetricsWriter, render, write_textfile
from kiosk.wiring import build_runtime
from tests.helpers import wait_until, write_config

SAMPLE = re.compile(r"^(kiosk_[a-z_]+)(\{[^}]*\})? (NaN|-?[0-9.e+]+)$")


def parse(text: str) -> dict[str, list[tuple[str, str]]]:
    """Every sample line must be valid exposition text; returns name -> [(labels, value)]."""
    out: dict[str, list[tuple[str, str]]] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        out.setdefault(m.group(1), []).append((m.group(2) or "", m.group(3)))
    return out


def test_a_running_device_writes_the_heartbeat_facts(tmp_path, central):
    token = central.issue_token("demo-kiosk")
    prom = tmp_path / "kiosk.prom"
    cfg = load_config(
        write_config(
            tmp_path, {"central": {"url": central.url}, "metrics": {"textfile": str(prom), "interval": 5}}, token=token
        )
    )
    rt = build_runtime(cfg)
    try:
        assert "metrics" in rt.part_names
        with rt.ledger.transaction() as tx:
            rt.ledger.add_event(tx, "test.event", {"n": 1})
        rt.start(only=["metrics", "printer"])
        rt.dispenser.service.check_paper()  # the dispenser asks its (simulated) printer
        assert wait_until(prom.exists, 10)
        pending = rt.ledger.outbox_stats()["pending"]
        rt.stop()  # the last write happens at stop, with the state then
        m = parse(prom.read_text(encoding="utf-8"))
    finally:
        rt.stop()
    # the test's event and the printer.paper_state event the paper check recorded
    assert m["kiosk_outbox_pending"] == [('{device_id="demo-kiosk"}', str(pending))]
    assert pending == 2
    assert m["kiosk_last_sync_age_seconds"][0][1] == "NaN"  # never synced
    assert ('{device_id="demo-kiosk",state="ok"}', "1") in m["kiosk_paper_state"]
    assert m["kiosk_printer_online"][0][1] == "1"
    assert m["kiosk_ratings_chain_length"][0][1] == "0"
    assert int(float(m["kiosk_disk_free_bytes"][0][1])) > 0
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no half-written file left


def test_the_same_facts_reach_the_central_in_the_heartbeat(tmp_path, central):
    token = central.issue_token("demo-kiosk")
    cfg = load_config(write_config(tmp_path, {"central": {"url": central.url}}, token=token))
    rt = build_runtime(cfg)
    try:
        rt.start(only=["printer"])
        rt.dispenser.service.check_paper()
        assert rt.sync is not None and rt.sync.run_once()["heartbeat"] is True
    finally:
        rt.stop()
    (health,) = [h["health"] for h in central.store.latest_heartbeats() if h["device_id"] == "demo-kiosk"]
    assert health["paper"] == "ok" and health["printer"] == "online"
    assert health["ratings_chain"]["count"] == 0


def test_label_values_are_escaped_and_unknowns_are_nan():
    text = render({"device_id": 'hall"01\\x', "version": "1\n2", "outbox": {"pending": None}})
    parse(text)
    assert 'device_id="hall\\"01\\\\x"' in text and 'version="1\\n2"' in text
    assert 'kiosk_outbox_pending{device_id="hall\\"01\\\\x"} NaN' in text


def test_a_folder_that_is_not_there_is_logged_once_and_the_device_goes_on(tmp_path, caplog):
    w = MetricsWriter(tmp_path / "missing" / "kiosk.prom", lambda: {"device_id": "d"}, interval=5)
    assert w.write_once() is False and w.write_once() is False
    assert sum("cannot write metrics" in r.getMessage() for r in caplog.records) == 1
    (tmp_path / "missing").mkdir()
    assert w.write_once() is True


def test_the_file_is_replaced_not_rewritten_in_place(tmp_path):
    path = tmp_path / "kiosk.prom"
    write_textfile(path, "a 1\n")
    before = path.stat().st_ino
    write_textfile(path, "a 2\n")
    assert path.read_text() == "a 2\n" and path.stat().st_ino != before  # a new file renamed over the old
    assert oct(path.stat().st_mode & 0o777) == "0o644"

"""Retention: delivered records older than storage.retention_days go, undelivered ones stay,
and the ratings chain still verifies from its checkpoint."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from kiosk.core import keys
from kiosk.core.cache import Cache
from kiosk.core.config import load_config
from kiosk.core.ledger import Ledger
from kiosk.core.storage import DiskGuard, RetentionJob, prune_pass
from kiosk.roles.dispenser.service import StorageFull, TicketService
from kiosk.roles.pad.service import RatingService
from kiosk.wiring import build_printer
from tests.helpers import ROOT, service_time, wait_until, write_config

LATER = datetime.now(UTC) + timedelta(days=400)  # everything written now is past a year's retention then


def verify(config):
    return subprocess.run(
        [sys.executable, "-m", "kiosk", "pad-verify", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def rate(svc, n, start=0):
    for i in range(start, start + n):
        svc.open_session(f"S-{i}", origin="central")
        svc.submit(5)


def deliver(ledger, kind=None, first=None):
    rows = ledger.query("SELECT uuid, kind FROM outbox WHERE state = 'pending' ORDER BY seq")
    uuids = [r["uuid"] for r in rows if kind is None or r["kind"] == kind][:first]
    ledger.mark_delivered(uuids)
    return uuids


def test_prune_keeps_the_undelivered_and_the_chain_verifies_from_its_checkpoint(tmp_path):
    config = write_config(tmp_path, {"device": {"roles": ["pad"]}})
    cfg = load_config(config)
    ledger = Ledger(cfg.storage_dir / keys.LEDGER_FILE)
    cache = Cache(cfg.storage_dir / keys.CACHE_FILE)
    svc = RatingService(cfg, ledger, cache)
    rate(svc, 5)
    with ledger.transaction() as tx:
        ledger.add_event(tx, "lookup.performed", {"outcome": "found"})
    deliver(ledger, "rating.submitted", first=3)  # ratings 0-2 delivered, 3-4 still pending
    deliver(ledger, "lookup.performed")

    # Within the retention nothing goes, delivered or not.
    assert prune_pass(ledger, 180, pause_s=0).total == 0
    got = prune_pass(ledger, 365, now=LATER, pause_s=0)
    assert (got.outbox, got.ratings) == (4, 3)
    left = ledger.query("SELECT state FROM outbox")
    assert [r["state"] for r in left] == ["pending", "pending"]  # nothing undelivered was pruned
    assert [json.loads(r["body"])["chain_index"] for r in ledger.query("SELECT body FROM ratings ORDER BY seq")] == [
        3,
        4,
    ]
    assert ledger.get_meta(keys.RATING_CHAIN_CHECKPOINT).startswith("3:")
    assert json.loads(ledger.get_meta(keys.LEDGER_PRUNED))["ratings"] == 3
    assert ledger.outbox_stats()["pending"] == 2  # the counters follow the deleted rows
    r = verify(config)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok: 2 record(s) after the retention checkpoint (3 older" in r.stdout

    # Everything delivered and pruned: the next rating continues the chain from the checkpoint.
    deliver(ledger)
    assert prune_pass(ledger, 365, now=LATER, pause_s=0).ratings == 2
    assert ledger.query("SELECT COUNT(*) AS n FROM ratings")[0]["n"] == 0
    rate(svc, 1, start=10)
    body = json.loads(ledger.query("SELECT body FROM ratings")[0]["body"])
    assert body["chain_index"] == 5 and body["prev_hash"] == ledger.get_meta(keys.RATING_CHAIN_CHECKPOINT)[2:]
    r = verify(config)
    assert r.returncode == 0 and "ok: 1 record(s) after the retention checkpoint (5 older" in r.stdout, r.stdout

    # Deleting a record after the checkpoint is still caught.
    rate(svc, 2, start=20)
    ledger.query("DELETE FROM ratings WHERE seq = (SELECT MIN(seq) FROM ratings)")
    r = verify(config)
    assert r.returncode == 1 and "does not chain" in r.stdout, r.stdout
    svc.close()
    cache.close()
    ledger.close()


def test_prune_keeps_tickets_whose_event_is_undelivered(tmp_path):
    cfg = load_config(write_config(tmp_path, {"printer": {"backend": "file", "path": str(tmp_path / "printer.bin")}}))
    ledger = Ledger(cfg.storage_dir / keys.LEDGER_FILE)
    printer = build_printer(cfg).start()
    svc = TicketService(cfg, ledger, printer=printer, now=service_time)
    try:
        code = svc.categories()[0].code
        issued = [svc.issue(code).ticket for _ in range(4)]
        held = ledger.query(
            "SELECT uuid FROM outbox WHERE kind = 'ticket.issued' AND json_extract(body, '$.ticket_uuid') = ?",
            (issued[2].uuid,),
        )
        sent = {r["uuid"] for r in ledger.query("SELECT uuid FROM outbox")} - {r["uuid"] for r in held}
        ledger.mark_delivered(sent)  # all but ticket 2's event reached the central
        got = prune_pass(ledger, 365, now=LATER, pause_s=0)
        assert got.tickets == 3 and got.outbox == len(sent)
        assert [t.uuid for t in svc.tickets()] == [issued[2].uuid]
        assert [r["state"] for r in ledger.query("SELECT state FROM outbox")] == ["pending"]
    finally:
        printer.close()
        ledger.close()


def test_the_retention_job_runs_a_pass_on_its_own_thread(tmp_path):
    ledger = Ledger(tmp_path / keys.LEDGER_FILE)
    job = RetentionJob(ledger, 30, first_s=0.01, every_s=3600)
    job.start()
    try:
        assert wait_until(lambda: job.passes >= 1, 10)
        assert json.loads(ledger.get_meta(keys.LEDGER_PRUNED))["outbox"] == 0
    finally:
        job.stop()
        ledger.close()


def test_low_disk_refuses_a_ticket_before_a_number_is_taken(tmp_path):
    cfg = load_config(write_config(tmp_path, {"printer": {"backend": "file", "path": str(tmp_path / "printer.bin")}}))
    ledger = Ledger(cfg.storage_dir / keys.LEDGER_FILE)
    printer = build_printer(cfg).start()
    svc = TicketService(cfg, ledger, printer=printer, now=service_time)
    free_mb = shutil.disk_usage(cfg.storage_dir).free // 2**20
    # The real free space of the test's folder, with the threshold just above it.
    svc.disk = DiskGuard(cfg.storage_dir, free_mb + 64)
    try:
        code = svc.categories()[0].code
        try:
            svc.issue(code)
        except StorageFull as e:
            assert e.reason == "storage_full"
        else:
            raise AssertionError("a ticket was issued below storage.min_free_mb")
        assert svc.tickets() == [] and ledger.outbox_stats()["pending"] == 0
        assert svc.disk.report()["low"] is True
        svc.disk = DiskGuard(cfg.storage_dir, 10)  # space freed
        assert svc.issue(code).ticket.display
    finally:
        printer.close()
        ledger.close()


def test_a_dead_rating_event_stays_and_does_not_stop_the_chains_pruning(tmp_path):
    config = write_config(tmp_path, {"device": {"roles": ["pad"]}})
    cfg = load_config(config)
    ledger = Ledger(cfg.storage_dir / keys.LEDGER_FILE)
    cache = Cache(cfg.storage_dir / keys.CACHE_FILE)
    svc = RatingService(cfg, ledger, cache)
    try:
        rate(svc, 4)
        events = ledger.query("SELECT uuid FROM outbox ORDER BY seq")
        ledger.mark_dead(events[1]["uuid"], "invalid: refused by the central")
        ledger.mark_delivered([r["uuid"] for r in events])
        got = prune_pass(ledger, 365, now=LATER, pause_s=0)
        assert got.ratings == 4 and got.outbox == 3
        dead = ledger.query("SELECT state FROM outbox")
        assert [r["state"] for r in dead] == ["dead"] and len(ledger.dead_letters()) == 1
        assert ledger.dead_letters()[0]["body"]["hash"]  # the refused record is kept whole there
        r = verify(config)
        assert r.returncode == 0 and "0 record(s) after the retention checkpoint (4 older" in r.stdout, r.stdout
    finally:
        svc.close()
        cache.close()
        ledger.close()

def test_start_runs_the_quick_check_and_the_full_check_runs_when_due(tmp_path):
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from kiosk.core import keys
    from kiosk.core.ledger import Ledger
    from kiosk.technician import selftest

    led = Ledger(tmp_path / keys.LEDGER_FILE)
    cfg = SimpleNamespace(storage=SimpleNamespace(dir=str(tmp_path)))
    rt = SimpleNamespace(ledger=led, cfg=cfg, selftest_result=None)
    row = selftest.check_ledger(cfg, rt)
    assert row.verdict == selftest.OK and "full check not run yet" in row.detail
    now = datetime.now(UTC)
    assert selftest.full_check_due(led, now)
    assert selftest.run_full_check(rt)
    assert not selftest.full_check_due(led, now + timedelta(days=6))
    assert selftest.full_check_due(led, now + timedelta(days=7, seconds=1))
    # A damaged verdict from the scheduled check fails every later start's row, not only that moment's log.
    led.set_meta(keys.LEDGER_FULL_CHECK, f"{now.isoformat(timespec='seconds')} damaged")
    assert selftest.check_ledger(cfg, rt).verdict == selftest.FAIL
    led.close()


def test_the_start_check_reads_the_newest_pages_and_finds_damage_there(tmp_path):
    """A crash or a power cut damages what was written last: the bounded start check reads it."""
    import sqlite3

    from kiosk.core import keys
    from kiosk.core.ledger import Ledger

    path = tmp_path / keys.LEDGER_FILE
    led = Ledger(path)
    for i in range(3000):  # a few hundred pages; the check reads only the newest rows
        with led.transaction() as tx:
            led.add_event(tx, "lookup.performed", {"n": i, "pad": "x" * 200})
    assert led.start_check() is None
    led.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(path, "r+b") as f:  # garbage over the last pages written
        f.seek(-4 * page, 2)
        f.write(b"\xa5" * 4 * page)
    led = Ledger(path)
    try:
        assert led.start_check() is not None
    finally:
        led.close()

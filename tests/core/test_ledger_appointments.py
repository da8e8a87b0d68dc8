"""Ledger migration 4 (appointments): a field ledger's tickets survive the tickets table's rebuild."""

from __future__ import annotations

import sqlite3

import pytest

from kiosk.core import keys
from kiosk.core.ledger import MIGRATIONS, Ledger, statements


def test_migration_4_keeps_every_ticket_and_lets_a_series_of_its_own_beside_the_service(tmp_path):
    db = tmp_path / keys.LEDGER_FILE
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    for script in MIGRATIONS[:3]:  # a field ledger from before appointments
        for stmt in statements(script):
            conn.execute(stmt)
    conn.execute("PRAGMA user_version = 3")
    for n in (1, 2, 905):
        conn.execute(
            "INSERT INTO tickets (uuid, request_id, day, category, number, display, source, issued_at, boot_id,"
            " print_state, service_zh, lease_id) VALUES (?, ?, '2026-03-04', 'A', ?, ?, ?, 'now', 'b', 'printed',"
            " '社保医保', ?)",
            (f"u{n}", f"r{n}", n, f"A{n:03d}", "offline" if n > 900 else "online", "L1" if n > 900 else None),
        )
    conn.execute("COMMIT")
    conn.close()
    led = Ledger(db)
    assert led.schema_version == len(MIGRATIONS)
    rows = led.query("SELECT id, display, source, print_state, service_zh, lease_id, appointment FROM tickets")
    assert [tuple(r) for r in rows] == [
        (1, "A001", "online", "printed", "社保医保", None, None),
        (2, "A002", "online", "printed", "社保医保", None, None),
        (3, "A905", "offline", "printed", "社保医保", "L1", None),
    ]
    with led.transaction() as tx:  # Y001 of service A beside A001: once refused by the old UNIQUE
        tx.execute(
            "INSERT INTO tickets (uuid, request_id, day, category, number, display, source, issued_at, boot_id,"
            " appointment) VALUES ('u9', 'r9', '2026-03-04', 'A', 1, 'Y001', 'online', 'now', 'b', 'bk1')"
        )
    assert led.query("SELECT MAX(id) FROM tickets")[0][0] == 4  # ids go on counting after the rebuild
    with pytest.raises(sqlite3.IntegrityError), led.transaction() as tx:  # one display once per day still
        tx.execute(
            "INSERT INTO tickets (uuid, request_id, day, category, number, display, source, issued_at, boot_id)"
            " VALUES ('u10', 'r10', '2026-03-04', 'B', 1, 'A001', 'online', 'now', 'b')"
        )

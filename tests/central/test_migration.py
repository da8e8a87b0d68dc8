"""A data directory of the previous bench central (schema 0) opens with its data kept."""

from __future__ import annotations

import sqlite3

from kiosk.central.store import CentralStore, token_hash
from kiosk.core import keys

# Schema 0 as it shipped: hall-wide request ids and event ids, tokens without roles.
OLD = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tokens (
    token_hash TEXT PRIMARY KEY, device_id TEXT NOT NULL, issued_at TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    day TEXT NOT NULL, series TEXT NOT NULL, category TEXT NOT NULL, number INTEGER NOT NULL,
    display TEXT NOT NULL, priority INTEGER NOT NULL, request_id TEXT UNIQUE, device_id TEXT NOT NULL,
    source TEXT NOT NULL, people_ahead INTEGER, est_wait_s INTEGER, issued_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'waiting', called_at TEXT, window TEXT);
CREATE TABLE events (
    id TEXT PRIMARY KEY, device_id TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
    created_at TEXT NOT NULL, boot_id TEXT NOT NULL, seq INTEGER NOT NULL, received_at TEXT NOT NULL);
INSERT INTO tokens VALUES ('%s', 'old-kiosk', '2026-05-01T08:00:00+08:00', 0);
INSERT INTO tickets (day, series, category, number, display, priority, request_id, device_id, source, issued_at)
    VALUES ('2026-05-12', 'A', 'A', 1, 'A001', 0, 'r-1', 'old-kiosk', 'online', '2026-05-12T09:00:00+08:00');
INSERT INTO events VALUES ('0b8e9a52-36a4-4c1e-8f7b-3d3f2e1a9c01', 'old-kiosk', 'audit.boot', '{}',
    '2026-05-12T09:00:00+08:00', 'b', 1, '2026-05-12T09:00:01+08:00');
"""


def test_schema_0_is_migrated_keeping_its_data(tmp_path):
    db = sqlite3.connect(tmp_path / keys.CENTRAL_DB_FILE)
    db.executescript(OLD % token_hash("old-token-123456"))
    db.close()
    store = CentralStore(tmp_path)
    try:
        assert [t["display"] for t in store.tickets("2026-05-12")] == ["A001"]
        assert [e["kind"] for e in store.events()] == ["audit.boot"]
        old = store.scope_for_token("old-token-123456")
        assert old.device_id == "old-kiosk" and old.roles == frozenset()  # must be reissued with roles
        # The new keys hold: another device may use the same request id.
        t, created = store.issue_ticket("new-kiosk", "r-1", "A")
        assert created and t["number"] == 1  # 2026-05-12 is not today: a fresh series
    finally:
        store.close()
    again = CentralStore(tmp_path)  # opening it again changes nothing
    assert len(again.events()) == 1
    again.close()

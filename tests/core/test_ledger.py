"""The ledger keeps every committed record across SIGKILL; the cache never unpickles."""

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time

from kiosk.core import keys
from kiosk.core.cache import Cache
from kiosk.core.ledger import MIGRATIONS, Ledger
from tests.helpers import ROOT

WRITER = r"""
import sys, json
sys.path.insert(0, sys.argv[2])
from kiosk.core.ledger import Ledger
led = Ledger(sys.argv[1])
i = int(sys.argv[3])
while True:
    i += 1
    with led.transaction() as tx:
        tx.execute("INSERT INTO tickets (uuid, request_id, day, category, number, display, source, issued_at, boot_id)"
                   " VALUES (?, ?, '2026-11-27', 'A', ?, ?, 'offline', 'now', 'b')",
                   (f"u{i}", f"r{i}", i, f"A{i:03d}"))
        led.add_event(tx, "ticket.issued", {"number": i})
    # Reported only after COMMIT returned: from here on the record must survive.
    sys.stdout.write(f"{i}\n")
    sys.stdout.flush()
"""


def test_sigkill_never_loses_a_committed_record(tmp_path):
    db = tmp_path / keys.LEDGER_FILE
    Ledger(db).close()
    reported: set[int] = set()
    start = 0
    rng = random.Random(1234)
    for run in range(25):
        p = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(ROOT), str(start)], stdout=subprocess.PIPE, text=True
        )
        time.sleep(rng.uniform(0.15, 0.6))
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate()
        got = [int(x) for x in out.split()]
        reported.update(got)
        led = Ledger(db)
        assert led.integrity_ok()
        numbers = {r["number"] for r in led.query("SELECT number FROM tickets")}
        events = len(led.query("SELECT 1 FROM outbox"))
        led.close()
        assert reported <= numbers, f"run {run}: lost {sorted(reported - numbers)[:5]}"
        # record and event are one transaction: never one without the other
        assert events == len(numbers)
        start = max(numbers) if numbers else start
    assert len(reported) > 50  # the test did write a meaningful amount


def test_wal_and_full_sync(tmp_path):
    led = Ledger(tmp_path / "l.db")
    conn = led._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert led.schema_version == len(MIGRATIONS)


def test_transaction_rolls_back_record_and_event_together(tmp_path):
    led = Ledger(tmp_path / "l.db")
    try:
        with led.transaction() as tx:
            led.add_event(tx, "x", {})
            raise RuntimeError("printer exploded")
    except RuntimeError:
        pass
    assert led.outbox_stats()["pending"] == 0


def test_outbox_lifecycle(tmp_path):
    led = Ledger(tmp_path / "l.db")
    with led.transaction() as tx:
        a = led.add_event(tx, "rating.submitted", {"level": 5})
        b = led.add_event(tx, "rating.submitted", {"level": 1})
    pending = led.pending_events()
    assert [e.uuid for e in pending] == [a, b]
    assert pending[0].wire("dev")["id"] == a
    led.note_attempt([a, b], "timeout")
    led.mark_delivered([a])
    led.mark_dead(b, "conflict: same id, different body")
    stats = led.outbox_stats()
    assert (stats["pending"], stats["delivered"], stats["dead"]) == (0, 1, 1)
    dead = led.dead_letters()
    assert dead[0]["uuid"] == b and "conflict" in dead[0]["reason"] and dead[0]["body"] == {"level": 1}


def test_newer_schema_is_refused_with_advice(tmp_path):
    db = tmp_path / "l.db"
    Ledger(db).close()
    c = sqlite3.connect(db)
    c.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    c.close()
    try:
        Ledger(db)
    except Exception as e:
        assert "newer than this software" in str(e)
    else:
        raise AssertionError("a newer schema must be refused")


def test_cache_is_json_and_never_unpickles(tmp_path):
    path = tmp_path / keys.CACHE_FILE
    c = Cache(path)
    c.set("config", {"categories": ["社保"], "etag": "x1"})
    assert c.get("config") == {"categories": ["社保"], "etag": "x1"}
    c.close()
    # The stored value is JSON text.
    conn = sqlite3.connect(path)
    raw = conn.execute("SELECT value FROM cache WHERE key = 'config'").fetchone()[0]
    assert json.loads(raw)["etag"] == "x1"
    # Plant a pickle payload that would create a file if it were unpickled.
    marker = tmp_path / "pwned"
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    conn.execute("INSERT OR REPLACE INTO cache (key, value) VALUES ('evil', ?)", (payload,))
    conn.commit()
    conn.close()
    c = Cache(path)
    assert c.get("evil", "gone") == "gone"
    assert not marker.exists()

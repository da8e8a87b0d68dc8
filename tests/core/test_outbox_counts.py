"""The outbox counters (migration 3) always equal a full COUNT, through every write path and a SIGKILL."""

import random
import signal
import sqlite3
import subprocess
import sys
import time

from kiosk.core import keys
from kiosk.core.ledger import MIGRATIONS, Ledger, statements
from tests.helpers import ROOT


def counted(led: Ledger) -> dict[str, int]:
    n = {r["state"]: r["n"] for r in led.query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")}
    return {s: n.get(s, 0) for s in ("pending", "delivered", "dead")}


def kept(led: Ledger) -> dict[str, int]:
    st = led.outbox_stats()
    return {s: st[s] for s in ("pending", "delivered", "dead")}  # type: ignore[literal-required]


def test_counters_match_a_full_count_after_mixed_adds_deliveries_dead_letters_and_rollbacks(tmp_path):
    led = Ledger(tmp_path / keys.LEDGER_FILE)
    rng = random.Random(17)
    for step in range(300):
        op = rng.random()
        pending = [e.uuid for e in led.pending_events(limit=50)]
        if op < 0.45 or not pending:
            with led.transaction() as tx:
                for _ in range(rng.randint(1, 4)):
                    led.add_event(tx, "audit.test", {"step": step})
        elif op < 0.7:
            led.mark_delivered([*rng.sample(pending, rng.randint(1, len(pending))), "not-a-uuid"])
        elif op < 0.8:
            led.mark_dead(rng.choice(pending), "invalid: test")
        elif op < 0.9:
            led.note_attempt(pending[:3], "offline")  # not a state change: counts stay
        else:
            try:
                with led.transaction() as tx:
                    led.add_event(tx, "audit.test", {"step": step})
                    tx.execute("UPDATE outbox SET state = 'delivered' WHERE uuid = ?", (pending[0],))
                    raise RuntimeError("the service failed before commit")
            except RuntimeError:
                pass
        assert kept(led) == counted(led), f"step {step}"
    assert min(kept(led).values()) > 0 and sum(kept(led).values()) > 100  # every state, a meaningful amount
    with led.transaction() as tx:  # retention pruning (a later change) deletes delivered rows
        tx.execute("DELETE FROM outbox WHERE state = 'delivered'")
    assert kept(led) == counted(led) and kept(led)["delivered"] == 0


def test_migration_starts_the_counters_from_the_rows_already_there(tmp_path):
    db = tmp_path / keys.LEDGER_FILE
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    for script in MIGRATIONS[:2]:  # a field ledger from before the counters
        for stmt in statements(script):
            conn.execute(stmt)
    conn.execute("PRAGMA user_version = 2")
    for i, state in enumerate(["pending"] * 7 + ["delivered"] * 11 + ["dead"] * 2):
        conn.execute(
            "INSERT INTO outbox (uuid, kind, body, created_at, boot_id, state) VALUES (?, 'a.b', '{}', 'now', 'b', ?)",
            (f"u{i}", state),
        )
    conn.execute("COMMIT")
    conn.close()
    led = Ledger(db)
    assert led.schema_version == len(MIGRATIONS)
    assert kept(led) == counted(led) == {"pending": 7, "delivered": 11, "dead": 2}


def test_pending_ticket_requests_are_found_through_the_partial_index(tmp_path):
    led = Ledger(tmp_path / keys.LEDGER_FILE)
    plan = " ".join(r[3] for r in led.query("EXPLAIN QUERY PLAN SELECT * FROM ticket_requests WHERE state = 'pending'"))
    assert "ticket_requests_pending" in plan, plan


WRITER = r"""
import sys, random
sys.path.insert(0, sys.argv[2])
from kiosk.core.ledger import Ledger
led = Ledger(sys.argv[1])
rng = random.Random(int(sys.argv[3]))
while True:
    # Long transactions that add, deliver and kill events, so a SIGKILL lands inside one.
    with led.transaction() as tx:
        for _ in range(rng.randint(1, 30)):
            led.add_event(tx, "audit.test", {"x": 1})
        tx.execute("UPDATE outbox SET state = 'delivered' WHERE seq IN "
                   "(SELECT seq FROM outbox WHERE state = 'pending' ORDER BY random() LIMIT ?)", (rng.randint(0, 20),))
        tx.execute("UPDATE outbox SET state = 'dead' WHERE seq IN "
                   "(SELECT seq FROM outbox WHERE state = 'pending' ORDER BY random() LIMIT 1)")
    sys.stdout.write("c\n")
    sys.stdout.flush()
"""


def test_counters_survive_a_sigkill_mid_transaction(tmp_path):
    db = tmp_path / keys.LEDGER_FILE
    Ledger(db).close()
    rng = random.Random(4321)
    commits = 0
    for run in range(12):
        p = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(ROOT), str(run)], stdout=subprocess.PIPE, text=True
        )
        time.sleep(rng.uniform(0.2, 0.6))
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate()
        commits += len(out.split())
        led = Ledger(db)
        assert kept(led) == counted(led), f"run {run}"
        led.close()
    assert commits > 20  # transactions did commit between the kills

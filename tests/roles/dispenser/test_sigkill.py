"""SIGKILL at random moments while issuing: no number twice, no reported ticket lost."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

from kiosk.core import keys
from tests.helpers import ROOT, SERVICE_TIME, write_config

ISSUER = r"""
import sys
from datetime import datetime
from kiosk.core import keys
from kiosk.core.config import load_config
from kiosk.core.ledger import Ledger
from kiosk.roles.dispenser.service import TicketService
from kiosk.wiring import build_printer
cfg = load_config(sys.argv[1])
worker = build_printer(cfg).start()
# One service day for every run, whatever the hour the test runs at.
svc = TicketService(cfg, Ledger(cfg.storage_dir / keys.LEDGER_FILE), printer=worker,
                    now=lambda: datetime.fromisoformat(sys.argv[2]))
print("ready", flush=True)
cats = ["A", "B", "C"]
i = 0
while True:
    r = svc.issue(cats[i % 3], priority=(i % 7 == 0))
    # reported only after issue() returned: the citizen has seen this number
    print("T", r.ticket.day, r.ticket.display, r.ticket.uuid, flush=True)
    i += 1
"""


def test_sigkill_while_issuing_never_duplicates_or_loses_a_ticket(tmp_path):
    cfg = write_config(
        tmp_path,
        {
            "printer": {"backend": "file", "path": str(tmp_path / "printer.bin")},
            "dispenser": {
                "offline_range": [1, 9999],
                "open_days": [1, 2, 3, 4, 5, 6, 7],
                "open_hours": ["00:00-23:59"],
            },
        },
    )
    script = tmp_path / "issuer.py"
    script.write_text(ISSUER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(4)
    reported: list[tuple[str, str, str]] = []
    runs = 18
    for _ in range(runs):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(cfg), SERVICE_TIME.isoformat()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=str(ROOT),
            text=True,
        )
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, err  # it was issuing, not crashing
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] == "T":  # a torn last line was never "reported"
                reported.append(tuple(parts[1:]))
    assert len(reported) > runs  # the test really issued tickets
    pairs = [(day, display) for day, display, _ in reported]
    assert len(pairs) == len(set(pairs)), "a number was reported twice"

    db = sqlite3.connect(tmp_path / "data" / keys.LEDGER_FILE)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {uuid: (day, display) for uuid, day, display in db.execute("SELECT uuid, day, display FROM tickets")}
    for day, display, uuid in reported:
        assert stored.get(uuid) == (day, display), f"reported ticket {display} missing from the ledger"
    assert len(set(stored.values())) == len(stored)
    # every stored ticket has its outbox event (one transaction)
    events = {
        row[0]
        for row in db.execute("SELECT json_extract(body, '$.ticket_uuid') FROM outbox WHERE kind = 'ticket.issued'")
    }
    assert events == set(stored)
    # numbers of a series continue without reuse across all the kills
    a = sorted(int(d[1:]) for _, d in stored.values() if d.startswith("A"))
    assert a == sorted(set(a))

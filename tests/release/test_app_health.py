"""The running app confirms (or fails) the release on trial: a real `kiosk run`
under SDL's offscreen driver, as systemd starts it after an update."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from kiosk import __version__
from kiosk.core import keys
from kiosk.release.releases import HEALTH_FILE, Layout, check, switch_link
from tests.helpers import wait_until, write_config


def on_trial(tmp_path):
    """A root where this version was just switched to, with 0.0.9 before it."""
    root = tmp_path / "root"
    layout = Layout(root)
    for v in ("0.0.9", __version__):
        layout.release(v).mkdir(parents=True)
        (layout.release(v) / ".complete").write_text("x")
    switch_link(layout.previous, layout.release("0.0.9"))
    switch_link(layout.current, layout.release(__version__))
    state = {"state": "trial", "version": __version__, "previous": "0.0.9", "switched_at": 4e9, "trial_s": 600}
    layout.update_file.write_text(json.dumps(state))
    return root


def start(config, root, tmp_path):
    env = {**os.environ, "KIOSK_RELEASE_ROOT": str(root), "SDL_VIDEODRIVER": "offscreen", "KIVY_NO_ARGS": "1"}
    env["KIVY_HOME"] = str(tmp_path / keys.KIVY_HOME_DIR)
    return subprocess.Popen(
        [sys.executable, "-m", "kiosk", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_new_release_whose_self_check_fails_exits_for_restart_and_is_rolled_back(tmp_path):
    # A dispenser whose printer port is not there: the self-check's required printer row fails.
    config = write_config(tmp_path, {"printer": {"backend": "serial", "port": str(tmp_path / "ttyNOPE")}})
    root = on_trial(tmp_path)
    proc = start(config, root, tmp_path)
    try:
        code = proc.wait(timeout=90)
    finally:
        proc.kill()
    assert code == 75, proc.stderr.read()[-1500:]  # RestartForceExitStatus: systemd starts it again
    storage = tmp_path / "data"
    health = json.loads((storage / HEALTH_FILE).read_text())
    assert health["version"] == __version__ and health["ok"] is False and "printer" in health["reason"]
    # ... and the check before that next start (ExecStartPre) switches back.
    state = check(root, storage)
    assert state["state"] == "rolled_back" and state["rolled_back_to"] == "0.0.9"
    assert Layout(root).version_of(Layout(root).current) == "0.0.9"


def test_a_healthy_new_release_confirms_itself_and_keeps_serving(tmp_path):
    config = write_config(tmp_path, {"printer": {"backend": "sim"}})
    root = on_trial(tmp_path)
    storage = tmp_path / "data"
    proc = start(config, root, tmp_path)
    try:
        assert wait_until(lambda: (storage / HEALTH_FILE).exists(), timeout=90), "no health verdict written"
        health = json.loads((storage / HEALTH_FILE).read_text())
        assert health["ok"] is True, health
        assert proc.poll() is None  # still serving
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert check(root, storage)["state"] == "confirmed"
    assert Layout(root).version_of(Layout(root).current) == __version__


def test_after_a_rollback_across_a_migration_the_older_release_says_so_and_keeps_the_data(tmp_path):
    """The ledger rule on the device: `kiosk run` of this (older) release on a ledger a
    newer release migrated comes up out of service naming the schema, and changes nothing."""
    import sqlite3

    from kiosk.core.ledger import MIGRATIONS, Ledger
    from tests.core.test_unusable_start import ready_status, start_under_notify

    config = write_config(tmp_path)
    ledger_path = tmp_path / "data" / keys.LEDGER_FILE
    ledger_path.parent.mkdir(parents=True)
    ledger = Ledger(ledger_path)
    with ledger.transaction() as tx:
        ledger.add_event(tx, "ticket", {"n": 1})
    ledger.close()
    with sqlite3.connect(ledger_path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    proc, sock = start_under_notify(tmp_path, config)
    try:
        status = ready_status(proc, sock)
        assert status.startswith("out of service: storage unusable")
        assert f"schema {len(MIGRATIONS) + 1}, newer than this software" in status
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    with sqlite3.connect(ledger_path) as conn:  # not migrated back, nothing lost
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 1
        assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1

"""Side-by-side releases in a temporary root: an update, its confirmation, a new
release that fails its health check and the rollback, and the ledger rule."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3

import pytest

from kiosk.core import keys
from kiosk.core.bootguard import BootGuard
from kiosk.core.ledger import MIGRATIONS, Ledger, LedgerError
from kiosk.release import releases
from kiosk.release.releases import Layout, apply_update, check, heartbeat_part, write_health
from tests.helpers import write_config
from tests.release.conftest import KIOSK, build, run


@pytest.fixture(scope="module")
def installed(tmp_path_factory, release_key):
    """Bundles 0.1.0 and 0.2.0, and a root where both were installed once (pip runs here only)."""
    key, pub, _ = release_key
    tmp = tmp_path_factory.mktemp("releases")
    bundles = {v: build(tmp, key, v) for v in ("0.1.0", "0.2.0")}
    golden = tmp / "golden"
    apply_update(bundles["0.1.0"], golden, pub)
    apply_update(bundles["0.2.0"], golden, pub)
    return golden, bundles, pub


@pytest.fixture
def device(tmp_path, installed):
    """A root with 0.1.0 current and confirmed, 0.2.0 on the USB stick. The release
    folders come from the module's install (a complete release is not installed again)."""
    golden, bundles, pub = installed
    root, storage = tmp_path / "root", tmp_path / "storage"
    storage.mkdir()
    (root / "opt/hall-kiosk").mkdir(parents=True)
    shutil.copytree(golden / "opt/hall-kiosk/releases/0.1.0", root / "opt/hall-kiosk/releases/0.1.0", symlinks=True)
    first = apply_update(bundles["0.1.0"], root, pub)
    assert first["state"] == "confirmed" and first["previous"] is None
    shutil.copytree(golden / "opt/hall-kiosk/releases/0.2.0", root / "opt/hall-kiosk/releases/0.2.0", symlinks=True)
    return root, storage, pub, bundles["0.2.0"]


def links(root):
    layout = Layout(root)
    return layout.version_of(layout.current), layout.version_of(layout.previous)


def test_update_switches_current_and_a_healthy_release_is_kept(device):
    root, storage, pub, bundle = device
    clock = [1000.0]
    state = apply_update(bundle, root, pub, trial_s=300, clock=lambda: clock[0])
    assert state["state"] == "trial" and state["previous"] == "0.1.0"
    assert links(root) == ("0.2.0", "0.1.0")
    assert Layout(root).installed() == ["0.1.0", "0.2.0"]  # side by side
    assert os.readlink(Layout(root).current) == "releases/0.2.0"  # relative: the root can be moved
    # Not yet confirmed, still within the trial time: nothing changes.
    clock[0] += 100
    assert check(root, storage, clock=lambda: clock[0])["state"] == "trial"
    # The app's word after its first frame and a passing self-check.
    write_health(storage, "0.2.0", True)
    assert check(root, storage, clock=lambda: clock[0])["state"] == "confirmed"
    assert links(root) == ("0.2.0", "0.1.0")
    clock[0] += 10_000  # confirmed stays confirmed
    assert check(root, storage, clock=lambda: clock[0])["state"] == "confirmed"
    assert heartbeat_part(root) == {
        "current": "0.2.0",
        "update": {"state": "confirmed", "version": "0.2.0", "previous": "0.1.0"},
    }


def test_a_release_that_fails_its_self_check_is_rolled_back_and_the_heartbeat_says_so(device):
    root, storage, pub, bundle = device
    apply_update(bundle, root, pub)
    failed = {"ok": False, "rows": [{"name": "printer", "verdict": "fail", "required": True}]}
    # What the app does on trial after its self-check (kiosk/app.py _confirm_release).
    assert releases.confirm_health(storage, "0.2.0", failed, root) is True  # -> exit for a restart
    state = check(root, storage)
    assert state["state"] == "rolled_back" and state["rolled_back_to"] == "0.1.0"
    assert "self-check failed: printer" in state["reason"]
    assert links(root)[0] == "0.1.0"
    assert Layout(root).installed() == ["0.1.0", "0.2.0"]  # the failed one stays for inspection
    hb = heartbeat_part(root)
    assert hb["current"] == "0.1.0"
    assert hb["update"]["state"] == "rolled_back" and "printer" in hb["update"]["reason"]
    # The old release confirming its own health later does not undo the record.
    releases.confirm_health(storage, "0.1.0", {"ok": True, "rows": []}, root)
    assert check(root, storage)["state"] == "rolled_back"


def test_a_release_that_crashes_at_start_is_rolled_back_by_the_boot_guard(device):
    root, storage, pub, bundle = device
    apply_update(bundle, root, pub)
    for _ in range(3):  # three starts that never became healthy
        BootGuard(storage).begin()
    state = check(root, storage)
    assert state["state"] == "rolled_back" and "crashed 3 starts" in state["reason"]
    assert links(root)[0] == "0.1.0"
    # The crashes were the new release's: the old one starts normally, not out of service.
    assert BootGuard(storage).begin() is None


def test_a_release_that_never_confirms_is_rolled_back_after_the_trial_time(device):
    root, storage, pub, bundle = device
    clock = [5000.0]
    apply_update(bundle, root, pub, trial_s=60, clock=lambda: clock[0])
    write_health(storage, "0.1.0", True)  # an old verdict of the old release counts for nothing
    clock[0] += 61
    state = check(root, storage, clock=lambda: clock[0])
    assert state["state"] == "rolled_back" and "within 60 s" in state["reason"]
    assert links(root)[0] == "0.1.0"


def test_cli_update_check_and_rollback(device, tmp_path):
    root, storage, pub, bundle = device
    cfg = write_config(tmp_path, {"storage": {"dir": str(storage)}})
    out = run([*KIOSK, "update", "--from", bundle, "--root", root, "--trust", pub, "--trial", "120"])
    assert "release 0.2.0 installed and current, on trial" in out.stdout and "within 120 s" in out.stdout
    again = run([*KIOSK, "update", "--from", bundle, "--root", root, "--trust", pub], ok=False)
    assert again.returncode == 2 and "already the current one" in again.stderr
    write_health(storage, "0.2.0", False, "self-check failed: scanner")
    proc = run([*KIOSK, "update", "--check", "--config", cfg, "--root", root], ok=False)
    assert proc.returncode == 1 and "rolled back from 0.2.0 to 0.1.0" in proc.stdout and "scanner" in proc.stdout
    listing = run([*KIOSK, "update", "--list", "--root", root]).stdout
    assert "0.1.0  current" in listing and "rolled_back" in listing
    # After a rollback the device runs the known-good one; nothing else to go back to.
    proc = run([*KIOSK, "update", "--rollback", "--root", root], ok=False)
    assert proc.returncode == 2 and "no previous release" in proc.stderr and "Traceback" not in proc.stderr


def test_technician_rollback_of_a_confirmed_update(device):
    root, storage, pub, bundle = device
    apply_update(bundle, root, pub)
    write_health(storage, "0.2.0", True)
    check(root, storage)
    assert "rolled back from 0.2.0 to 0.1.0" in run([*KIOSK, "update", "--rollback", "--root", root]).stdout
    assert links(root)[0] == "0.1.0"
    assert heartbeat_part(root)["update"]["reason"].startswith("a technician asked")


def test_an_interrupted_install_is_never_switched_to(device):
    root, storage, pub, bundle = device
    apply_update(bundle, root, pub)
    half = Layout(root).release("0.1.0")
    (half / releases.COMPLETE).unlink()  # as if a power cut had stopped its install half-way
    assert Layout(root).installed() == ["0.2.0"]
    state = check(root, storage, clock=lambda: 9e9)  # the trial runs out, but there is nothing whole to go back to
    assert state["state"] == "failed" and "no previous release" in state["reason"]
    assert links(root)[0] == "0.2.0"
    with pytest.raises(releases.UpdateError, match="no previous release"):
        releases.rollback(root, "technician")


def test_ledger_rule_an_older_release_refuses_a_newer_schema_and_keeps_its_data(tmp_path):
    """The rule (kiosk/release/releases.py): a rollback never touches the ledger; the
    older release refuses a ledger a newer one migrated, clearly, and changes nothing."""
    path = tmp_path / keys.LEDGER_FILE
    ledger = Ledger(path)
    with ledger.transaction() as tx:
        ledger.add_event(tx, "ticket", {"n": 1})
    ledger.close()
    newer = len(MIGRATIONS) + 1
    with sqlite3.connect(path) as conn:  # what release N+1's migration leaves behind
        conn.execute("CREATE TABLE from_the_newer_release (x)")
        conn.execute(f"PRAGMA user_version = {newer}")
    before = path.read_bytes()
    with pytest.raises(LedgerError) as e:
        Ledger(path)
    assert f"schema {newer}, newer than this software ({len(MIGRATIONS)})" in str(e.value)
    assert "install the newer version" in str(e.value)
    assert path.read_bytes() == before  # nothing migrated back, nothing lost
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1


def test_bundle_manifest_records_the_ledger_schema(device):
    root, _, _, _ = device
    manifest = json.loads((Layout(root).release("0.1.0") / "manifest.json").read_text())
    assert manifest["ledger_schema"] == len(MIGRATIONS)


def test_first_bundle_on_a_checkout_install_keeps_it_to_go_back_to(tmp_path, installed):
    """systemd/install.sh makes /opt/hall-kiosk/current point at /opt/kiosk; the first
    bundle installs beside it and a failed trial goes back to that checkout install."""
    golden, bundles, pub = installed
    root, storage = tmp_path / "root", tmp_path / "storage"
    storage.mkdir()
    checkout = root / "opt/kiosk/venv/bin"
    checkout.mkdir(parents=True)
    (checkout / "kiosk").write_text("#!/bin/sh\n")
    shutil.copytree(golden / "opt/hall-kiosk/releases/0.2.0", root / "opt/hall-kiosk/releases/0.2.0", symlinks=True)
    os.symlink(root / "opt/kiosk", root / "opt/hall-kiosk/current")
    state = apply_update(bundles["0.2.0"], root, pub)
    assert state["state"] == "trial" and state["previous"] == "kiosk"
    assert check(root, storage, clock=lambda: 9e9)["state"] == "rolled_back"
    assert os.path.realpath(Layout(root).current) == str((root / "opt/kiosk").resolve())

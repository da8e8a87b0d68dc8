"""A release offered by the central to a device group, fetched over real HTTP
from the bench central on 127.0.0.1 and installed side by side (`kiosk update --central`)."""

from __future__ import annotations

import base64
import json
import os
import platform
import urllib.request

from kiosk.release.releases import Layout
from tests.helpers import write_config
from tests.release.conftest import KIOSK, build, run


def bench_post(central, path, body):
    auth = base64.b64encode(f"x:{central.bench_password}".encode()).decode()
    req = urllib.request.Request(
        central.url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_central_offers_a_release_to_a_group_and_the_device_installs_it(tmp_path, central, release_key):
    key, pub, _stranger = release_key
    arch = platform.machine()
    token = central.issue_token("demo-kiosk")
    config = write_config(tmp_path, {"central": {"url": central.url}}, token=token)
    root = tmp_path / "root"
    # The pip install itself is tested in test_bundle/test_releases: here the release
    # folder is made ready, so the download, hash and signature checks are what runs.
    ready = root / "opt/hall-kiosk/releases/0.2.0"
    ready.mkdir(parents=True)
    update = [*KIOSK, "update", "--central", "--config", config, "--root", root, "--trust", pub]

    # Offered to the pilot group only: this device (group "default") is not in it yet.
    offer = bench_post(
        central, "/bench/releases.json", {"group": "pilot", "path": str(build(tmp_path, key, "0.2.0", arch=arch))}
    )
    assert offer["version"] == "0.2.0" and len(offer["sha256"]) == 64 and offer["signature"]
    assert "no newer release" in run(update).stdout
    assert not Layout(root).current.exists()

    central.store.set_group("demo-kiosk", "pilot")
    (ready / ".complete").write_text("installed earlier\n")
    # As kiosk-update.service runs it: the kiosk is restarted into the new release.
    # No systemd in a test: a systemctl on PATH that writes down what it was asked.
    bin_dir, asked = tmp_path / "bin", tmp_path / "systemctl.args"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "$@" >> {asked}\n')
    (bin_dir / "systemctl").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    out = run([*update, "--restart-unit", "kiosk.service"], env=env).stdout
    assert "release 0.2.0 is current" in out and "restarted kiosk.service" in out
    assert asked.read_text() == "try-restart kiosk.service\n"
    assert Layout(root).version_of(Layout(root).current) == "0.2.0"
    assert "no newer release" in run([*update, "--restart-unit", "kiosk.service"], env=env).stdout
    assert asked.read_text() == "try-restart kiosk.service\n"  # nothing installed: no restart


def test_an_offered_bundle_signed_by_a_stranger_is_refused(tmp_path, central, release_key):
    _key, pub, stranger = release_key
    token = central.issue_token("demo-kiosk")
    config = write_config(tmp_path, {"central": {"url": central.url}}, token=token)
    bench_post(
        central, "/bench/releases.json", {"path": str(build(tmp_path, stranger, "6.6.6", arch=platform.machine()))}
    )
    root = tmp_path / "root"
    proc = run([*KIOSK, "update", "--central", "--config", config, "--root", root, "--trust", pub], ok=False)
    assert proc.returncode == 2 and "signature matches no release key" in proc.stderr
    assert not Layout(root).current.exists() and Layout(root).installed() == []

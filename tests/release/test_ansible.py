"""The Ansible role (ansible/roles/hall_kiosk) run for real by ansible-core with
`connection: local` into a temporary root: the bundle installed offline and
switched to, the config and the 0600 token in place, the unit copied. One test,
one run: ansible-core costs 10-30 s here, so idempotence (a second run changing
nothing) is not run in the suite."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import __version__
from tests.helpers import ROOT
from tests.release.conftest import build

PLAYBOOK = ROOT / "ansible" / "site.yml"


def ansible_playbook() -> str | None:
    found = Path(sys.executable).parent / "ansible-playbook"
    return str(found) if found.exists() else shutil.which("ansible-playbook")


@pytest.mark.skipif(ansible_playbook() is None, reason="ansible-core is in the test extras: pip install -e .[test]")
def test_role_installs_bundle_config_token_and_unit_into_a_root(tmp_path, release_key, product_wheel):
    key, pub, _ = release_key
    bundle = build(tmp_path, key, __version__, product=product_wheel)
    provisioned = tmp_path / "provisioned" / "hall01-pad01"
    provisioned.mkdir(parents=True)
    (provisioned / "kiosk.toml").write_text('[device]\nid = "hall01-pad01"\n')
    (provisioned / "token").write_text("the-token\n")
    root = tmp_path / "root"
    py_dir = tmp_path / "bin"  # the device's python3 (with python3-cryptography): this venv's
    py_dir.mkdir()
    (py_dir / "python3").symlink_to(sys.executable)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    extra = [
        f"kiosk_root={root}",
        f"kiosk_bundle={bundle}",
        f"kiosk_release_key={pub}",
        f"kiosk_provision_dir={tmp_path / 'provisioned'}",
        "kiosk_manage_system=false",
        f"ansible_python_interpreter={sys.executable}",
    ]
    cmd = [ansible_playbook(), "-i", "hall01-pad01,", "-c", "local", str(PLAYBOOK)]
    cmd += [a for e in extra for a in ("-e", e)]
    cmd += ["-e", '{"kiosk_install_env": {"PATH": "' + f"{py_dir}:{os.environ['PATH']}" + '"}}']

    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    base = root / "opt" / "hall-kiosk"
    assert os.readlink(base / "current") == f"releases/{__version__}"
    assert (base / "releases" / __version__ / ".complete").exists()
    assert (root / "etc/kiosk/kiosk.toml").read_text().startswith('[device]\nid = "hall01-pad01"')
    token = root / "etc/kiosk/token"
    assert token.read_text() == "the-token\n" and stat.S_IMODE(token.stat().st_mode) == 0o600
    assert (root / "etc/systemd/system/kiosk.service").read_bytes() == (ROOT / "systemd/kiosk.service").read_bytes()
    assert (root / "etc/kiosk/release-keys/release.pub").read_bytes() == pub.read_bytes()
    assert "the-token" not in proc.stdout  # no_log on the token

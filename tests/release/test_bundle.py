"""The signed offline bundle: built from wheels and a hashed lock, installed with
no network at all (a network namespace with no interfaces), refused whole when
its signature or any file does not match."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.release.conftest import KIOSK, build, run


def _unshare_works() -> bool:
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _python3_on_path(tmp: Path) -> dict:
    """The device's `python3` (with python3-cryptography): here, this venv's Python."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    link = bin_dir / "python3"
    if not link.exists():
        link.symlink_to(sys.executable)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KIOSK_CONFIG")}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return env


def _nothing_installed(root: Path) -> None:
    base = root / "opt" / "hall-kiosk"
    assert not (base / "current").exists()
    assert not (base / "releases").exists() or not any((base / "releases").iterdir())
    assert not list(base.glob(".incoming-*")) if base.exists() else True


@pytest.mark.skipif(not _unshare_works(), reason="unshare -n needs root (or user namespaces) here")
def test_bundle_installs_with_no_network_at_all(tmp_path, release_key, product_wheel):
    key, pub, _ = release_key
    tar = build(tmp_path, key, "0.1.0", product=product_wheel)
    usb = tmp_path / "usb"
    with tarfile.open(tar) as tf:
        tf.extractall(usb, filter="data")
    bundle = usb / "hall-kiosk-0.1.0-x86_64"
    root = tmp_path / "root"
    env = _python3_on_path(tmp_path)
    # No interface but a down loopback: any try to reach an index fails at once.
    probe = run(
        ["unshare", "-n", sys.executable, "-c", "import socket; socket.create_connection(('1.1.1.1', 443), 2)"],
        ok=False,
    )
    assert probe.returncode != 0 and "unreachable" in probe.stderr.lower()
    proc = run(["unshare", "-n", bundle / "install.sh", "--root", root, "--trust", pub], env=env)
    assert "release 0.1.0 is current and confirmed" in proc.stdout
    current = root / "opt/hall-kiosk/current"
    assert os.readlink(current) == "releases/0.1.0"
    py = current / "venv" / "bin" / "python"
    out = run(
        [py, "-c", "import kiosk, kiosk_tinydep; print(kiosk.__version__, kiosk_tinydep.ANSWER, kiosk.__file__)"],
        env=env,
        cwd=tmp_path,
    ).stdout.split()
    assert out[:2] == ["0.1.0", "42"]
    assert Path(out[2]).resolve().is_relative_to((root / "opt/hall-kiosk/releases/0.1.0").resolve())
    # The release's own kiosk command is the product's, installed from the bundle.
    assert (current / "venv/bin/kiosk").exists()


def test_bundle_signed_by_another_key_is_refused_and_nothing_installed(tmp_path, release_key):
    _key, pub, stranger = release_key
    tar = build(tmp_path, stranger, "0.2.0")
    root = tmp_path / "root"
    proc = run([*KIOSK, "update", "--from", tar, "--root", root, "--trust", pub], ok=False)
    assert proc.returncode == 2
    assert "signature matches no release key" in proc.stderr and "nothing installed" in proc.stderr
    assert "Traceback" not in proc.stderr
    _nothing_installed(root)


@pytest.mark.parametrize("change", ["wheel", "added", "manifest"])
def test_a_changed_bundle_is_refused_and_nothing_installed(tmp_path, release_key, change):
    key, pub, _ = release_key
    tar = build(tmp_path, key, "0.2.0")
    work = tmp_path / "unpacked"
    with tarfile.open(tar) as tf:
        tf.extractall(work, filter="data")
    bundle = work / "hall-kiosk-0.2.0-x86_64"
    if change == "wheel":
        [dep] = (bundle / "wheels").glob("kiosk_tinydep-*.whl")
        data = bytearray(dep.read_bytes())
        data[40] ^= 0x01
        dep.write_bytes(bytes(data))
        expect = "differs from the signed manifest"
    elif change == "added":
        shutil.copy2(
            next((bundle / "wheels").glob("kiosk_tinydep-*.whl")), bundle / "wheels" / "extra-1.0-py3-none-any.whl"
        )
        expect = "not in the signed manifest"
    else:
        m = bundle / "manifest.json"
        m.write_text(m.read_text().replace('"0.2.0"', '"0.2.1"'))
        expect = "signature matches no release key"
    root = tmp_path / "root"
    proc = run([*KIOSK, "update", "--from", bundle, "--root", root, "--trust", pub], ok=False)
    assert proc.returncode == 2, proc.stdout
    assert expect in proc.stderr and "nothing installed" in proc.stderr
    _nothing_installed(root)
    # The same check alone, as a technician runs it on the USB stick first.
    proc = run([*KIOSK, "bundle", "verify", bundle, "--trust", pub], ok=False)
    assert proc.returncode == 2 and expect in proc.stderr


def test_cli_builds_and_verifies(tmp_path, release_key):
    key, pub, _ = release_key
    tar = build(tmp_path, key, "0.3.0")
    wheels = tmp_path / "wheels-0.3.0"
    (tmp_path / "cli").mkdir()
    what = ["--version", "0.3.0", "--arch", "x86_64", "--lock", tmp_path / "lock-0.3.0.txt"]
    proc = run([*KIOSK, "bundle", "build", "--wheels", wheels, "--key", key, "--out", tmp_path / "cli", *what])
    assert "hall-kiosk-0.3.0-x86_64.tar" in proc.stdout and "signed" in proc.stdout
    tar = tmp_path / "cli" / "hall-kiosk-0.3.0-x86_64.tar"
    proc = run([*KIOSK, "bundle", "verify", tar, "--trust", pub])
    assert "signature and" in proc.stdout and "hall-kiosk-0.3.0-x86_64" in proc.stdout


def test_committed_lock_pins_every_dependency_with_hashes():
    from tests.helpers import ROOT

    text = (ROOT / "requirements.lock").read_text()
    pins = {line.split("==")[0] for line in text.splitlines() if line and line[0].isalpha()}
    for dep in ("kivy", "requests", "sqlitedict", "cryptography", "pillow", "gpiozero", "pyserial", "qrcode"):
        assert dep in pins, f"{dep} missing from requirements.lock"
    blocks = text.split("==")[1:]
    assert all("--hash=sha256:" in b for b in blocks), "a pin without a hash: pip --require-hashes would refuse it"
    options = [line for line in text.splitlines() if line.startswith("-")]
    assert not options, f"the lock names a machine's index or links: {options}"

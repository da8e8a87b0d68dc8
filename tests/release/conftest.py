"""Small real bundles for the release tests, made with no network.

A wheel here is a real wheel (dist-info, RECORD with hashes) that pip installs;
the tiny dependency stands for the locked ones, so a test installs in seconds.
The product wheel is either the real one (built from the checkout, once) or a
tiny `hall_kiosk` of a chosen version for the update and rollback tests.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT

KIOSK = [sys.executable, "-m", "kiosk"]


def run(cmd, ok=True, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, **kw)
    if ok:
        assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def make_wheel(out: Path, dist: str, version: str, files: dict[str, str]) -> Path:
    """A pure-Python wheel with its RECORD, as a build backend writes it."""
    norm = dist.replace("-", "_")
    info = f"{norm}-{version}.dist-info"
    members = dict(files)
    members[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
    members[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for name, text in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    members[f"{info}/RECORD"] = "\n".join(record) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{norm}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def lock_for(wheels: list[Path], out: Path) -> Path:
    """A requirements.lock as pip-compile --generate-hashes writes it, for these wheels."""
    lines = []
    for w in wheels:
        name, version = w.name.split("-")[:2]
        digest = hashlib.sha256(w.read_bytes()).hexdigest()
        lines.append(f"{name.replace('_', '-')}=={version} \\\n    --hash=sha256:{digest}\n")
    out.write_text("".join(lines))
    return out


@pytest.fixture(scope="session")
def release_key(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    run([*KIOSK, "bundle", "keygen", "--out", d / "release.key"])
    run([*KIOSK, "bundle", "keygen", "--out", d / "stranger.key"])
    return d / "release.key", d / "release.key.pub", d / "stranger.key"


@pytest.fixture(scope="session")
def product_wheel(tmp_path_factory) -> Path:
    """The real product wheel, built offline from a copy of the checkout."""
    tmp = tmp_path_factory.mktemp("product")
    src = tmp / "src"
    skip = shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", "out"
    )
    shutil.copytree(ROOT, src, ignore=skip, symlinks=True)
    wheels = tmp / "wheels"
    offline = ["--no-deps", "--no-build-isolation", "--no-index", "-q"]
    run([sys.executable, "-m", "pip", "wheel", *offline, "-w", wheels, src])
    [wheel] = wheels.glob("hall_kiosk-*.whl")
    return wheel


def build(tmp: Path, key: Path, version: str, product: Path | None = None, arch: str = "x86_64") -> Path:
    """A signed bundle (.tar) holding the product wheel and one tiny locked dependency."""
    wheels = tmp / f"wheels-{version}"
    dep = make_wheel(wheels, "kiosk-tinydep", "1.0", {"kiosk_tinydep.py": "ANSWER = 42\n"})
    if product is None:
        product = make_wheel(
            tmp / "products", "hall-kiosk", version, {"hall_kiosk_marker.py": f"VERSION = {version!r}\n"}
        )
    shutil.copy2(product, wheels / product.name)
    lock = lock_for([dep], tmp / f"lock-{version}.txt")
    out = tmp / "dist"
    from kiosk.core.ledger import MIGRATIONS
    from kiosk.release.bundle import build_bundle

    # In-process (the CLI's `kiosk bundle build` is this call; test_bundle runs the CLI once).
    out.mkdir(exist_ok=True)
    build_bundle(
        wheels=wheels,
        lock=lock,
        key=key,
        out_dir=out,
        version=version,
        arch=arch,
        python="3.11",
        ledger_schema=len(MIGRATIONS),
    )
    return out / f"hall-kiosk-{version}-{arch}.tar"

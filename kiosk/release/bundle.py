"""The offline release bundle: every wheel a device needs, a manifest of their
sha256 hashes, and an ed25519 signature over the manifest.

A bundle is a folder ``hall-kiosk-<version>-<arch>/`` (carried as a .tar of it):

    manifest.json       format, product, version, arch, python, ledger schema,
                        and {path: {sha256, size}} of every other file
    manifest.sig        base64 ed25519 signature of manifest.json's bytes
    requirements.lock   the pinned dependencies with their hashes (pip --require-hashes)
    wheels/*.whl        the product wheel and every dependency for that platform
    install.sh          runs `kiosk update --from` with the product wheel on sys.path

Trust comes from the device, never from the bundle: the public keys in
``/etc/kiosk/release-keys/*.pub`` (put there at provisioning). A bundle is
refused, before anything is written, when its signature matches none of them,
when a file differs from the signed manifest, or when a file is not listed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
LOCK = "requirements.lock"
WHEELS = "wheels"
INSTALL_SCRIPT = "install.sh"
FORMAT = 1
PRODUCT = "hall-kiosk"
PRODUCT_WHEEL_PREFIX = "hall_kiosk-"
DEFAULT_TRUST = "etc/kiosk/release-keys"  # under the install root

INSTALL_SH = """#!/bin/sh
# Install this bundle on a device with no network: checks the signature against
# /etc/kiosk/release-keys/*.pub and every file's hash, then installs side by side
# under /opt/hall-kiosk/releases and switches /opt/hall-kiosk/current.
# Needs python3, python3-venv and python3-cryptography (Raspberry Pi OS bookworm).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
wheel="$(ls "$here"/wheels/hall_kiosk-*.whl | head -n 1)"
cd "$here/wheels"  # python3 -m puts the working folder first on sys.path: nothing to import here
PYTHONPATH="$wheel" exec python3 -m kiosk.release update --from "$here" "$@"
"""


class BundleError(Exception):
    """A bundle that must not be installed; the message says which file and why."""


@dataclass
class Manifest:
    version: str
    arch: str
    python: str
    ledger_schema: int
    files: dict[str, dict[str, Any]]

    @property
    def name(self) -> str:
        return f"{PRODUCT}-{self.version}-{self.arch}"

    def product_wheel(self) -> str:
        for path in sorted(self.files):
            if path.startswith(f"{WHEELS}/{PRODUCT_WHEEL_PREFIX}") and path.endswith(".whl"):
                return path
        raise BundleError("the manifest lists no hall_kiosk wheel: not a product bundle")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- keys -------------------------------------------------------------------------
def generate_key(out: Path) -> Path:
    """A new ed25519 signing key (PEM, mode 0600) and its public half beside it (.pub)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if out.exists():
        raise BundleError(f"{out} exists: a signing key is never overwritten (move it away first)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub = out.with_name(out.name + ".pub")
    pub.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return pub


def _load_private(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise BundleError(f"{path}: not a readable unencrypted PEM signing key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path}: not an ed25519 key (make one with `kiosk bundle keygen`)")
    return key


def trusted_keys(trust: Path) -> list[tuple[str, Any]]:
    """(file name, public key) of a .pub file, or of every *.pub in a folder."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    files = sorted(trust.glob("*.pub")) if trust.is_dir() else [trust]
    found = []
    for f in files:
        try:
            key = serialization.load_pem_public_key(f.read_bytes())
        except (OSError, ValueError) as e:
            raise BundleError(f"{f}: not a readable PEM public key ({e})") from None
        if isinstance(key, Ed25519PublicKey):
            found.append((f.name, key))
    if not found:
        raise BundleError(f"{trust}: no ed25519 release key (*.pub) to check bundles against; nothing installed")
    return found


# -- building ---------------------------------------------------------------------
def build_bundle(
    *,
    wheels: Path,
    lock: Path,
    key: Path,
    out_dir: Path,
    version: str,
    arch: str,
    python: str,
    ledger_schema: int,
) -> Path:
    """Gather the wheels and the lock into a signed bundle folder and a .tar of it."""
    signer = _load_private(key)
    name = f"{PRODUCT}-{version}-{arch}"
    dest = out_dir / name
    if dest.exists():
        shutil.rmtree(dest)
    (dest / WHEELS).mkdir(parents=True)
    found = sorted(wheels.glob("*.whl"))
    if not any(w.name.startswith(PRODUCT_WHEEL_PREFIX) for w in found):
        raise BundleError(f"{wheels}: no hall_kiosk-*.whl (build it with `pip wheel --no-deps .`)")
    for w in found:
        shutil.copy2(w, dest / WHEELS / w.name)
    shutil.copy2(lock, dest / LOCK)
    (dest / INSTALL_SCRIPT).write_text(INSTALL_SH, encoding="utf-8")
    (dest / INSTALL_SCRIPT).chmod(0o755)
    files = {
        p.relative_to(dest).as_posix(): {"sha256": sha256_file(p), "size": p.stat().st_size}
        for p in sorted(dest.rglob("*"))
        if p.is_file()
    }
    manifest = {
        "format": FORMAT,
        "product": PRODUCT,
        "version": version,
        "arch": arch,
        "python": python,
        "ledger_schema": ledger_schema,
        "files": files,
    }
    body = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
    (dest / MANIFEST).write_bytes(body)
    (dest / SIGNATURE).write_text(base64.b64encode(signer.sign(body)).decode("ascii") + "\n", encoding="ascii")
    tar = out_dir / f"{name}.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(dest, arcname=name)
    return tar


# -- checking ---------------------------------------------------------------------
def unpack(source: Path, scratch: Path) -> Path:
    """The bundle folder of a .tar (unpacked into scratch) or of a folder given as is."""
    if source.is_dir():
        return source
    if not source.is_file():
        raise BundleError(f"{source}: no such file (give the bundle's .tar or its folder)")
    try:
        with tarfile.open(source) as tf:
            # filter="data": no absolute paths, no links out, no device files.
            tf.extractall(scratch, filter="data")
    except (tarfile.TarError, OSError) as e:
        raise BundleError(f"{source}: not a readable bundle archive ({e}); nothing installed") from None
    tops = [p for p in scratch.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise BundleError(f"{source}: expected one folder hall-kiosk-<version>-<arch> inside; nothing installed")
    return tops[0]


def verify(bundle: Path, trust: Path) -> Manifest:
    """The manifest of a bundle whose signature and every file check out; BundleError otherwise."""
    from cryptography.exceptions import InvalidSignature

    m_path, s_path = bundle / MANIFEST, bundle / SIGNATURE
    if not m_path.is_file() or not s_path.is_file():
        raise BundleError(f"{bundle}: no {MANIFEST} and {SIGNATURE}: not a release bundle; nothing installed")
    body = m_path.read_bytes()
    try:
        sig = base64.b64decode(s_path.read_text(encoding="ascii").strip(), validate=True)
    except (ValueError, UnicodeDecodeError):
        raise BundleError(f"{s_path}: the signature is not base64; nothing installed") from None
    for _name, key in trusted_keys(trust):
        try:
            key.verify(sig, body)
            break
        except InvalidSignature:
            continue
    else:
        raise BundleError(
            f"{bundle}: the signature matches no release key in {trust}: the bundle was changed or "
            "not signed by your release key; nothing installed"
        )
    try:
        data = json.loads(body)
        if data.get("format") != FORMAT or data.get("product") != PRODUCT:
            raise ValueError(f"format {data.get('format')!r} of {data.get('product')!r}")
        manifest = Manifest(
            str(data["version"]), str(data["arch"]), str(data["python"]), int(data["ledger_schema"]), data["files"]
        )
    except (ValueError, KeyError, TypeError) as e:
        raise BundleError(f"{m_path}: signed but not a manifest this release reads ({e}); nothing installed") from None
    present = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()} - {MANIFEST, SIGNATURE}
    extra = sorted(present - set(manifest.files))
    if extra:
        raise BundleError(f"{bundle / extra[0]}: not in the signed manifest (added after signing); nothing installed")
    for rel, meta in sorted(manifest.files.items()):
        path = bundle / rel
        if not path.is_file():
            raise BundleError(f"{path}: missing from the bundle (copied incompletely?); nothing installed")
        if path.stat().st_size != meta.get("size") or sha256_file(path) != meta.get("sha256"):
            raise BundleError(f"{path}: differs from the signed manifest (changed or damaged); nothing installed")
    manifest.product_wheel()
    return manifest

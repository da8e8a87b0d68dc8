"""Side-by-side releases, a health-confirmed switch and the automatic rollback.

Under the install root (``/`` on a device, a temporary folder in tests)::

    opt/hall-kiosk/releases/<version>/venv     one virtualenv per release
    opt/hall-kiosk/releases/<version>/.complete written last: only complete releases are switched to
    opt/hall-kiosk/current  -> releases/<v>    what the unit runs (ExecStart=.../current/venv/bin/kiosk)
    opt/hall-kiosk/previous -> releases/<v>    the release to fall back to
    opt/hall-kiosk/update.json                 the last update: trial | confirmed | rolled_back

A link is switched by making a new link beside it and renaming it over the old
one: rename(2) is atomic, so a power cut leaves the old target or the new one.

After a switch the new release is on **trial**. It confirms its health by
writing ``release-health.json`` into the storage folder (the app does, once the
first frame is drawn and the start-up self-check passed; kiosk/app.py). The
check (`kiosk update --check`, run as root before every start of the unit, from
the *previous* release) then either confirms it, or switches back when the new
release said it failed, when its boot guard tripped, or when it did not confirm
within the trial time. update.json says what happened; the heartbeat carries it.

Ledger migrations and rollback, the rule: a rollback never touches the ledger.
A release that finds a ledger with a newer schema than it knows refuses it
clearly (kiosk/core/ledger.py: "schema N, newer than this software") and the
device shows "storage unusable" with that line; the newer release's data stays
as it was, for the fixed newer release to pick up. So a release whose
migration must survive a rollback ships that migration in an earlier release.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.core import keys
from kiosk.release.bundle import LOCK, MANIFEST, SIGNATURE, WHEELS, BundleError, Manifest, unpack, verify

BASE = "opt/hall-kiosk"
UPDATE_FILE = "update.json"
HEALTH_FILE = keys.RELEASE_HEALTH_FILE  # in the storage folder: the app may write there, not under /opt
COMPLETE = ".complete"
TRIAL_S = 600  # a new release must confirm its health within this long after the switch


def release_root() -> Path:
    """The install root the running app reads update.json under (tests set their own)."""
    return Path(os.environ.get("KIOSK_RELEASE_ROOT") or "/")


class UpdateError(Exception):
    """An update that could not be done; the message names the file and what to do."""


@dataclass
class Layout:
    root: Path

    @property
    def base(self) -> Path:
        return self.root / BASE

    @property
    def releases(self) -> Path:
        return self.base / "releases"

    @property
    def current(self) -> Path:
        return self.base / "current"

    @property
    def previous(self) -> Path:
        return self.base / "previous"

    @property
    def update_file(self) -> Path:
        return self.base / UPDATE_FILE

    def release(self, version: str) -> Path:
        return self.releases / version

    def version_of(self, link: Path) -> str | None:
        try:
            return Path(os.readlink(link)).name
        except OSError:
            return None

    def target(self, link: Path) -> Path | None:
        """The release folder a link points at, if it is one that can run: a complete
        bundle release, or the checkout install of systemd/install.sh (/opt/kiosk)."""
        if not link.is_symlink():
            return None
        path = Path(os.path.realpath(link))
        return path if (path / COMPLETE).exists() or (path / "venv/bin/kiosk").exists() else None

    def installed(self) -> list[str]:
        if not self.releases.is_dir():
            return []
        return sorted(p.name for p in self.releases.iterdir() if (p / COMPLETE).exists())


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def switch_link(link: Path, target: Path) -> None:
    """Point link at target atomically (a relative link, so the root can move)."""
    tmp = link.with_name(f".{link.name}.new")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    os.symlink(os.path.relpath(target, link.parent), tmp)
    os.replace(tmp, link)
    fd = os.open(link.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself reaches the card
    finally:
        os.close(fd)


# -- installing ---------------------------------------------------------------------
def _pip(venv_python: Path, bundle: Path) -> list[str]:
    """pip for the new venv: the bundle's own pip wheel when it has one (a bare
    device's python3 may have no pip), else the pip of the running Python."""
    pips = sorted((bundle / WHEELS).glob("pip-*.whl"))
    if pips:
        return [str(venv_python), str(pips[-1] / "pip")]
    return [sys.executable, "-m", "pip", "--python", str(venv_python)]


def _run(cmd: list[str], what: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # a machine's pip.conf must not add an index or constraints
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
        raise UpdateError(f"{what} failed ({proc.returncode}):\n  " + "\n  ".join(tail))


def install_release(bundle: Path, manifest: Manifest, layout: Layout, *, system_site_packages: bool) -> Path:
    """Install a checked bundle into releases/<version> with no network: pip gets
    --no-index, so a wheel missing from the bundle fails here, not on the device later."""
    dest = layout.release(manifest.version)
    if (dest / COMPLETE).exists():
        return dest
    if dest.exists():  # an earlier try stopped half-way
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    try:
        venv = dest / "venv"
        # From a release venv, `python -m venv` bases the new one on the system Python.
        cmd = [sys.executable, "-m", "venv", "--without-pip"]
        if system_site_packages:  # gpiozero and lgpio from Pi OS (PLATFORM notes)
            cmd.append("--system-site-packages")
        _run([*cmd, str(venv)], "making the release's virtualenv")
        py = venv / "bin" / "python"
        common = ["install", "--no-index", "--no-cache-dir", "--disable-pip-version-check", "-q"]
        wheels = str(bundle / WHEELS)
        locked = ["--find-links", wheels, "--require-hashes", "--only-binary=:all:", "-r", str(bundle / LOCK)]
        _run(
            [*_pip(py, bundle), *common, *locked],
            f"installing the locked dependencies from {bundle / LOCK}",
        )
        # The product wheel's hash was checked against the signed manifest; its
        # dependencies are the locked ones above, so no resolver runs here.
        _run(
            [*_pip(py, bundle), *common, "--no-deps", str(bundle / manifest.product_wheel())],
            "installing the product wheel",
        )
        shutil.copy2(bundle / MANIFEST, dest / MANIFEST)
        (dest / COMPLETE).write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z") + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


def apply_update(
    source: Path,
    root: Path,
    trust: Path,
    *,
    system_site_packages: bool = False,
    trial_s: float = TRIAL_S,
    clock: Callable[[], float] = time.time,
    expect_signature: str | None = None,
) -> dict[str, Any]:
    """Check the bundle, install it beside the others and switch current to it (on trial).
    expect_signature: the one the central offered; a bundle with another is refused."""
    layout = Layout(root)
    layout.releases.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".incoming-", dir=layout.base))
    try:
        bundle = unpack(source, scratch)
        manifest = verify(bundle, trust)  # BundleError: nothing was written outside scratch
        if expect_signature is not None and (bundle / SIGNATURE).read_text().strip() != expect_signature.strip():
            raise BundleError(f"{source}: not the bundle the central offered (another signature); nothing installed")
        running = layout.version_of(layout.current)
        running_dir = layout.target(layout.current)
        if running == manifest.version:
            raise UpdateError(f"release {manifest.version} is already the current one; nothing to do")
        dest = install_release(bundle, manifest, layout, system_site_packages=system_site_packages)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if running_dir is not None:
        switch_link(layout.previous, running_dir)
    else:
        running = None  # nothing that runs to go back to: this install is the first
    switch_link(layout.current, dest)
    state = {
        "state": "trial" if running is not None else "confirmed",
        "version": manifest.version,
        "previous": running,
        "switched_at": clock(),
        "trial_s": trial_s,
        "ledger_schema": manifest.ledger_schema,
    }
    _write_json(layout.update_file, state)
    return state


# -- the health of a release on trial -------------------------------------------------
def write_health(storage_dir: Path, version: str, ok: bool, reason: str = "", clock: Callable[[], float] = time.time):
    """The app's word on its own health (first frame drawn, self-check verdict)."""
    _write_json(Path(storage_dir) / HEALTH_FILE, {"version": version, "ok": ok, "reason": reason, "at": clock()})


def read_update(root: Path) -> dict[str, Any] | None:
    return _read_json(Layout(root).update_file)


def on_trial(root: Path, version: str) -> dict[str, Any] | None:
    """update.json when this version is the one on trial, else None."""
    state = read_update(root)
    if state and state.get("state") == "trial" and state.get("version") == version:
        return state
    return None


def check(root: Path, storage_dir: Path, *, clock: Callable[[], float] = time.time) -> dict[str, Any] | None:
    """Confirm the release on trial, or switch back to the previous one. Returns update.json's new state."""
    from kiosk.core.bootguard import BootGuard

    layout = Layout(root)
    state = read_update(root)
    if not state or state.get("state") != "trial":
        return state
    version, previous = str(state["version"]), state.get("previous")
    health = _read_json(Path(storage_dir) / HEALTH_FILE) or {}
    guard = BootGuard(storage_dir).state()
    reason = None
    if health.get("version") == version and health.get("ok") is True:
        state.update(state="confirmed", confirmed_at=clock())
    elif health.get("version") == version and health.get("ok") is False:
        reason = f"release {version} reported itself unhealthy: {health.get('reason') or 'no reason given'}"
    elif guard["recent_unhealthy_starts"] >= guard["max_crashed"]:
        reason = f"release {version} crashed {guard['recent_unhealthy_starts']} starts in a row (boot guard)"
    elif clock() - float(state.get("switched_at", 0)) > float(state.get("trial_s", TRIAL_S)):
        reason = f"release {version} did not confirm its health within {int(state.get('trial_s', TRIAL_S))} s"
    if reason is not None:
        back = layout.target(layout.previous)
        if not previous or back is None:
            state.update(state="failed", reason=reason + f"; no previous release to go back to ({previous})")
        else:
            switch_link(layout.current, back)
            state.update(state="rolled_back", reason=reason, rolled_back_to=previous, rolled_back_at=clock())
            # The failed start's crash count belongs to the failed release.
            BootGuard(storage_dir).reset()
    _write_json(layout.update_file, state)
    return state


def rollback(root: Path, reason: str, *, clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """A technician's rollback: current back to previous, whatever the trial says."""
    layout = Layout(root)
    running, previous = layout.version_of(layout.current), layout.version_of(layout.previous)
    back, here = layout.target(layout.previous), layout.target(layout.current)
    if back is None or previous == running:
        raise UpdateError(f"{layout.previous}: no previous release to go back to (current is {running})")
    switch_link(layout.current, back)
    if here is not None:
        switch_link(layout.previous, here)
    state: dict[str, Any] = {"state": "rolled_back", "version": running, "rolled_back_to": previous}
    state.update(reason=reason, rolled_back_at=clock())
    _write_json(layout.update_file, state)
    return state


def heartbeat_part(root: Path) -> dict[str, Any]:
    """What the heartbeat says of releases: the running one, the last update and how it ended."""
    layout = Layout(root)
    out: dict[str, Any] = {"current": layout.version_of(layout.current)}
    state = read_update(root)
    if state:
        keep = ("state", "version", "previous", "rolled_back_to", "reason")
        out["update"] = {k: state[k] for k in keep if state.get(k) is not None}
    return out


def confirm_health(
    storage_dir: Path,
    version: str,
    selftest: dict[str, Any] | None,
    root: Path,
    *,
    clock: Callable[[], float] = time.time,
) -> bool:
    """The app's verdict after its first frame and self-check. Returns True when this
    release is on trial and failed: the app then exits for a restart, and the check
    before that start switches back (kiosk/app.py)."""
    if selftest is None:
        ok, reason = False, "the start-up self-check did not finish"
    else:
        ok = bool(selftest.get("ok"))
        failed = [
            r.get("name", "?") for r in selftest.get("rows", []) if r.get("verdict") == "fail" and r.get("required")
        ]
        reason = "" if ok else "self-check failed: " + ", ".join(failed or ["?"])
    write_health(storage_dir, version, ok, reason, clock)
    return not ok and on_trial(root, version) is not None


__all__ = ["BundleError", "Layout", "UpdateError", "apply_update", "check", "rollback", "write_health"]

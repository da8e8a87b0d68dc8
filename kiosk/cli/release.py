"""`kiosk bundle …` (build and sign an offline release) and `kiosk update …`
(install one side by side, confirm it or roll it back)."""

from __future__ import annotations

import sys
from pathlib import Path

from kiosk import __version__


def register(sub) -> None:
    p = sub.add_parser("bundle", help="build, sign and check offline release bundles")
    bsub = p.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)
    k = bsub.add_parser("keygen", help="make an ed25519 release signing key (KEY, mode 0600) and KEY.pub")
    k.add_argument("--out", required=True)
    k.set_defaults(func=cmd_keygen)
    b = bsub.add_parser("build", help="sign a bundle from a folder of wheels and the lock file")
    b.add_argument("--wheels", required=True, help="the product wheel and every dependency for the target")
    b.add_argument("--lock", required=True, help="requirements.lock (pinned, with hashes)")
    b.add_argument("--key", required=True, help="the ed25519 signing key (PEM)")
    b.add_argument("--out", required=True, help="folder for hall-kiosk-<version>-<arch>/ and its .tar")
    b.add_argument("--version", default=__version__)
    b.add_argument("--arch", required=True, help="aarch64 or x86_64")
    b.add_argument("--python", default="3.11")
    b.set_defaults(func=cmd_build)
    v = bsub.add_parser("verify", help="check a bundle's signature and hashes, install nothing")
    v.add_argument("bundle")
    v.add_argument("--trust", required=True, help="a release key .pub, or a folder of them")
    v.set_defaults(func=cmd_verify)

    u = sub.add_parser("update", help="install a release bundle side by side; confirm or roll back")
    what = u.add_mutually_exclusive_group(required=True)
    what.add_argument("--from", dest="source", help="a bundle .tar (USB stick) or its folder")
    what.add_argument("--central", action="store_true", help="fetch the release the central offers this device")
    what.add_argument("--check", action="store_true", help="confirm the release on trial, or switch back")
    what.add_argument("--rollback", action="store_true", help="switch back to the previous release now")
    what.add_argument("--list", action="store_true", help="the installed releases and the last update")
    u.add_argument("--root", default="/", help="install root (default /; tests use a temporary one)")
    u.add_argument(
        "--restart-unit",
        metavar="UNIT",
        help="with --central: when a release was installed, `systemctl try-restart UNIT` to run it on trial",
    )
    u.add_argument("--trust", help="release key(s) (default: <root>/etc/kiosk/release-keys)")
    u.add_argument("--config", help="the device config (--check reads its storage folder; --central its token)")
    u.add_argument("--system-site-packages", action="store_true", help="let the release venv see Pi OS's gpiozero")
    u.add_argument("--trial", type=float, default=None, help="seconds the new release has to confirm its health")
    u.set_defaults(func=cmd_update)


def _fail(msg: str) -> int:
    print(f"kiosk: {msg}", file=sys.stderr)
    return 2


def cmd_keygen(args) -> int:
    from kiosk.release.bundle import BundleError, generate_key

    try:
        pub = generate_key(Path(args.out))
    except (BundleError, OSError) as e:
        return _fail(f"bundle keygen: {e}")
    print(f"signing key {args.out} (keep it off the devices); public key {pub} (copy to /etc/kiosk/release-keys/)")
    return 0


def cmd_build(args) -> int:
    from kiosk.core.ledger import MIGRATIONS
    from kiosk.release.bundle import BundleError, build_bundle

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        tar = build_bundle(
            wheels=Path(args.wheels),
            lock=Path(args.lock),
            key=Path(args.key),
            out_dir=out,
            version=args.version,
            arch=args.arch,
            python=args.python,
            ledger_schema=len(MIGRATIONS),
        )
    except (BundleError, OSError) as e:
        return _fail(f"bundle build: {e}")
    print(f"{tar} ({tar.stat().st_size / 1e6:.1f} MB), signed")
    return 0


def cmd_verify(args) -> int:
    import tempfile

    from kiosk.release.bundle import BundleError, unpack, verify

    with tempfile.TemporaryDirectory() as scratch:
        try:
            m = verify(unpack(Path(args.bundle), Path(scratch)), Path(args.trust))
        except BundleError as e:
            return _fail(f"bundle refused: {e}")
    print(f"{args.bundle}: signature and {len(m.files)} file hashes ok; {m.name}, ledger schema {m.ledger_schema}")
    return 0


def _storage_dir(args) -> Path | None:
    from kiosk.core.config import ConfigError, load_config, resolve_path

    try:
        return Path(load_config(resolve_path(args.config)).storage.dir)
    except ConfigError as e:
        print(f"kiosk update: {e}", file=sys.stderr)
        return None


def cmd_update(args) -> int:
    from kiosk.release import releases
    from kiosk.release.bundle import DEFAULT_TRUST, BundleError

    root = Path(args.root)
    trust = Path(args.trust) if args.trust else root / DEFAULT_TRUST
    trial = args.trial if args.trial is not None else releases.TRIAL_S
    try:
        if args.list:
            layout = releases.Layout(root)
            cur, prev = layout.version_of(layout.current), layout.version_of(layout.previous)
            for v in layout.installed():
                print(f"{v}{'  current' if v == cur else ''}{'  previous' if v == prev else ''}")
            print(f"last update: {releases.read_update(root) or 'none'}")
            return 0
        if args.source:
            state = releases.apply_update(
                Path(args.source), root, trust, system_site_packages=args.system_site_packages, trial_s=trial
            )
            print(_said(state))
            return 0
        if args.central:
            from kiosk.release.offer import update_from_central

            offered = update_from_central(args.config, root, trust, trial_s=trial)
            print(_said(offered) if offered else "the central offers no newer release for this device")
            if offered and args.restart_unit:
                return _restart(args.restart_unit)
            return 0
        if args.rollback:
            print(_said(releases.rollback(root, "a technician asked for it (kiosk update --rollback)")))
            return 0
        storage = _storage_dir(args)
        if storage is None:
            return 2
        checked = releases.check(root, storage)
        print(_said(checked) if checked else "no update on record")
        return 1 if checked and checked.get("state") in ("rolled_back", "failed") else 0
    except (BundleError, releases.UpdateError) as e:
        return _fail(f"update refused: {e}")
    except OSError as e:
        return _fail(f"update failed: {e.filename or ''}: {e.strerror or e} (nothing switched)")


def _restart(unit: str) -> int:
    """The kiosk runs the new release only once restarted (the timer's service does this)."""
    import subprocess

    try:
        done = subprocess.run(["systemctl", "try-restart", unit], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return _fail(f"installed, but cannot restart {unit}: {e} (restart it to run the new release)")
    if done.returncode != 0:
        return _fail(f"installed, but `systemctl try-restart {unit}` failed: {done.stderr.strip()[:300]}")
    print(f"restarted {unit}: the new release runs on trial")
    return 0


def _said(state: dict) -> str:
    s = state.get("state")
    v = state.get("version")
    if s == "trial":
        return (
            f"release {v} installed and current, on trial: it must confirm its health within "
            f"{int(state['trial_s'])} s or the device goes back to {state.get('previous')}"
        )
    if s == "confirmed":
        return f"release {v} is current and confirmed"
    if s == "rolled_back":
        return f"rolled back from {v} to {state.get('rolled_back_to')}: {state.get('reason')}"
    return f"release {v}: {s}: {state.get('reason', '')}"

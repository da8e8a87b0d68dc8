"""The `kiosk` command: one entry point for the device, the technician and the bench."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from kiosk.core.config import Config, ConfigError, load_config, resolve_path

# Modules that add their own subcommands with register(subparsers); one that
# is missing or broken must not take the others (check-config above all) down.
PLUGINS = (
    "kiosk.cli.central",
    "kiosk.cli.dispenser",
    "kiosk.cli.lookup",
    "kiosk.cli.pad",
    "kiosk.cli.provision",
    "kiosk.cli.release",
    "kiosk.cli.technician",
    "kiosk.cli.voice",
)


def _load(args) -> Config:
    return load_config(resolve_path(getattr(args, "config", None)))


def cmd_check_config(args) -> int:
    cfg = load_config(args.file)
    for w in cfg.warnings:
        print("warning: " + w.line(args.file))
    d = cfg.device
    print(f"{args.file}: ok")
    print(f"  device {d.id} in {d.hall}; roles: {', '.join(d.roles)}")
    print(f"  central {cfg.central.url}; storage {cfg.storage.dir}; language {cfg.display.language}")
    if "dispenser" in d.roles:
        p = cfg.printer
        where = p.port if p.backend == "serial" else (p.path if p.backend == "file" else "simulated")
        print(f"  printer {p.backend} {where} ({p.profile}); categories in config: {len(cfg.dispenser.categories)}")
    if "lookup" in d.roles:
        print(f"  scanner {cfg.scanner.backend} {cfg.scanner.port}")
    if "pad" in d.roles:
        print(f"  pad at window {cfg.pad.window}; rating time {cfg.pad.rating_seconds} s")
    if "dispenser" in d.roles:
        return _check_numbering(cfg, args.file, getattr(args, "central_config", None))
    return 0


def _check_numbering(cfg: Config, file: str, central_file: str | None) -> int:
    """The offline range against the central's numbering: a central config file
    the technician exported, else the copy this device cached (read only)."""
    import json

    from kiosk.core import keys
    from kiosk.roles.dispenser.numbering import offline_range_problem

    central, where = None, ""
    if central_file:
        try:
            central, where = json.loads(Path(central_file).read_text(encoding="utf-8-sig")), central_file
        except (OSError, ValueError) as e:
            print(f"{central_file}: cannot read the central config ({type(e).__name__}: {e})", file=sys.stderr)
            return 2
        if isinstance(central, dict) and isinstance(central.get("config"), dict):
            central = central["config"]  # the whole answer of GET /config, as saved
    else:
        cached = Path(cfg.storage.dir) / keys.CACHE_FILE
        if cached.is_file():
            from kiosk.core.cache import Cache

            try:
                cache = Cache(cached)
                try:
                    central, where = cache.get(keys.CENTRAL_CONFIG), f"the cached central config in {cached}"
                finally:
                    cache.close()
            except Exception as e:  # a damaged cache: nothing to compare with
                print(f"warning: {cached}: cannot read the cached central config ({type(e).__name__})")
    if not isinstance(central, dict):
        print(
            "  numbering: not compared with the central's ranges "
            "(pass --central-config FILE, the central's config as JSON, to check it)"
        )
        return 0
    problem = offline_range_problem(cfg.dispenser.offline_range, central, where)
    first, last = cfg.dispenser.offline_range
    if problem:
        print(f"{file}: {problem}", file=sys.stderr)
        return 1
    print(f"  numbering: offline range {first}..{last} is outside {where}'s numbers")
    return 0


def cmd_run(args) -> int:
    from kiosk.app import run, run_unusable

    path = resolve_path(getattr(args, "config", None))
    try:
        cfg = load_config(path)
    except ConfigError as e:
        # Exiting would be a black panel and a silent restart loop under systemd:
        # show the out-of-service screen with the file and key instead.
        lines = [p.line(e.file) for p in e.problems if not p.warning]
        for line in lines:
            print(line, file=sys.stderr)

        def fixed() -> bool:
            try:
                load_config(path)
            except ConfigError:
                return False
            return True

        return run_unusable("device config", lines, fixed=fixed, source=str(path))
    return run(cfg)


def cmd_demo(args) -> int:
    from kiosk.cli.demo import run_demo

    return run_demo(data_dir=args.data, port=args.port, browser=not args.no_browser)


def cmd_screenshot(args) -> int:
    from kiosk.app import screenshot

    return screenshot(_load(args), args.screen, args.out, args.lang, large=args.large)


def cmd_hash_pin(args) -> int:
    from kiosk.core.pin import hash_pin, read_new_pin

    pin = args.pin if args.pin is not None else read_new_pin()
    try:
        line = f'pin_hash = "{hash_pin(pin)}"'
    except ValueError as e:
        print(f"kiosk hash-pin: {e}", file=sys.stderr)
        return 2
    print("# paste into the [technician] section of the device config:", file=sys.stderr)
    print(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk", description="Government service hall kiosk firmware")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check-config", help="validate a provisioning file")
    p.add_argument("file")
    p.add_argument(
        "--central-config",
        metavar="FILE",
        help="the central's config (JSON, as GET /config answers): the offline range must not overlap its numbers",
    )
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("run", help="start the kiosk from a config file")
    p.add_argument("--config", help="default: $KIOSK_CONFIG, else /etc/kiosk/kiosk.toml")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="the kiosk with a bench central and simulated devices, no setup")
    p.add_argument("--data", help="where the demo keeps its data (default: per-user data dir)")
    p.add_argument("--port", type=int, default=0, help="bench central port (default: any free one)")
    p.add_argument("--no-browser", action="store_true", help="do not open the bench pages in a web browser")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("screenshot", help="render a screen to PNG without a display")
    p.add_argument("--config")
    p.add_argument("--screen", required=True, help="home, dispenser, lookup, pad, ...")
    p.add_argument("--out", required=True)
    p.add_argument("--lang", choices=("zh", "en"))
    p.add_argument("--large", action="store_true", help="large-text mode")
    p.set_defaults(func=cmd_screenshot)

    p = sub.add_parser("hash-pin", help="make technician.pin_hash from a PIN")
    p.add_argument("--pin", help="the PIN (default: asked on the terminal)")
    p.set_defaults(func=cmd_hash_pin)

    for name in PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name and not name.startswith((e.name or "\0") + "."):
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from kiosk.core.logs import setup as setup_logging  # structured, scrubbed lines for the journal

    setup_logging(verbose=args.verbose)
    try:
        return args.func(args)
    except ConfigError as e:
        for p in e.problems:
            print(p.line(e.file), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

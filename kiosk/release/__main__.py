"""`python3 -m kiosk.release update …`: the bundle's install.sh, run by a bare
device's python3 with only the product wheel on sys.path (no Kivy, no requests):
so only the release commands, none of the other plugins' imports."""

from __future__ import annotations

import argparse
import sys

from kiosk.cli import release


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="install.sh", description="install a hall-kiosk release bundle")
    release.register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())

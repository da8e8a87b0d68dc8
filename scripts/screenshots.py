#!/usr/bin/env python3
"""Render every screen state in zh/en x normal/large text to docs/screenshots/, with an index.

Each shot is a separate `kiosk …-screenshot` run (a fresh app, as a technician
would make it): the all-roles demo kiosk at its 1280x800 panel
(config/demo.toml) and the counter pad on the official 7" panel
(config/pad.toml, 800x480 at 133 dpi). Run from the repo root:

    .venv/bin/python scripts/screenshots.py [--jobs 2] [--only lookup]

The index (docs/screenshots/README.md) lists every file by screen and state.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kiosk.roles.dispenser.samples import DISPENSER_STATES  # noqa: E402
from kiosk.roles.lookup.samples import LOOKUP_STATES  # noqa: E402
from kiosk.roles.pad.samples import PAD_STATES  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
KIOSK = ROOT / "config" / "demo.toml"
PAD = ROOT / "config" / "pad.toml"
COMBOS = [("zh", False), ("zh", True), ("en", False), ("en", True)]


def plan() -> list[tuple[str, str, str, Path, list[str]]]:
    """(group, screen, state, config, command) for every shot but the language and size."""
    shots = [("kiosk", "home", "", KIOSK, ["screenshot", "--screen", "home"])]
    shots += [("kiosk", "dispenser", s, KIOSK, ["dispenser-screenshot", "--state", s]) for s in DISPENSER_STATES]
    shots += [("kiosk", "lookup", s, KIOSK, ["lookup-screenshot", "--state", s]) for s in LOOKUP_STATES]
    shots += [("kiosk", "pad", s, KIOSK, ["pad-screenshot", "--state", s]) for s in PAD_STATES]
    shots += [("kiosk", "service", "", KIOSK, ["screenshot", "--screen", "service"])]
    shots += [("pad7", "pad", s, PAD, ["pad-screenshot", "--state", s]) for s in PAD_STATES]
    return shots


def name(group: str, screen: str, state: str, lang: str, large: bool) -> str:
    return "-".join(p for p in (group, screen, state, lang, "large" if large else "normal") if p) + ".png"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", help="only shots whose file name contains this")
    args = ap.parse_args()
    kiosk = str(Path(sys.executable).with_name("kiosk"))
    runs = []
    for group, screen, state, cfg, cmd in plan():
        for lang, large in COMBOS:
            file = OUT / name(group, screen, state, lang, large)
            if args.only and args.only not in file.name:
                continue
            argv = [kiosk, *cmd, "--config", str(cfg), "--lang", lang, "--out", str(file)]
            runs.append((file, argv + (["--large"] if large else [])))
    OUT.mkdir(parents=True, exist_ok=True)

    def one(run):
        file, argv = run
        done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
        return file, done.returncode, done.stderr

    failed = 0
    with ThreadPoolExecutor(args.jobs) as pool:
        for file, rc, err in pool.map(one, runs):
            if rc != 0 or not file.exists():
                failed += 1
                tail = [ln for ln in err.splitlines() if "error" in ln.lower() or "kiosk:" in ln][-3:]
                print(f"FAILED {file.name} (exit {rc}): {' | '.join(tail)}", file=sys.stderr)
            else:
                print(file.relative_to(ROOT))
    write_index()
    return 1 if failed else 0


def write_index() -> None:
    lines = [
        "# Screenshots",
        "",
        "Every screen state in Chinese and English, normal and large text, made by",
        "`scripts/screenshots.py` (each with the `kiosk …-screenshot` command a technician runs).",
        "`kiosk-…`: the all-roles demo kiosk at its 1280×800 panel (config/demo.toml);",
        '`pad7-…`: the counter pad on the official 7" panel, 800×480 at 133 dpi (config/pad.toml).',
        "Each one was looked at; the 适老化 walk (tests/screens/test_elderly.py) measures the same states.",
        "",
        "| device | screen | state | zh normal | zh large | en normal | en large |",
        "|---|---|---|---|---|---|---|",
    ]
    for group, screen, state, _cfg, _cmd in plan():
        cells = []
        for lang, large in COMBOS:
            n = name(group, screen, state, lang, large)
            cells.append(f"[png]({n})" if (OUT / n).exists() else "—")
        lines.append(f"| {group} | {screen} | {state or '—'} | " + " | ".join(cells) + " |")
    (OUT / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())

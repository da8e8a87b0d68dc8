"""The checks CI holds the tree to, run by the one test command (see CONTRIBUTING.md).

Each runs the tool from this venv on the whole tree, the way a developer does;
a failure prints the tool's own report.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

BIN = Path(sys.executable).parent


def _run(tool: str, *args: str) -> None:
    exe = BIN / tool
    if not exe.exists():
        exe = Path(shutil.which(tool) or tool)
    proc = subprocess.run([str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"{tool} {' '.join(args)} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}", pytrace=False)


def test_layering_contracts_hold():
    """core imports no role, device, screen or Kivy; roles no device; devices only kiosk's ports …"""
    _run("lint-imports")


def test_lint_is_clean():
    _run("ruff", "check", ".")


def test_formatting_is_ruffs():
    _run("ruff", "format", "--check", ".")


def test_types_check():
    _run("mypy")

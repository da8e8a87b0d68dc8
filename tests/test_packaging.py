"""The wheel holds everything the installed product needs (demo config, kv files,
strings): built from a copy of the checkout, installed into a fresh venv outside
it, and run from a folder where the checkout cannot be imported.

The fresh venv gets the dependencies (Kivy, requests ...) from this venv's
site-packages through a .pth file, not from the network and not the checkout:
that directory holds the dependencies only (the editable install's own .pth
is not processed from there).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT, refused_url

SKIP = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", "out"
)


def run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, **kw)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python, kiosk, env) of a fresh venv with only the wheel installed."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=SKIP, symlinks=True)  # the build writes build/ and egg-info here
    wheels = tmp / "wheels"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(wheels),
            str(src),
        ],
        cwd=tmp,
    )
    [wheel] = wheels.glob("hall_kiosk-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        # The checkout links kiosk/data/demo.toml to config/demo.toml; the wheel holds the content.
        assert zf.read("kiosk/data/demo.toml") == (ROOT / "config" / "demo.toml").read_bytes()
    assert {f"screens/{p.name}" for p in (ROOT / "screens").glob("*.kv")} <= set(names)

    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    site = Path(run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "zz-deps-from-test-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "KIOSK_CONFIG")}
    env.update(
        SDL_VIDEODRIVER="offscreen",
        KIVY_NO_ARGS="1",
        KIVY_NO_FILELOG="1",
        KIVY_HOME=str(tmp / "kivy-home"),
        HOME=str(tmp / "home"),
        XDG_DATA_HOME=str(tmp / "xdg"),
    )
    work = tmp / "work"
    work.mkdir()
    return py, venv / "bin" / "kiosk", env, work


def test_the_installed_product_comes_from_the_wheel_not_the_checkout(installed):
    py, _, env, work = installed
    out = run(
        [
            str(py),
            "-c",
            "import kiosk, screens, devices, kiosk.cli.demo as d; "
            "print(kiosk.__file__); print(screens.__file__); print(devices.__file__); "
            "print(d.DEMO_CONFIG)",
        ],
        cwd=work,
        env=env,
    ).stdout.split()
    for path in out:
        resolved = Path(path).resolve()
        assert ROOT.resolve() not in resolved.parents, f"{path} is in the checkout"
        assert (Path(str(py)).parent.parent).resolve() in resolved.parents, f"{path} is not in the fresh venv"


def test_demo_config_from_the_wheel_loads_and_checks(installed):
    py, kiosk, env, work = installed
    # What `kiosk demo` does before its window opens: its config from the package.
    script = (
        "import sys; from pathlib import Path; from kiosk.cli.demo import prepare_demo; "
        "from kiosk.core.config import load_config; "
        "p = prepare_demo(Path(sys.argv[1]), sys.argv[2], 'demo-token-for-tests'); "
        "cfg = load_config(p); print(p); print(','.join(cfg.device.roles))"
    )
    out = run([str(py), "-c", script, str(work / "demo"), refused_url()], cwd=work, env=env).stdout.split()
    assert out[1] == "dispenser,lookup,pad"
    run([str(kiosk), "check-config", out[0]], cwd=work, env=env)


def test_screenshot_from_the_wheel(installed):
    py, kiosk, env, work = installed
    script = (
        "import sys; from pathlib import Path; from kiosk.cli.demo import prepare_demo; "
        "print(prepare_demo(Path(sys.argv[1]), sys.argv[2], 'demo-token-for-tests'))"
    )
    config = run([str(py), "-c", script, str(work / "shot"), refused_url()], cwd=work, env=env).stdout.strip()
    run([str(kiosk), "screenshot", "--config", config, "--screen", "home", "--out", "x.png"], cwd=work, env=env)
    png = work / "x.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(png) as img:
        assert img.size[0] >= 640 and img.size[1] >= 400
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 50, "the screenshot is (nearly) one colour"

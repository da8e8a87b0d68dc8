"""`kiosk demo`: the whole product on one machine, no hardware, no config.

Starts the bench central on loopback, provisions a device token for the
demo device, writes a config into a per-user data folder and runs the app
with every role, simulated printer and scanner and gpiozero mock pins.
"""

from __future__ import annotations

import logging
import os
import sys
import tomllib
from importlib import resources
from pathlib import Path

from tomli_w import dumps  # the standard library reads TOML but does not write it

from kiosk.core import keys
from kiosk.core.config import load_config

log = logging.getLogger("kiosk.demo")

# Inside the package, so that `kiosk demo` works from an installed wheel. In the
# checkout it is a link to config/demo.toml (one file, and relative paths in it
# stay relative to config/); the wheel holds a copy of the content.
DEMO_CONFIG = resources.files("kiosk") / "data" / "demo.toml"
# The bench pages' password of this run, for scripts (mode 0600, next to the token).
BENCH_PASSWORD_FILE = "bench-password"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "hall-kiosk" / "demo"


from kiosk.core.pin import DEMO_PIN  # noqa: E402  (the demo says its PIN; devices have their own)


def prepare_demo(data_dir: Path, central_url: str | None, token: str | None, appointments: bool = False) -> Path:
    """Write the demo device's config (and token) under data_dir; returns the config path.

    appointments: the dispenser offers 预约签到 too (it needs the demo's bench central)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    if appointments:
        data.setdefault("dispenser", {})["entries"] = ["appointment", "service"]
    token_file = data_dir / keys.DEMO_TOKEN_FILE
    if token is not None:
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token)
        os.chmod(token_file, 0o600)
    if central_url:
        data["central"]["url"] = central_url
    data["central"]["token_file"] = str(token_file)
    data["storage"]["dir"] = str(data_dir / keys.DEMO_DEVICE_DIR)
    path = data_dir / keys.DEMO_CONFIG_FILE
    path.write_text("# written by `kiosk demo` from config/demo.toml\n" + dumps(data), encoding="utf-8")
    _voice_pack(Path(data["storage"]["dir"]) / "voice")
    return path


def _voice_pack(folder: Path) -> None:
    """The demo speaks like a device: make the default pack once, if espeak-ng is there."""
    from kiosk.cli.voice import make_pack
    from kiosk.core.voice import MANIFEST

    if (folder / MANIFEST).exists():
        return
    try:
        make_pack(folder)
    except OSError as e:
        print(f"kiosk demo: no voice ({e})", file=sys.stderr)


def start_bench_central(data_dir: Path, port: int):
    try:
        from kiosk.central.server import BenchCentral
    except ModuleNotFoundError:
        return None
    central = BenchCentral(str(data_dir / keys.DEMO_CENTRAL_DIR), host="127.0.0.1", port=port)
    central.start()
    return central


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def open_bench_pages(central, browser: bool) -> None:
    """Open the bench pages signed in, where there is a desktop to open them on."""
    if not browser or not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return
    import webbrowser

    try:
        webbrowser.open(central.bench_login_url, new=2)
    except webbrowser.Error as e:  # the demo runs on without a browser
        log.warning("could not open a web browser (%s): open the bench page yourself", e)


def run_demo(data_dir: str | None = None, port: int = 0, browser: bool = True) -> int:
    from kiosk.app import run

    base = Path(data_dir) if data_dir else default_data_dir()
    central = start_bench_central(base, port)
    try:
        if central is not None:
            device = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
            # The demo device's token covers exactly what its config has it do.
            token = central.issue_token(
                device["device"]["id"], device["device"]["roles"], device.get("pad", {}).get("window")
            )
            path = prepare_demo(base, central.url, token, appointments=True)
            booking = demo_booking(central)
            _write_private(base / BENCH_PASSWORD_FILE, central.bench_password)
            print(
                f"kiosk demo: bench central at {central.url}/bench/ (password {central.bench_password}, "
                f"also in {base / BENCH_PASSWORD_FILE})  data in {base}; "
                f"service screen PIN {DEMO_PIN} (demo only); booking code {booking} for 预约签到",
                file=sys.stderr,
            )
            open_bench_pages(central, browser)
        else:
            path = prepare_demo(base, None, "no-central")
        return run(load_config(path), demo=True, runtime_hook=add_demo_scans)
    finally:
        if central is not None:
            central.stop()


def demo_booking(central) -> str:
    """A booking for now at the demo's bench central (its seeded ones are for the day it was made)."""
    try:
        return str(central.store.create_booking("A", central.store.now().strftime("%H:%M"))["code"])
    except ValueError:  # 23:59: no slot left today
        return "(none today)"


def add_demo_scans(rt) -> None:
    """The seeded cases, as their receipts' QR codes would read: the demo's scan buttons."""
    from kiosk.central.seed import DEMO_CASES

    p = rt.cfg.lookup
    rt.demo_scans = [
        f"https://zwfw.example.gov.cn/q?{p.receipt_param}={c['receipt_no']}&{p.code_param}={c['query_code']}"
        for c in DEMO_CASES
    ]

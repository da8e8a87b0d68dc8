"""Test set-up: real Kivy rendering with SDL's offscreen driver, no display.

These variables must be set before anything imports Kivy.
"""

import os
import tempfile

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.helpers import SERVICE_TIME, device_tokens, write_config  # noqa: E402


@pytest.fixture
def central(tmp_path):
    """A bench central on 127.0.0.1 with its own data folder (a test module may
    define its own `central` when it needs other settings, e.g. a short long-poll)."""
    from kiosk.central.server import BenchCentral

    c = BenchCentral(tmp_path / "central", max_code_attempts=5, lockout_s=600, long_poll_cap=10).start()
    c.issue_token = device_tokens(c)
    # The hall's service day is the tests' fixed day, as the devices' clocks are
    # (tests.helpers.SERVICE_TIME): a run across midnight does not start a new series.
    c.store.today = lambda: SERVICE_TIME.date().isoformat()
    c.store.now = lambda: SERVICE_TIME  # booking slots and quota spans read the same fixed time
    yield c
    c.stop()


@pytest.fixture
def demo_config(tmp_path):
    """The demo config with its storage in a temporary folder."""
    return write_config(tmp_path)

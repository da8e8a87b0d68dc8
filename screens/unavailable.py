"""Shown for a role whose screen is not built yet: plain words, no dead buttons."""
from __future__ import annotations

from pathlib import Path

from kivy.lang import Builder
from kivy.properties import StringProperty

from screens.widgets import KioskScreen


class UnavailableScreen(KioskScreen):
    role = StringProperty("")


Builder.load_file(str(Path(__file__).with_name("unavailable.kv")))

"""Which screen class plays each role (one name per role: the screen is named like the role).

Imported on demand, so a device that plays one role loads only that screen's
module and kv file."""

from __future__ import annotations

import importlib

# role -> "module:Class"
ROLE_SCREENS: dict[str, str] = {
    "dispenser": "screens.dispenser:DispenserScreen",
    "lookup": "screens.lookup:LookupScreen",
    "pad": "screens.pad:PadScreen",
}


def screen_class(role: str) -> type:
    module, cls = ROLE_SCREENS[role].split(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]

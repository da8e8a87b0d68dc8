"""Which screen class plays each role. Import is lazy so that a role whose
screen is not built yet shows the "not available" screen instead of
keeping the other roles from starting."""
from __future__ import annotations

import importlib

# role -> "module:Class"
ROLE_SCREENS: dict[str, str] = {
    "dispenser": "screens.dispenser:DispenserScreen",
    "lookup": "screens.lookup:LookupScreen",
    "pad": "screens.pad:PadScreen",
}


def screen_class(role: str):
    from screens.unavailable import UnavailableScreen
    target = ROLE_SCREENS.get(role)
    if not target:
        return UnavailableScreen
    module, cls = target.split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:  # not built yet; a missing dependency still fails loudly
            return UnavailableScreen
        raise
    return getattr(mod, cls)

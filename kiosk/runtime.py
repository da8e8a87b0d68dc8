"""The device's non-UI half: config, ledger, cache, central client, sync, services, devices.

Built once from a Config. The Kivy app (kiosk/app.py) and the command line
(selftest, status, print-test ...) both build one, so everything a command
checks is exactly what the app runs with. Nothing here imports Kivy.
"""
from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path

from .cache import Cache
from .config import Config
from .ledger import Ledger

log = logging.getLogger("kiosk.runtime")

# role -> "module:function(rt)" that builds the role's service and devices and
# sets them on the runtime (rt.tickets, rt.lookup, rt.rating ...).
ROLE_ATTACH: dict[str, str] = {
    "dispenser": "kiosk.tickets:attach",
    "lookup": "kiosk.lookup:attach",
    "pad": "kiosk.rating:attach",
}


class Runtime:
    def __init__(self, cfg: Config, *, demo: bool = False):
        self.cfg = cfg
        self.demo = demo
        self.started = time.monotonic()
        storage = Path(cfg.storage.dir)
        storage.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(storage / "ledger.sqlite3")
        self.cache = Cache(storage / "cache.sqlite3")
        self.client = None   # CentralClient, once a token is there
        self.sync = None     # SyncWorker
        self._closers = [self.cache.close, self.ledger.close]
        for role in self.roles:
            self._attach(role)

    def _attach(self, role: str) -> None:
        module, fn = ROLE_ATTACH[role].split(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:  # role not built yet: its screen says "not available"
                return
            raise
        getattr(mod, fn)(self)

    @property
    def roles(self) -> list[str]:
        return list(self.cfg.device.roles)

    def uptime_s(self) -> float:
        return time.monotonic() - self.started

    def on_close(self, fn) -> None:
        """Register a cleanup to run at close, newest first (like a stack)."""
        self._closers.insert(0, fn)

    def start(self) -> None:
        """Start background workers; the UI is already usable without them."""
        if self.sync is not None:
            self.sync.start()

    def close(self) -> None:
        for fn in self._closers:
            try:
                fn()
            except Exception:  # closing must go on: one stuck device must not keep the ledger open
                log.exception("cleanup failed")
        self._closers = []

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

from kiosk import __version__
from kiosk.core.cache import Cache
from kiosk.core.config import Config, ConfigError
from kiosk.core.ledger import Ledger

log = logging.getLogger("kiosk.runtime")

# role -> "module:function(rt)" that builds the role's service and devices and
# sets them on the runtime (rt.tickets, rt.lookup, rt.rating ...).
ROLE_ATTACH: dict[str, str] = {
    "dispenser": "kiosk.roles.dispenser.service:attach",
    "lookup": "kiosk.roles.lookup.service:attach",
    "pad": "kiosk.roles.pad.service:attach",
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
        self.central_problem: str | None = None   # why there is no client, for technicians
        self.health_parts: dict[str, callable] = {}  # name -> fn() -> dict, merged into the heartbeat
        self.selftest_result = None   # set by kiosk.technician.selftest at start; sent with the heartbeat
        self.health_parts["selftest"] = lambda: self.selftest_result
        self._connect_central()
        for role in self.roles:
            self._attach(role)

    def _connect_central(self) -> None:
        """Client and sync worker; without a token the device still works offline."""
        try:
            from kiosk.sync.client import CentralClient
            from kiosk.sync.worker import SyncWorker
        except ModuleNotFoundError as e:
            if not (e.name or "").startswith("kiosk."):
                raise
            self.central_problem = "central client not installed"
            return
        try:
            self.client = CentralClient.from_config(self.cfg)
        except ConfigError as e:
            self.central_problem = "; ".join(p.what + " (" + p.fix + ")" for p in e.problems)
            log.warning("working offline: %s", self.central_problem)
            return
        roles = self.roles
        self.sync = SyncWorker(self.ledger, self.client, self.cache, self.cfg.device.id,
                               health=self.health, interval=self.cfg.central.sync_interval,
                               window=self.cfg.pad.window if "pad" in roles else None,
                               pull_queue="dispenser" in roles, storage_dir=self.cfg.storage.dir)
        self.on_close(self.sync.stop)
        self.on_close(self.client.close)

    def health(self) -> dict:
        """Device health for the heartbeat; each role adds its part (printer, scanner ...)."""
        out = {"version": __version__, "device_id": self.cfg.device.id, "roles": self.roles,
               "uptime_s": round(self.uptime_s(), 1)}
        for name, fn in list(self.health_parts.items()):
            try:
                out[name] = fn()
            except Exception as e:  # a broken part must not stop the heartbeat
                out[name] = {"error": type(e).__name__}
        return out

    def event_written(self) -> None:
        """Services call this after committing an outbox event: deliver it now."""
        if self.sync is not None:
            self.sync.wake()

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

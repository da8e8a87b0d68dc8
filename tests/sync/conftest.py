"""The bench central on 127.0.0.1 and a device (ledger, cache, client) talking to it over real HTTP."""

from __future__ import annotations

import uuid

import pytest

from kiosk.core import keys
from kiosk.core.cache import Cache
from kiosk.core.ledger import Ledger
from kiosk.sync.client import CentralClient
from kiosk.sync.worker import SyncWorker


class Device:
    """One device's storage and client; `worker(...)` builds its sync worker."""

    def __init__(self, tmp_path, central, device_id="hall01-kiosk01", token=None, read_timeout=2.0):
        self.id = device_id
        self.central = central
        self.token = token or central.issue_token(device_id)
        self.ledger = Ledger(tmp_path / device_id / keys.LEDGER_FILE)
        self.cache = Cache(tmp_path / device_id / keys.CACHE_FILE)
        self.client = CentralClient(central.url, self.token, connect_timeout=0.5, read_timeout=read_timeout)

    def worker(self, **kw) -> SyncWorker:
        kw.setdefault("backoff_base", 0.05)
        kw.setdefault("backoff_cap", 0.5)
        kw.setdefault("min_retry_gap", 0.05)
        return SyncWorker(self.ledger, self.client, self.cache, self.id, **kw)

    def add_events(self, n, kind="rating.submitted", body=None) -> list[str]:
        ids = []
        for i in range(n):
            with self.ledger.transaction() as tx:
                ids.append(self.ledger.add_event(tx, kind, body or self.rating(level=5, n=i)))
        return ids

    def rating(self, **fields) -> dict:
        """A rating body the central takes: this pad's window (03, tests.helpers.TEST_DEVICES),
        a clerk-opened session of its own, one outcome per session."""
        return {"window": "03", "session_id": "L-" + uuid.uuid4().hex, "reasons": [], **fields}

    def close(self):
        self.client.close()
        self.cache.close()
        self.ledger.close()


@pytest.fixture
def device(tmp_path, central):
    d = Device(tmp_path, central)
    yield d
    d.close()

"""The bench central keeps the hall's day and clock, not its host's."""

from datetime import UTC, datetime

from kiosk.central import store as store_mod
from kiosk.central.store import CentralStore


def test_the_centrals_day_and_times_are_the_halls_on_a_utc_host(tmp_path, monkeypatch):
    # 16:30 UTC on 3 March is 00:30 on 4 March in Shanghai: the hall's new day.
    epoch = datetime(2026, 3, 3, 16, 30, tzinfo=UTC).timestamp()
    monkeypatch.setattr("kiosk.core.time.time.time", lambda: epoch)
    store = CentralStore(tmp_path)
    assert store.today() == "2026-03-04"
    assert store_mod.now_iso() == "2026-03-04T00:30:00+08:00"

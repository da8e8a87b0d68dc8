"""The UI thread only draws and handles input: the pad's staff photo is written
by the app's background pool, and the pool ends with the app (on_stop), after
the work in flight has finished and before the ledger closes."""

import shutil
import threading
from pathlib import Path

import pytest

from kiosk.central.seed import staff_photo_png
from kiosk.core.keys import STAFF_PHOTO_DIR as PHOTO_DIR
from kiosk.core.ledger import Ledger
from tests.helpers import AppHarness, wait_until, write_config

CARD = {"staff_id": "S1001", "name": "王丽华", "employee_no": "10201", "stars": 5}


@pytest.fixture
def photo_writes(monkeypatch):
    """The thread of every staff photo file write, recorded in the write itself."""
    writes = []
    real = Path.write_bytes

    def write_bytes(self, data):
        if PHOTO_DIR in self.parts:
            writes.append(threading.current_thread())
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    return writes


def in_thread(fn, *args, **kw):
    """Run fn as the pad's own threads do (sync worker, watcher, gpiozero)."""
    t = threading.Thread(target=fn, args=args, kwargs=kw)
    t.start()
    t.join(10)


def test_the_staff_photo_is_written_off_the_ui_thread(tmp_path, photo_writes):
    h = AppHarness(write_config(tmp_path, {"device": {"roles": ["pad"]}}), lang="en")
    try:
        svc, screen = h.rt.pad.service, h.app.screen("pad")
        ui = threading.current_thread()
        in_thread(svc.store_card, CARD, staff_photo_png(1), photo_etag="v1")
        assert h.wait_until(lambda: screen.photo and Path(screen.photo).exists(), 5)
        # The file goes (a cleaned disk, a new device): every path of the screen
        # that needs it again must have it written in the background.
        photos = Path(h.cfg.storage.dir) / PHOTO_DIR
        shutil.rmtree(photos)
        photo_writes.clear()
        in_thread(svc.clerk_button)  # a session: the screen asks for a rating
        assert h.wait_until(lambda: screen.mode == "rate", 5)
        shutil.rmtree(photos, ignore_errors=True)
        screen.pick_level(2)  # the citizen taps ★2 on the UI thread
        assert h.wait_until(lambda: screen.mode == "reasons" and screen.level == 2, 5)
        assert h.wait_until(lambda: any(photos.glob("S1001-*.png")), 5)
        assert photo_writes and ui not in photo_writes, "the tap wrote the photo on the UI thread"
        shutil.rmtree(photos, ignore_errors=True)
        screen.to_rest()  # the session is still open: shown again
        assert screen._session_id is None
        assert h.wait_until(lambda: screen._session_id == svc.current().session_id, 5)
        assert screen.mode == "reasons"  # the session remembers the ★2
        assert h.wait_until(lambda: any(photos.glob("S1001-*.png")), 5)
        assert photo_writes, "the photo was never written again"
        assert ui not in photo_writes, "a staff photo was written on the UI thread"
        assert all(t.name.startswith("ui-bg") or t.name.startswith("Thread-") for t in photo_writes)
    finally:
        h.close()


def test_on_stop_finishes_the_work_in_flight_then_shuts_the_pool(tmp_path):
    h = AppHarness(write_config(tmp_path, {"device": {"roles": ["pad"]}}))
    pool, ledger_path = h.app.pool, h.rt.ledger.path
    release = threading.Event()

    def commit_late():
        release.wait(10)
        h.rt.ledger.set_meta("test.late_commit", "done")  # still open: the app waits for us
        return "committed"

    future = pool.submit(commit_late)
    # Let the task go only once the app has begun to stop.
    releaser = threading.Thread(target=lambda: wait_until(lambda: pool.stopped, 10) and release.set())
    releaser.start()
    h.close()
    releaser.join(10)
    assert future.result(0) == "committed"
    assert Ledger(ledger_path).get_meta("test.late_commit") == "done"
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)  # nothing runs after the app stopped

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


@pytest.fixture
def storage_reads(monkeypatch):
    """The thread of every ledger statement and cache access, recorded where it runs.

    Ledger statements are traced by SQLite itself on the connection (one per
    thread); cache calls are recorded on entry, in the caller's thread, since
    sqlitedict hands them to a thread of its own while the caller waits."""
    from kiosk.core import ledger as ledger_mod
    from kiosk.core.cache import Cache

    seen: list[tuple[str, str]] = []
    real_connect = ledger_mod.sqlite3.connect

    def connect(*args, **kw):
        conn = real_connect(*args, **kw)
        conn.set_trace_callback(lambda sql: seen.append((threading.current_thread().name, sql.split()[0])))
        return conn

    monkeypatch.setattr(ledger_mod.sqlite3, "connect", connect)
    for name in ("get", "set", "delete", "keys"):
        real = getattr(Cache, name)

        def wrapped(self, *args, _real=real, _name=name):
            seen.append((threading.current_thread().name, f"cache.{_name}"))
            return _real(self, *args)

        monkeypatch.setattr(Cache, name, wrapped)
    return seen


def test_no_screen_reads_the_ledger_or_the_cache_on_the_ui_thread(tmp_path, storage_reads):
    """A citizen at each role's screen and a technician at the PIN gate: every
    read and write of theirs runs in the background, never in a frame."""
    from kiosk.core.pin import DEMO_PIN_HASH

    cfg = write_config(tmp_path, {"technician": {"pin_hash": DEMO_PIN_HASH}})
    h = AppHarness(cfg, lang="zh")
    ui = threading.current_thread().name
    try:
        storage_reads.clear()  # from here on, the app is running
        app = h.app
        # The dispenser: its choices and hours, a language and a text-size change, a ticket.
        app.go("dispenser")
        disp = app.screen("dispenser")
        assert h.wait_until(lambda: len(disp.ids.categories.children) > 0, 5)
        app.lang = "en"
        app.font_scale = 1.3
        disp.toggle_priority()
        disp.toggle_priority()
        disp.refresh()
        h.pump(3)
        disp.choose(disp._view.categories[0].code)
        assert h.wait_until(lambda: disp.state in ("done", "refused"), 10)
        # The pad: a session, a bad level and its reasons.
        app.go("pad")
        pad = app.screen("pad")
        in_thread(h.rt.pad.service.clerk_button)
        assert h.wait_until(lambda: pad.mode == "rate", 5)
        pad.pick_level(2)
        assert h.wait_until(lambda: pad.mode == "reasons" and len(pad.ids.reasons.children) > 0, 5)
        # The service screen's PIN gate: its lockout state and a wrong PIN.
        app.go("service")
        service = app.screen("service")
        for d in "000000":
            service.key(d)
        service.enter()
        assert h.wait_until(lambda: not service.checking, 10)
        assert service.message == app.tr("service.wrong", n=4), service.message
        on_ui = [what for thread, what in storage_reads if thread == ui]
        assert storage_reads, "nothing was recorded: the fixture is not tracing"
        assert not on_ui, f"the UI thread read or wrote storage: {on_ui[:10]}"
    finally:
        h.close()

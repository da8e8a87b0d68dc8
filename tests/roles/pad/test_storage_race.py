"""A rating whose write fails while the window's next service has already opened the
next session: the citizen's ★ is still recorded (retried), never dropped."""

from __future__ import annotations

import json
import threading

import pytest

from kiosk.core import keys
from kiosk.core.cache import Cache
from kiosk.core.config import load_config
from kiosk.core.ledger import Ledger
from kiosk.roles.pad.service import RatingService
from tests.helpers import wait_until, write_config
from tests.roles.pad.test_service import FakeClock


@pytest.fixture
def svc(tmp_path):
    cfg = load_config(write_config(tmp_path, {"device": {"roles": ["pad"]}}))
    ledger = Ledger(cfg.storage_dir / keys.LEDGER_FILE)
    cache = Cache(cfg.storage_dir / keys.CACHE_FILE)
    s = RatingService(cfg, ledger, cache, clock=FakeClock())
    yield s
    s.close()
    cache.close()
    ledger.close()


def test_a_rating_failing_to_write_while_the_next_session_opens_is_retried(svc):
    svc.open_session("S-1", origin="central")
    svc.choose_level(2)
    code = svc.reasons().items[0]["code"]
    svc.choose_reasons([code])
    conn = svc.ledger._conn()  # this thread's own connection: the one submit writes on
    fired = threading.Event()

    def storage_fails_as_the_next_service_ends():
        # Called by SQLite inside submit's write: the next citizen's session opens on
        # the watcher's thread meanwhile, then the write fails (SQLITE_INTERRUPT).
        if not fired.is_set():
            fired.set()
            threading.Thread(target=svc.open_session, args=("S-2",), kwargs={"origin": "central"}).start()
            wait_until(lambda: svc.current() is not None and svc.current().session_id == "S-2", timeout=5)
            return 1
        return 0

    heard: list[tuple[str, str | None]] = []
    svc.subscribe(lambda what, st: heard.append((what, st.session.session_id if st.session else None)))
    conn.set_progress_handler(storage_fails_as_the_next_service_ends, 1)
    try:
        with pytest.raises(Exception):  # noqa: B017  the screen shows its error; what matters is below
            svc.submit(2, [code])
    finally:
        conn.set_progress_handler(None, 1)
    assert svc.current().session_id == "S-2"  # the next citizen's invitation is untouched
    assert wait_until(lambda: svc.outcome_of("S-1") is not None, timeout=10), "the ★2 was dropped"
    body = json.loads(svc.ledger.query("SELECT body FROM ratings WHERE session_id = 'S-1'")[0]["body"])
    assert body["level"] == 2 and [r["code"] for r in body["reasons"]] == [code]
    # the late write did not send the next citizen's invitation back to rest
    after_invite = heard[heard.index(("invite", "S-2")) :]
    assert not [w for w, _ in after_invite if w == "not_rated"], heard


PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


def _card(svc, photo: bytes) -> None:
    svc.store_card({"staff_id": "S01", "name": "李明", "employee_no": "0301"}, photo, photo_type="image/png")


def test_a_photo_that_is_an_error_page_is_not_shown(svc):
    _card(svc, b"<html>502 Bad Gateway</html>")
    card = svc.staff_card()
    assert card["name"] == "李明" and "photo_path" not in card


def test_a_photo_the_storage_cannot_take_leaves_the_rating_whole(svc):
    # The photo folder cannot be made (a file stands where it goes): the card shows
    # without its photo, and a rating's notifications (which read the card) go through.
    (svc.storage_dir / keys.STAFF_PHOTO_DIR).write_text("not a folder")
    _card(svc, PNG)
    assert "photo_path" not in svc.staff_card()
    heard = []
    svc.subscribe(lambda what, st: heard.append(what))
    svc.open_session("S-9", origin="central")
    svc.choose_level(5)
    assert svc.submit(5)["level"] == 5
    assert "rated" in heard

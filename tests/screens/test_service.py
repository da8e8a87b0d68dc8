"""The technician screen through the real app: hidden gesture, PIN with a persisted lockout, facts, restart."""

import pytest

from kiosk.core import keys
from kiosk.core.bootguard import RESTART_EXIT_CODE
from tests.helpers import DEMO_PIN, AppHarness, write_config


def tap_corner(h, n):
    from kivy.tests.common import UnitTestTouch

    hall = h.app.header.ids.hall
    for _ in range(n):
        t = UnitTestTouch(hall.x + 20, hall.center_y)
        t.touch_down()
        t.touch_up()
    h.pump(2)


def type_pin(h, pin):
    screen = h.app.screen("service")
    for d in pin:
        h.tap(h.find(rf"^{d}$", root=screen.ids.keypad))
    h.tap(screen.ids.key_enter)
    assert h.wait_until(lambda: not screen.checking, 5)
    h.pump(2)


@pytest.fixture
def harness(tmp_path):
    h = AppHarness(write_config(tmp_path, {"technician": {"max_tries": 2, "lockout_minutes": 10}}))
    yield h
    h.close()


def test_five_quick_taps_on_the_hall_name_open_the_pin_pad(harness):
    h = harness
    tap_corner(h, 4)
    assert h.app.sm.current == "home"
    tap_corner(h, 1)
    assert h.app.sm.current == "service"
    screen = h.app.screen("service")
    assert not screen.unlocked
    h.find("请输入维护密码")


def test_right_pin_shows_the_facts_and_hides_secrets(harness):
    h = harness
    rt = h.rt
    with rt.ledger.transaction() as tx:
        eid = rt.ledger.add_event(tx, "rating", {"applicant": "李四光", "phone": "13912345678"})
    rt.ledger.mark_dead(eid, "rejected: unknown window 99")
    rt.selftest_result = {
        "ok": True,
        "rows": [{"name": "central", "verdict": "warn", "detail": "unreachable", "required": False}],
    }
    h.app.go("service")
    h.pump(2)
    type_pin(h, DEMO_PIN)
    screen = h.app.screen("service")
    assert screen.unlocked
    assert h.wait_until(lambda: len(screen.ids.info.children) > 6, 5)
    text = "\n".join(h.texts(screen))
    for expected in (
        "demo-kiosk",
        "dispenser, lookup, pad",
        "0.1.0",
        "IP address",
        "dead letters",
        "rejected: unknown window 99",
        "not configured",
        "pin_hash=(set)",
        "last sync",
    ):
        assert expected in text, expected
    assert "pbkdf2" not in text and "test-token" not in text
    assert "李四光" not in text and "13912345678" not in text  # dead letter bodies are not shown
    # leaving locks it again
    h.tap(screen.ids.btn_close)
    assert h.app.sm.current == "home"
    h.app.go("service")
    h.pump(2)
    assert not screen.unlocked


def test_wrong_pins_lock_and_the_lock_survives_a_restart(harness, tmp_path):
    h = harness
    h.app.go("service")
    h.pump(2)
    screen = h.app.screen("service")
    type_pin(h, "1111")
    assert "1" in screen.message  # tries left
    type_pin(h, "2222")
    assert "10" in screen.message or "分钟" in screen.message
    type_pin(h, DEMO_PIN)  # the right PIN does not help while locked
    assert not screen.unlocked
    h.close()

    h2 = AppHarness(tmp_path / "kiosk.toml")  # same storage: a restarted device
    try:
        h2.app.go("service")
        s2 = h2.app.screen("service")
        # The lockout is read in the background (the UI thread reads no storage): wait for it.
        assert h2.wait_until(lambda: "分钟" in s2.message), s2.message
        type_pin(h2, DEMO_PIN)
        assert not s2.unlocked
        # once the lock has run out, the right PIN opens it
        h2.rt.ledger.set_meta(keys.TECHNICIAN_LOCKED_UNTIL, "0")
        type_pin(h2, DEMO_PIN)
        assert s2.unlocked
    finally:
        h2.close()
    h.close = lambda: None  # already closed


def test_restart_takes_two_taps_and_exits_with_the_restart_code(harness):
    h = harness
    stopped = []
    h.app.stop = lambda *a: stopped.append(True)
    h.app.go("service")
    h.pump(2)
    type_pin(h, DEMO_PIN)
    screen = h.app.screen("service")
    h.tap(screen.ids.btn_restart)
    assert not stopped and screen.restart_armed
    h.tap(screen.ids.btn_restart)
    assert stopped and h.app.exit_code == RESTART_EXIT_CODE


def test_self_check_button_runs_the_checks(harness):
    h = harness
    h.app.go("service")
    h.pump(2)
    type_pin(h, DEMO_PIN)
    screen = h.app.screen("service")
    h.tap(screen.ids.btn_selftest)
    assert h.wait_until(lambda: screen.action_text.startswith("ok:"), 10), screen.action_text
    assert h.rt.selftest_result["ok"] is True
    assert h.wait_until(lambda: any("writable and intact" in t for t in h.texts(screen)), 5)
    h.tap(screen.ids.btn_print)
    assert h.wait_until(lambda: screen.action_text == "printed", 10), screen.action_text
    # The demo's simulated printer really received a ticket with a cut at the end.
    assert b"\x1dV" in h.rt.dispenser.printer.printer.backend.jobs[-1]


def test_screenshot_command_renders_the_service_screen(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "service.png"
    # Its own process, as a technician runs it (and Kivy's App.run gets a fresh window).
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kiosk",
            "screenshot",
            "--config",
            str(write_config(tmp_path)),
            "--screen",
            "service",
            "--out",
            str(out),
            "--lang",
            "en",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.stat().st_size > 5000

"""The unlocked service screen's live tests through the real app: central reachable and
authorised against the bench central, the last scan (masked) from the lookup's scanner
path, pad keys and dispenser buttons reporting to the test, the pad LEDs lit on MockFactory."""

import pytest

from kiosk.central.server import BenchCentral
from tests.helpers import DEMO_PIN, AppHarness, device_tokens, write_config

KEYPAD = [5, 6, 13, 19, 26]  # ★5 … ★1
LEDS = [12, 16, 20, 21, 25]
DISPENSER_A = 17


@pytest.fixture
def central(tmp_path):
    c = BenchCentral(tmp_path / "central", long_poll_cap=1).start()
    c.issue_token = device_tokens(c)  # each test device with its usual scope
    yield c
    c.stop()


@pytest.fixture
def service(tmp_path, central):
    path = write_config(
        tmp_path,
        {
            "central": {"url": central.url, "connect_timeout": 0.5, "read_timeout": 2.0},
            "gpio": {"pin_factory": "mock"},
            "dispenser": {"button_pins": {"A": DISPENSER_A}},
            "pad": {"keypad_pins": KEYPAD, "led_pins": LEDS, "clerk_button_pin": 4, "poll_wait": 1},
        },
        token=central.issue_token("demo-kiosk"),
    )
    h = AppHarness(path)
    h.app.go("service")
    h.pump(2)
    h.screen = h.app.screen("service")
    # Typing the PIN is tested in tests/screens/test_service.py; here the same path without the taps.
    assert h.screen.gate.check(DEMO_PIN) == (True, "ok")
    h.screen.unlock()
    h.pump(2)
    yield h
    h.close()


def shown(h):
    return "\n".join(h.texts(h.screen))


def press(factory, pin_no):
    pin = factory.pin(pin_no)
    pin.drive_low()
    pin.drive_high()


def test_central_reachable_and_authorised_on_the_screen(service):
    h = service
    assert h.wait_until(lambda: "reachable and authorised as demo-kiosk" in shown(h), 8), shown(h)
    assert "OK" in shown(h)


def test_scanner_test_shows_the_last_scan_masked(service, central):
    h = service
    case = central.create_case(applicant_name="司马相如", receipt_no="ZW2026004711", query_code="835201")
    assert h.wait_until(lambda: "nothing scanned yet" in shown(h), 5), shown(h)
    h.rt.lookup.scanner.inject(case["qr_payload"])  # the simulated scanner, through the lookup's ScanHub
    h.screen.refresh()
    assert h.wait_until(lambda: "receipt ZW20****4711" in shown(h), 5), shown(h)
    text = shown(h)
    assert "ZW2026004711" not in text and "835201" not in text and "司马相如" not in text
    assert "the lookup accepts it" in text
    h.rt.lookup.scanner.inject("HELLO-WORLD")
    h.screen.refresh()
    assert h.wait_until(lambda: "not a receipt code" in shown(h), 5), shown(h)
    assert "HELLO-WORLD" not in shown(h)
    # Scans reached only the test: nothing was looked up or audited while the screen was open.
    assert not h.rt.ledger.query("SELECT 1 FROM outbox WHERE kind LIKE 'lookup%'")


def test_buttons_report_to_the_test_and_go_back_to_their_role(service):
    h = service
    rt = h.rt
    # Each role's bank hands its presses to the role's own thread (kiosk/core/handoff.py).
    role_pad, role_dispenser = rt.pad.presses.put, rt.dispenser.presses.put
    assert rt.pad.presses.handler == rt.pad.keys.on_press and rt.dispenser.presses.handler == rt.dispenser.service.press
    assert rt.pad.buttons.on_press != role_pad and rt.dispenser.buttons.on_press != role_dispenser  # the test has them
    press(rt.pad.pin_factory, KEYPAD[2])  # ★3
    led3 = rt.pad.pin_factory.pin(LEDS[2])
    assert h.wait_until(lambda: led3.state, 2)  # its own LED lights
    h.screen.refresh()
    assert h.wait_until(lambda: "last pad key star3" in shown(h), 5), shown(h)
    press(rt.dispenser.pin_factory, DISPENSER_A)
    h.screen.refresh()
    assert h.wait_until(lambda: "last dispenser button A" in shown(h), 5), shown(h)
    # The test issued nothing: no ticket printed, no rating recorded.
    assert not rt.ledger.query("SELECT 1 FROM tickets") and not rt.ledger.query("SELECT 1 FROM ratings")
    h.tap(h.screen.ids.btn_close)
    assert rt.pad.buttons.on_press == role_pad and rt.dispenser.buttons.on_press == role_dispenser


def test_led_test_lights_every_pad_led_then_turns_them_off(service):
    h = service
    pins = [h.rt.pad.pin_factory.pin(n) for n in LEDS]
    for p in pins:
        p.clear_states()
    h.tap(h.screen.ids.btn_leds)
    # While the test runs, the LEDs go on one after the other.
    seen_on = set()
    assert h.wait_until(lambda: seen_on.update(i for i, p in enumerate(pins) if p.state) or len(seen_on) == 5, 6)
    assert h.wait_until(lambda: h.screen.action_text.startswith("lit 5 LEDs"), 8), h.screen.action_text
    for p in pins:
        ons = [s for s in p.states if s.state]
        assert len(ons) == 2, p.states  # once alone, once with all the others
        assert not p.state  # and off at the end

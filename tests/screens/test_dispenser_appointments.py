"""预约签到 and quotas on the real dispenser screen: real touches on the keypad, a booking QR through
the scanner path, the bench central on loopback."""

from __future__ import annotations

import pytest

from tests.helpers import AppHarness, write_config


def start(tmp_path, central, **dispenser):
    token = central.issue_token("demo-kiosk")
    path = write_config(
        tmp_path,
        {
            "device": {"roles": ["dispenser", "lookup"]},
            "central": {"url": central.url},
            "scanner": {"backend": "sim"},
            "dispenser": {
                "open_days": [1, 2, 3, 4, 5, 6, 7],
                "open_hours": ["00:00-23:59"],
                "entries": ["appointment", "service"],
                "checkin_timeout": 1.0,
                "online_timeout": 0.5,
                **dispenser,
            },
        },
        token=token,
    )
    h = AppHarness(path)
    h.app.go("dispenser")
    h.pump(3)
    return h


@pytest.fixture
def app_for(tmp_path, central):
    made = []

    def make(**kw):
        h = start(tmp_path, central, **kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def disp(h):
    return h.app.screen("dispenser")


def wait_state(h, state, timeout=8.0):
    assert h.wait_until(lambda: disp(h).state == state, timeout), f"state {disp(h).state}, texts {h.texts()}"
    h.pump(3)


def type_code(h, code):
    keypad = disp(h).ids.keypad
    for ch in code:
        h.tap(next(k for k in keypad.children if k.key == ch))


def test_keypad_check_in_prints_the_appointment_ticket(app_for, central):
    b = central.store.create_booking("B", "10:45")
    h = app_for()
    assert disp(h).state == "entry"
    h.find("选择业务")
    h.tap(h.find("^预约签到"))
    wait_state(h, "checkin")
    type_code(h, b["code"])
    h.tap(h.find("^签到$"))
    wait_state(h, "done")
    h.find("^Y001$")
    h.find("预约号 · 不动产登记")
    t = h.rt.dispenser.service.tickets()
    assert [x.display for x in t] == ["Y001"] and t[0].appointment and t[0].print_state == "printed"
    assert [x["state"] for x in central.store.bookings()] == ["checked_in"]
    # the code typed is not on the screen any more
    assert not any(b["code"] in x.replace(" ", "") for x in h.texts(h.app.root))


def test_an_unknown_code_says_so_and_offers_an_ordinary_ticket(app_for, central):
    h = app_for()
    h.tap(h.find("^预约签到"))
    wait_state(h, "checkin")
    type_code(h, "99999999")
    h.tap(h.find("^签到$"))
    wait_state(h, "refused")
    h.find("没有找到这个预约")
    h.tap(h.find("^改取普通号$"))
    wait_state(h, "choose")
    h.tap(h.find("^社保医保"))
    wait_state(h, "done")
    h.find("^A001$")
    assert [t["display"] for t in central.store.tickets()] == ["A001"]


def test_a_booking_qr_through_the_scanner_checks_in_and_garbage_is_refused_plainly(app_for, central):
    b = central.store.create_booking("C", "10:30")
    h = app_for()
    scanner = h.rt.lookup.scanner
    scanner.inject("APPT:#<b>x</b>")  # claims to be a booking, holds no code
    wait_state(h, "refused")
    h.find("这不是有效的预约码")
    assert central.store.tickets() == [] and h.rt.dispenser.service.tickets() == []
    disp(h).finish()
    h.app.go("dispenser")
    wait_state(h, "entry")
    scanner.inject(b["qr_payload"])
    wait_state(h, "done")
    h.find("^Y001$")
    # the same QR again: used, one number per booking
    disp(h).finish()
    h.app.go("dispenser")
    scanner.inject(b["qr_payload"])
    wait_state(h, "refused")
    h.find("已经签到过了")
    # a receipt QR still goes to the case lookup
    case = central.create_case("个体工商户设立登记", "张小三", status="deciding")
    scanner.inject(case["qr_payload"])
    assert h.wait_until(lambda: h.app.sm.current == "lookup" and h.app.screen("lookup").mode == "result", 8)


def test_offline_check_in_says_it_needs_the_central_and_the_ordinary_ticket_still_works(app_for, central):
    b = central.store.create_booking("A", "10:30")
    h = app_for()
    central.stop()
    h.tap(h.find("^预约签到"))
    wait_state(h, "checkin")
    type_code(h, b["code"])
    h.tap(h.find("^签到$"))
    wait_state(h, "refused")
    h.find("预约签到需要连接中心系统")
    h.tap(h.find("^改取普通号$"))
    wait_state(h, "choose")
    h.tap(h.find("^公积金"))
    wait_state(h, "done")
    h.find("离线票")


def test_a_used_up_service_button_says_so_and_takes_no_number(app_for, central):
    h = app_for(entries=["service"], quotas=[{"category": "A", "hours": "00:00-23:59", "limit": 1}])
    assert disp(h).state == "choose"
    assert h.wait_until(lambda: _has(h, "社保医保"), 8)  # the buttons come from a background read
    h.tap(h.find("^社保医保"))
    wait_state(h, "done")
    disp(h).finish()
    h.app.go("dispenser")
    assert h.wait_until(lambda: _has(h, "本时段号已发完"), 8)
    h.tap(h.find("^社保医保"))
    wait_state(h, "refused")
    h.find("本时段的号已发完")
    assert [t["display"] for t in central.store.tickets()] == ["A001"]
    assert len(h.rt.dispenser.service.tickets()) == 1


def _has(h, text):
    return any(text in t for t in h.texts(disp(h)))


def test_a_dispenser_only_kiosk_reads_booking_qr_codes_with_its_own_scanner(tmp_path, central):
    b = central.store.create_booking("B", "10:30")
    token = central.issue_token("demo-kiosk")
    path = write_config(
        tmp_path,
        {
            "device": {"roles": ["dispenser"]},
            "central": {"url": central.url},
            "scanner": {"backend": "sim"},
            "dispenser": {
                "open_days": [1, 2, 3, 4, 5, 6, 7],
                "open_hours": ["00:00-23:59"],
                "entries": ["appointment", "service"],
                "booking_scanner": True,
            },
        },
        token=token,
    )
    h = AppHarness(path)
    try:
        assert h.rt.lookup is None and h.rt.scanner is h.rt.dispenser.scanner
        h.rt.scanner.inject("https://zwfw.example.gov.cn/q?slbh=ZW1&cxm=1")  # a receipt: no booking here
        wait_state(h, "refused")
        h.find("这不是有效的预约码")
        disp(h).finish()
        h.app.go("dispenser")
        h.rt.scanner.inject(f"https://yy.example.gov.cn/b?appt={b['code']}")  # the URL form of a booking QR
        wait_state(h, "done")
        h.find("^Y001$")
        assert [t.display for t in h.rt.dispenser.service.tickets()] == ["Y001"]
    finally:
        h.close()


def test_a_half_typed_code_is_forgotten_at_the_idle_timeout(app_for, central):
    import time

    h = app_for()
    h.tap(h.find("^预约签到"))
    wait_state(h, "checkin")
    type_code(h, "4711")
    assert disp(h).has_content and any("4 7 1 1" in t for t in h.texts(disp(h)))
    h.app.last_activity = time.monotonic() - h.cfg.display.idle_timeout - 1
    h.pump_for(1.3)
    assert h.app.sm.current == h.app.home_name != "dispenser"  # the idle timeout sent it home
    assert disp(h).state == "entry"
    assert disp(h).code == "" and not any("4 7 1 1" in t for t in h.texts(h.app.root))

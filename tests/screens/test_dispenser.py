"""The dispenser screen end to end: a real touch, the real app, bytes on a real pty pair."""

from __future__ import annotations

import threading

import pytest

from devices.preview import interpret
from tests.devices.conftest import PtyDevice
from tests.helpers import AppHarness, printer_font, write_config

OK, OUT = 0x12, 0x72


@pytest.fixture
def printer_pty():
    dev = PtyDevice(answers={1: OK, 4: OK})
    yield dev
    dev.unplug()


def open_app(tmp_path, port, **dispenser):
    cfg = write_config(
        tmp_path,
        {
            "device": {"roles": ["dispenser"]},
            "printer": {"backend": "serial", "port": port, "status_timeout": 0.3},
            "dispenser": {
                "open_days": [1, 2, 3, 4, 5, 6, 7],
                "open_hours": ["00:00-23:59"],
                "confirm_seconds": 3,
                **dispenser,
            },
            "gpio": {"pin_factory": "mock"},
        },
    )
    return AppHarness(cfg)


def test_touch_a_category_prints_the_ticket_and_confirms(tmp_path, printer_pty):
    h = open_app(tmp_path, printer_pty.path)
    try:
        screen = h.app.sm.current_screen
        assert screen.name == "dispenser" and screen.state == "choose"
        h.tap(h.find("不动产登记"))
        assert h.wait_until(lambda: screen.state == "done", 10)
        h.pump(3)
        h.find("请取走您的号票")
        h.find("^B900$")
        assert printer_pty.wait_until(lambda b: b"\x1dV" in b)
        lines = interpret(bytes(printer_pty.received), font_path=printer_font()).lines
        assert "B900" in lines and "不动产登记" in lines
        # a second tap during the confirmation takes no second number
        assert len(h.rt.dispenser.service.tickets()) == 1
        # the confirmation goes back to the choice by itself and forgets the number
        assert h.wait_until(lambda: screen.state == "choose", 6)
        h.pump(2)
        assert not any("B900" in t for t in h.texts(screen))
    finally:
        h.close()


def test_priority_lane_then_category_gives_a_priority_ticket(tmp_path, printer_pty):
    h = open_app(tmp_path, printer_pty.path)
    try:
        screen = h.app.sm.current_screen
        h.tap(h.find("绿色通道"))
        assert screen.priority_mode
        h.find("绿色通道：请选择业务")
        h.tap(h.find("社保医保"))
        assert h.wait_until(lambda: screen.state == "done", 10)
        assert screen.number == "V900"
        h.pump(2)
        h.find("^绿色通道号 · 社保医保$")  # said on the issued ticket's screen, not only by colour
        assert printer_pty.wait_until(lambda b: b"V900" in b)
        assert not screen.priority_mode
    finally:
        h.close()


def test_the_issued_ticket_says_the_estimated_wait(tmp_path, printer_pty):
    from kiosk.roles.dispenser.samples import sample_ticket
    from kiosk.roles.dispenser.service import IssueResult

    h = open_app(tmp_path, printer_pty.path)
    try:
        screen = h.app.sm.current_screen
        screen.show_issued(IssueResult(sample_ticket(h.cfg), printed=True, paper="ok"))  # 5 ahead, 1500 s
        h.pump(2)
        h.find("^前面还有 5 人等候，预计约 25 分钟$")
    finally:
        h.close()


def test_paper_out_tells_the_citizen_to_go_to_the_counter(tmp_path):
    dev = PtyDevice(answers={1: OK, 4: OUT})
    h = open_app(tmp_path, dev.path)
    try:
        screen = h.app.sm.current_screen
        h.tap(h.find("公积金"))
        assert h.wait_until(lambda: screen.state == "refused", 10)
        h.pump(2)
        h.find("打印纸已用完")
        h.find("服务台")
        assert h.rt.dispenser.service.tickets() == [] and bytes(dev.received) == b""
        h.app.toggle_language()
        h.pump(2)
        h.find("out of paper")
    finally:
        h.close()
        dev.unplug()


def test_closed_outside_opening_hours_shows_the_hours(tmp_path, printer_pty):
    h = open_app(tmp_path, printer_pty.path, open_days=[1], open_hours=["08:00-08:01"])
    try:
        screen = h.app.sm.current_screen
        svc = h.rt.dispenser.service
        if svc.is_open():  # the one minute a week this config is open
            pytest.skip("ran during the opening minute")
        h.pump(2)
        assert screen.state == "closed"
        h.find("现在不是办公时间")
        h.find("08:00-08:01")
    finally:
        h.close()


def test_hardware_buttons_do_what_the_touchscreen_does(tmp_path, printer_pty):
    pytest.importorskip("devices.buttons")
    h = open_app(tmp_path, printer_pty.path, button_pins={"C": 17}, priority_button_pin=22)
    try:
        screen = h.app.sm.current_screen
        factory = h.rt.dispenser.pin_factory
        prio, cat = factory.pin(22), factory.pin(17)
        # gpiozero's thread (here: this one, driving the mock pin) only queues the press.
        seen = []
        h.rt.dispenser.service.button_listeners.append(lambda name: seen.append(threading.current_thread().name))
        prio.drive_low()
        prio.drive_high()  # pull-up buttons: pressed = low
        assert h.wait_until(lambda: screen.priority_mode, 3)
        assert seen == ["dispenser-buttons"]
        cat.drive_low()
        cat.drive_high()
        assert h.wait_until(lambda: screen.state == "done", 10)
        assert screen.number == "V900"
        assert printer_pty.wait_until(lambda b: b"V900" in b)
    finally:
        h.close()


def test_low_disk_refuses_the_ticket_with_a_plain_message(tmp_path, printer_pty):
    """Below storage.min_free_mb (the real free space of the test's folder) no number is taken."""
    import shutil

    h = open_app(tmp_path, printer_pty.path)
    try:
        free_mb = shutil.disk_usage(h.cfg.storage.dir).free // 2**20
        h.rt.disk.min_free_bytes = (free_mb + 64) * 2**20
        h.rt.disk.refresh_now()
        screen = h.app.sm.current_screen
        h.tap(h.find("公积金"))
        assert h.wait_until(lambda: screen.state == "refused", 10)
        h.pump(2)
        h.find("存储空间不足")
        assert h.rt.dispenser.service.tickets() == [] and bytes(printer_pty.received) == b""
        assert h.rt.health()["storage"]["low"] is True
        h.app.toggle_language()
        h.pump(2)
        h.find("storage is full")
    finally:
        h.close()

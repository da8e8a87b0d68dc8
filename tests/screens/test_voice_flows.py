"""Which clips each flow plays, through the real app: the ticket, paper out, the pad's invitation and thanks."""

from __future__ import annotations

import shutil

import pytest

from devices.audio import SimPlayer
from tests.devices.conftest import PtyDevice
from tests.helpers import AppHarness, write_config

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")

OK, OUT = 0x12, 0x72


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    from kiosk.cli.voice import make_pack

    out = tmp_path_factory.mktemp("voice")
    make_pack(out)
    return out


def dispenser_app(tmp_path, port, pack):
    cfg = write_config(
        tmp_path,
        {
            "device": {"roles": ["dispenser"]},
            "printer": {"backend": "serial", "port": port, "status_timeout": 0.3},
            "dispenser": {"open_days": [1, 2, 3, 4, 5, 6, 7], "open_hours": ["00:00-23:59"], "confirm_seconds": 3},
            "voice": {"backend": "sim", "pack": str(pack), "volume": 1.0},
        },
    )
    return AppHarness(cfg)


def played(h) -> list[str]:
    player = h.rt.voice.player
    assert isinstance(player, SimPlayer)
    return [p.removesuffix(".wav") for p in player.played]


def test_a_ticket_is_announced_with_the_number_on_the_screen(tmp_path, pack):
    dev = PtyDevice(answers={1: OK, 4: OK})
    h = dispenser_app(tmp_path, dev.path, pack)
    try:
        screen = h.app.sm.current_screen
        h.tap(h.find("不动产登记"))
        assert h.wait_until(lambda: screen.state == "done", 10)
        number = screen.number
        expected = ["ticket.take", f"letter.{number[0]}", *[f"digit.{d}" for d in number[1:]], "ticket.number"]
        assert h.wait_until(lambda: len(played(h)) == len(expected), 5)
        assert played(h) == expected
        h.find(number)  # what is said is what is shown
    finally:
        h.close()
        dev.unplug()


def test_paper_out_is_said_and_shown(tmp_path, pack):
    dev = PtyDevice(answers={1: OK, 4: OUT})
    h = dispenser_app(tmp_path, dev.path, pack)
    try:
        screen = h.app.sm.current_screen
        h.tap(h.find("公积金"))
        assert h.wait_until(lambda: screen.state == "refused", 10)
        assert h.wait_until(lambda: played(h) == ["ticket.paper_out"], 5)
        h.find("打印纸已用完")
    finally:
        h.close()
        dev.unplug()


def test_the_pad_asks_for_a_rating_and_thanks(tmp_path, central, pack):
    from tests.roles.pad.test_e2e import pad_config

    cfg = pad_config(tmp_path, central.url, central.issue_token("hall01-pad01"))
    text = cfg.read_text(encoding="utf-8") + f'\n[voice]\nbackend = "sim"\npack = "{pack}"\n'
    cfg.write_text(text, encoding="utf-8")
    h = AppHarness(cfg)
    try:
        h.rt.start()
        screen = h.app.screen("pad")
        central.call_next("01")
        central.end_service("01")
        assert h.wait_until(lambda: screen.mode == "rate", 8)
        assert h.wait_until(lambda: played(h) == ["pad.invite"], 5)
        h.pump(3)
        h.tap(h.find("非常满意"))
        assert h.wait_until(lambda: screen.mode == "thanks", 8)
        assert h.wait_until(lambda: played(h) == ["pad.invite", "pad.thanks"], 5)
    finally:
        h.close()

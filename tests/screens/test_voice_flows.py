"""Which clips each flow plays, through the real app: the ticket, paper out, the pad's invitation and thanks,
the lookup's 朗读 (read aloud)."""

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


def test_read_aloud_says_the_status_and_the_deadline_and_nothing_personal(tmp_path, central, pack):
    from tests.screens.test_lookup import CODE, start

    case = central.create_case("个体工商户设立登记", "张小三", status="reviewing", query_code=CODE, time_limit_days=20)
    h = start(tmp_path, central, voice={"backend": "sim", "pack": str(pack)})
    try:
        screen = h.app.screen("lookup")
        h.rt.lookup.scanner.inject(case["qr_payload"])
        assert h.wait_until(lambda: screen.mode == "result", 8)
        assert played(h) == [], "nothing is said before 朗读 is tapped"
        days = screen._result.deadline["days"]
        h.tap(h.find("^朗读$"))
        expected = [
            "lookup.status_is",
            "status.reviewing",
            "lookup.days_left",
            *[f"digit.{d}" for d in str(days)],
            "lookup.working_days",
        ]
        assert h.wait_until(lambda: played(h) == expected, 5), played(h)
        # What was said is written out, and the same words are on the screen.
        h.find(f"朗读：审查中。还剩 {days} 个工作日")
        h.find("^审查中$")
        # Never a name or a number beyond its masked form: no letter, no digit but the count.
        assert not [c for c in played(h) if c.startswith("letter.")]
        h.app.lang = "en"
        h.pump(2)
        h.find(f"Read aloud: Under review. {days} working days left")
        h.tap(h.find("^Read aloud$"))
        english = expected[:-1]  # "working days" is said before the count in English: no trailing word
        assert h.wait_until(lambda: played(h)[len(expected) :] == english, 5), played(h)
    finally:
        h.close()


def test_read_aloud_of_an_overdue_case_says_so(tmp_path, central, pack):
    from kiosk.roles.lookup.samples import sample_result
    from tests.screens.test_lookup import start

    h = start(tmp_path, central, voice={"backend": "sim", "pack": str(pack)})
    try:
        screen = h.app.screen("lookup")
        r = sample_result("overdue")
        screen.show_result(r)
        h.pump(2)
        h.tap(h.find("^朗读$"))
        assert h.wait_until(lambda: played(h) == ["lookup.status_is", "status.reviewing", "lookup.overdue"], 5)
        h.find(f"朗读：审查中。已超期 {r.deadline['days']} 个工作日，请到窗口咨询")
        screen.reset()  # the idle clear forgets what was read out, too
        h.pump(2)
        assert not [t for t in h.texts(h.app.root) if "朗读：" in t]
    finally:
        h.close()


def test_in_the_demo_a_rating_invitation_is_said_and_brings_the_pad_forward(tmp_path, central, pack):
    cfg = write_config(
        tmp_path,
        {
            "central": {"url": central.url, "allow_http": True, "read_timeout": 2.0},
            "pad": {"window": "01", "poll_wait": 1},
            "voice": {"backend": "sim", "pack": str(pack)},
        },
        token=central.issue_token("demo-kiosk"),
    )
    h = AppHarness(cfg)
    try:
        h.app.demo = True  # what `kiosk demo` builds the app with
        h.app.go("dispenser")
        h.pump(2)
        pad = h.app.screen("pad")
        central.call_next("01")
        central.end_service("01")
        assert h.wait_until(lambda: pad.mode == "rate", 8)
        assert h.wait_until(lambda: h.app.sm.current == "pad", 3), "the demo stayed on " + h.app.sm.current
        assert h.wait_until(lambda: played(h) == ["pad.invite"], 5)
        h.find("请您对本次服务进行评价")  # what is said is on the screen
    finally:
        h.close()

"""The lookup screen in the real app (offscreen Kivy): serial scanner through a pty,
keyboard wedge through Kivy key events, keypad taps, the bench central on loopback."""

import os
import time

import pytest

from kiosk.core import keys
from tests.helpers import AppHarness, write_config

CODE = "482913"


@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def start(tmp_path, central, scanner=None, lookup=None, display=None, voice=None, runtime_hook=None):
    token = central.issue_token("demo-kiosk")
    path = write_config(
        tmp_path,
        {
            **({"voice": voice} if voice else {}),
            "device": {"roles": ["lookup"]},
            "central": {"url": central.url},
            "scanner": scanner or {"backend": "sim"},
            "lookup": {"max_attempts": 3, **(lookup or {})},
            "display": {"idle_timeout": 30, **(display or {})},
        },
        token=token,
    )
    return AppHarness(path, runtime_hook=runtime_hook)


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


def screen(h):
    return h.app.screen("lookup")


def wait_mode(h, *modes, timeout=8.0):
    assert h.wait_until(lambda: screen(h).mode in modes, timeout), f"mode is {screen(h).mode}, texts {h.texts()}"


def all_text(h) -> str:
    return "\n".join(h.texts(h.app.root))


def case_traces(case_no):
    """Everything of a case that must be gone once the screen forgets it."""
    return ("个体工商户设立登记", "张*三", "张小三", case_no, case_no[:4] + "****", "郑伟", CODE)


def test_a_scanner_spewing_garbage_into_the_pty_is_counted_and_leaves_the_screen_working(app_for, central, pty_pair):
    """A storm of garbage lines on the real serial line: every line is counted in
    the audit (a few alone, the rest coalesced), the clock never holds more than
    one scan for the screen, and the next real receipt is looked up."""
    import json
    import threading

    from kivy.clock import Clock

    from kiosk.roles.lookup.service import AUDIT_KIND

    master, port = pty_pair
    case = central.create_case("个体工商户设立登记", "张小三", query_code=CODE, receipt_no="ZW2026120002")
    # Lines end in CR/LF: no idle gap, so a reader starved by the storm cannot split one in two.
    h = app_for(scanner={"backend": "serial", "port": port, "baudrate": 115200, "idle_gap_ms": 0})
    assert h.wait_until(lambda: h.rt.lookup.scanner.connected, 5)
    lines, done = 1000, threading.Event()

    def storm():
        for i in range(lines):
            os.write(master, f"garbage-{i:05d}-&%$#\r\n".encode())
        done.set()

    before = len(Clock.get_events())  # the app's own timers
    writer = threading.Thread(target=storm, daemon=True)
    writer.start()
    most_waiting = 0
    while not done.is_set():
        h.pump(1)
        most_waiting = max(most_waiting, len(Clock.get_events()) - before)
    writer.join(10)
    wait_mode(h, "message")
    # Whatever hands the scans over, the storm must not pile callbacks into the clock.
    assert most_waiting <= 5, f"{most_waiting} more callbacks waited in the clock during the storm"
    svc = h.rt.lookup.service

    def counted():
        svc.flush_rejections(force=True)
        rows = h.rt.ledger.query("SELECT body FROM outbox WHERE kind = ?", (AUDIT_KIND,))
        return sum(json.loads(r["body"]).get("count", 1) for r in rows)

    assert h.wait_until(lambda: counted() == lines, 10), [
        json.loads(r["body"]) for r in h.rt.ledger.query("SELECT body FROM outbox WHERE kind = ?", (AUDIT_KIND,))
    ]
    os.write(master, case["qr_payload"].encode() + b"\r\n")
    wait_mode(h, "result")
    h.find("个体工商户设立登记")


def test_serial_scanner_through_a_pty_shows_the_case(app_for, central, pty_pair):
    master, port = pty_pair
    case = central.create_case(
        "个体工商户设立登记",
        "张小三",
        status="needs_materials",
        query_code=CODE,
        receipt_no="ZW2026120001",
        missing_materials=["营业场所证明"],
    )
    h = app_for(scanner={"backend": "serial", "port": port, "baudrate": 9600})
    assert h.wait_until(lambda: h.rt.lookup.scanner.connected, 5)
    os.write(master, case["qr_payload"].encode() + b"\r\n")
    wait_mode(h, "result")
    h.find("个体工商户设立登记")
    h.find("^待补正$")
    h.find("营业场所证明")
    h.find(r"^ZW20\*\*\*\*0001$")
    h.find(r"^张\*三$")
    assert "ZW2026120001" not in all_text(h) and "张小三" not in all_text(h)
    # The countdown is on screen and follows app.idle_left.
    h.app.last_activity = time.monotonic() - 13
    assert h.wait_until(lambda: h.app.idle_left in (16, 17), 3)
    h.pump(2)
    h.find(f"本页 {h.app.idle_left} 秒后自动清除")


def test_wedge_scanner_through_kivy_key_events(app_for, central):
    case = central.create_case("个体工商户设立登记", "张小三", status="ready_for_pickup", query_code=CODE)
    h = app_for(scanner={"backend": "wedge"})
    w = h.Window
    for ch in case["qr_payload"]:
        w.dispatch("on_textinput", ch)
    w.dispatch("on_key_down", 13, 40, None, [])
    wait_mode(h, "result")
    h.find("^待领取$")
    # Slow human typing is not a scan.
    for ch in "ZW2026|123456":
        w.dispatch("on_textinput", ch)
        time.sleep(0.08)
    w.dispatch("on_key_down", 13, 40, None, [])
    h.pump(3)
    assert screen(h).mode == "scan"  # the burst start cleared the result, nothing else happened


def test_a_new_scan_clears_the_previous_result_at_once(app_for, central):
    case = central.create_case("个体工商户设立登记", "张小三", query_code=CODE, handler="郑伟")
    h = app_for(scanner={"backend": "wedge"})
    screen(h).handle_scan(__import__("kiosk.roles.lookup.service", fromlist=["Scan"]).Scan(case["qr_payload"], "wedge"))
    wait_mode(h, "result")
    assert "个体工商户设立登记" in all_text(h)
    h.Window.dispatch("on_textinput", "h")  # first character of the next scan
    h.pump(1)
    text = all_text(h)
    assert not any(t in text for t in case_traces(case["receipt_no"]))


def test_keypad_entry_with_letters_and_digits(app_for, central):
    central.create_case("个体工商户设立登记", "张小三", status="deciding", receipt_no="ZW2026000555", query_code=CODE)
    h = app_for()
    h.tap(h.find("输入受理编号和查询码"))
    assert screen(h).mode == "keypad"
    panel = screen(h).ids.body.children[0]
    # receipt numbers start with letters: the keypad opens on them
    assert panel.ids.keypad.letters, "the keypad opened on digits for a receipt number"
    h.tap(h.find("^Z$"))
    h.tap(h.find("^W$"))
    h.tap(h.find("^数字$"))
    for d in "20260005555":
        h.tap(h.find(f"^{d}$"))
    h.tap(h.find("^退格$"))
    assert panel.receipt == "ZW2026000555"
    assert h.find("^查询$").disabled
    h.tap(panel.ids.code_field)
    for d in CODE:
        h.tap(h.find(f"^{d}$"))
    assert panel.code == CODE
    assert CODE not in all_text(h)  # the code shows as dots
    h.tap(h.find("^查询$"))
    wait_mode(h, "result")
    h.find("^审批中$")
    ev = [e.body for e in h.rt.ledger.pending_events() if e.kind == "lookup.performed"]
    assert [(e["outcome"], e["source"]) for e in ev] == [("ok", "keypad")]


def test_idle_timeout_leaves_no_text_of_the_case_anywhere(app_for, central):
    case = central.create_case("个体工商户设立登记", "张小三", query_code=CODE, handler="郑伟")
    h = app_for()
    h.rt.lookup.scanner.inject(case["qr_payload"])
    wait_mode(h, "result")
    assert screen(h).has_content
    h.app.last_activity = time.monotonic() - 31
    h.pump_for(1.3)
    assert screen(h).mode == "scan" and not screen(h).has_content
    text = all_text(h)
    leftovers = [t for t in case_traces(case["receipt_no"]) if t in text]
    assert not leftovers, leftovers
    # Also no widget keeps a reference to the result.
    assert screen(h)._result is None
    h.find("对准扫描窗口")


def test_offline_shows_the_cached_result_as_of_its_time_then_says_so_plainly(app_for, central):
    case = central.create_case("个体工商户设立登记", "张小三", query_code=CODE)
    h = app_for()
    h.rt.lookup.scanner.inject(case["qr_payload"])
    wait_mode(h, "result")
    screen(h).reset()
    central.stop()
    h.rt.lookup.scanner.inject(case["qr_payload"])
    wait_mode(h, "result")
    h.find("网络暂时不通，显示的是 .* 的查询结果")
    h.find("个体工商户设立登记")
    screen(h).reset()
    h.rt.lookup.scanner.inject("https://zwfw.example.gov.cn/q?slbh=ZW2026777777&cxm=123456")
    wait_mode(h, "message")
    h.find("暂时无法连接办件系统")
    h.find("拨打 12345 热线")


def test_wrong_codes_then_locked_in_plain_words(app_for, central):
    case = central.create_case(query_code=CODE)
    h = app_for()
    bad = case["qr_payload"].replace(CODE, "000000")
    h.rt.lookup.scanner.inject(bad)
    wait_mode(h, "message")
    h.find("还可以再试 2 次")
    h.rt.lookup.scanner.inject(bad)
    h.pump(1)
    assert h.wait_until(lambda: "还可以再试 1 次" in all_text(h), 5)
    h.rt.lookup.scanner.inject(bad)
    assert h.wait_until(lambda: "已暂时锁定" in all_text(h), 5)
    h.rt.lookup.scanner.inject(case["qr_payload"])  # even the right code now
    assert h.wait_until(lambda: "锁定 15 分钟" in all_text(h) or "锁定 14 分钟" in all_text(h), 5)


def test_hostile_codes_get_a_friendly_message_and_markup_stays_text(app_for, central):
    h = app_for()
    h.rt.lookup.scanner.inject(b"\xff\xfe[b]\x00")
    wait_mode(h, "message")
    h.find("无法识别这个二维码")
    # Markup in a central record is shown literally, never interpreted.
    case = central.create_case("[color=ff0000][size=200]假[/size][/color]", "张小三", query_code=CODE)
    h.rt.lookup.scanner.inject(case["qr_payload"])
    assert h.wait_until(lambda: screen(h).mode == "result", 8)
    label = h.find(r"^\[color=ff0000\]")
    assert label.markup is False


def test_english_and_large_text_show_the_same_result(app_for, central):
    case = central.create_case(
        "个体工商户设立登记",
        "张小三",
        status="refused",
        query_code=CODE,
        refusal_reason="不属于本机关职权范围",
        remedy="请向区市场监管局申请",
    )
    h = app_for(display={"language": "en", "large_text": True})
    h.rt.lookup.scanner.inject(case["qr_payload"])
    wait_mode(h, "result")
    h.find("^Not accepted$")
    h.find("What you can do")
    h.find("请向区市场监管局申请")
    h.app.toggle_language()
    h.pump(2)
    h.find("^不予受理$")


def test_demo_scan_buttons_inject_the_seeded_cases(app_for, central):
    h = app_for()
    s = screen(h)
    assert not s.demo  # a real device never shows them
    box = h.find("演示扫码 1").parent
    assert box.disabled and box.opacity == 0 and box.height == 0
    from kiosk.cli.demo import add_demo_scans

    add_demo_scans(h.rt)  # what `kiosk demo` does: the seeded cases' receipts
    s.demo = True  # and turns the buttons on
    h.pump(2)
    h.tap(h.find("演示扫码 1"))
    wait_mode(h, "result")
    h.find("城乡居民基本养老保险参保登记")
    s.reset()
    h.pump(1)
    h.tap(h.find("演示：无效码"))
    wait_mode(h, "message")
    h.find("无法识别这个二维码")


def test_the_demo_scans_a_case_just_made_on_the_bench(tmp_path, central):
    from kiosk.cli.demo import add_demo_scans

    h = start(tmp_path, central, runtime_hook=lambda rt: add_demo_scans(rt, central))
    try:
        s = screen(h)
        s.demo = True
        h.pump(2)
        central.create_case("食品经营许可", "李四", status="deciding", query_code="735191", handler="王芳")
        h.tap(h.find("演示：扫描台上新建的办件"))
        wait_mode(h, "result")
        h.find("食品经营许可")
        h.find("^审批中$")
    finally:
        h.close()


def test_lookup_screenshot_command_renders_a_result_state(tmp_path):
    import subprocess
    import sys

    from PIL import Image

    from tests.helpers import ROOT

    cfg = write_config(tmp_path, {"device": {"roles": ["lookup"]}})
    out = tmp_path / "shot.png"
    env = {**os.environ, "KIVY_HOME": str(tmp_path / keys.KIVY_HOME_DIR)}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "kiosk",
            "lookup-screenshot",
            "--config",
            str(cfg),
            "--state",
            "needs_materials",
            "--large",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    img = Image.open(out).convert("RGB")
    assert img.size == (1280, 800)
    # The warning-coloured status badge is drawn (theme.WARN), not a blank frame.
    from screens import theme

    warn = tuple(round(c * 255) for c in theme.WARN[:3])
    assert warn in {c for _, c in img.getcolors(1 << 20)}


def test_the_result_panel_is_reused_and_keeps_nothing_of_the_previous_case(app_for, central):
    first = central.create_case(
        "个体工商户设立登记",
        "张小三",
        status="needs_materials",
        query_code=CODE,
        handler="郑伟",
        missing_materials=["营业场所证明", "章程原件"],
    )
    second = central.create_case("食品经营许可", "李四", status="reviewing", query_code=CODE, handler="王芳")
    h = app_for()
    h.rt.lookup.scanner.inject(first["qr_payload"])
    wait_mode(h, "result")
    panel = screen(h).ids.body.children[0]
    h.find("章程原件")
    screen(h).reset()
    # Out of the tree and blank, even though it is kept for the next scan.
    left = "\n".join(h.texts(panel))
    assert not any(t in left for t in (*case_traces(first["receipt_no"]), "章程原件")), left
    h.rt.lookup.scanner.inject(second["qr_payload"])
    wait_mode(h, "result")
    assert screen(h).ids.body.children[0] is panel  # refilled, not rebuilt
    h.find("食品经营许可")
    text = all_text(h)
    gone = ("个体工商户设立登记", "张*三", first["receipt_no"], "郑伟", "营业场所证明", "章程原件", "补正材料")
    assert not any(t in text for t in gone), [t for t in gone if t in text]
    assert panel.ids.extra.children == []  # no leftover missing-materials lines


def test_after_a_wrong_code_only_the_code_is_typed_again(app_for, central):
    central.create_case("个体工商户设立登记", "张小三", receipt_no="ZW2026000777", query_code=CODE)
    h = app_for()
    screen(h).open_keypad()
    panel = screen(h).ids.body.children[0]
    panel.receipt, panel.code = "ZW2026000777", "000000"
    screen(h).submit_keypad(panel)
    wait_mode(h, "message")
    h.tap(h.find("^手动输入$"))
    assert screen(h).mode == "keypad"
    panel = screen(h).ids.body.children[0]
    assert (panel.receipt, panel.code, panel.field) == ("ZW2026000777", "", "code")
    assert not panel.ids.keypad.letters, "the query code is digits: the keypad should show them"
    for d in CODE:
        h.tap(h.find(f"^{d}$"))
    h.tap(h.find("^查询$"))
    wait_mode(h, "result")
    # the kept number goes with everything else when the screen forgets
    screen(h).reset()
    assert screen(h)._typed_receipt == ""


def _show_sample(h, result):
    screen(h).show_result(result)
    h.pump(4)
    return screen(h)._panels["result"]


def test_needs_materials_without_a_list_promises_no_list(app_for, central):
    from kiosk.roles.lookup.samples import sample_result

    h = app_for()
    r = sample_result("needs_materials")
    r.case["missing_materials"] = []
    panel = _show_sample(h, r)
    assert "清单" not in panel.ids.means.text and "下面" not in panel.ids.means.text
    assert "12345" in panel.ids.means.text or h.rt.cfg.lookup.help_phone in panel.ids.means.text
    r = sample_result("needs_materials")
    panel = _show_sample(h, r)
    assert "清单" in panel.ids.means.text
    assert "户口簿原件及复印件" in all_text(h)


def test_the_deadline_is_above_the_fold_in_large_english(app_for, central):
    from kiosk.roles.lookup.samples import sample_result

    h = app_for()
    h.app.lang, h.app.font_scale = "en", 1.3
    panel = _show_sample(h, sample_result("overdue"))
    h.pump(4)
    deadline, scroll = panel.ids.deadline, panel.ids.scroll
    assert "Overdue by" in deadline.text and "Due by" in deadline.text

    def above_the_fold():
        return deadline.to_window(deadline.x, deadline.y)[1] >= scroll.to_window(scroll.x, scroll.y)[1]

    assert h.wait_until(above_the_fold, 3), (
        f"the overdue warning is below the fold: {deadline.to_window(deadline.x, deadline.y)} "
        f"under the view's bottom {scroll.to_window(scroll.x, scroll.y)}, window {h.Window.size}"
    )


def test_hid_scanner_from_its_event_stream_shows_the_case(app_for, central, tmp_path):
    """scanner.backend = "hid": key events from the scanner's own node (here a FIFO carrying
    struct input_event records, see tests/devices/test_dev_hid_scanner.py), not the UI's keyboard."""
    from tests.devices.test_dev_hid_scanner import FifoScanner, typed

    case = central.create_case("个体工商户设立登记", "张小三", status="ready_for_pickup", query_code=CODE)
    dev = FifoScanner(tmp_path / "event-kbd")
    try:
        h = app_for(scanner={"backend": "hid", "port": dev.path})
        dev.send(typed(case["qr_payload"]))
        wait_mode(h, "result")
        h.find("^待领取$")
        assert h.rt.lookup.scanner.connected
    finally:
        dev.unplug()

"""kiosk printer-probe against emulated printers: a serial one on a real pty that answers DLE EOT,
a one-way USB printer (a plain file as its node, nothing comes back)."""

from __future__ import annotations

import io

import pytest

from devices.printer_probe import QR_TEXT, RULER, SAMPLE_ZH
from kiosk.cli import main
from kiosk.core.config import ConfigError, load_config, set_keys
from tests.devices.conftest import PtyDevice, _device_factory
from tests.helpers import write_config

CHINESE = SAMPLE_ZH.encode("gb18030")


@pytest.fixture
def printer():
    """Emulated serial printers on real ptys (tests/devices/conftest.py), unplugged at the end."""
    yield from _device_factory(PtyDevice)


def answer(monkeypatch, *replies: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(r + "\n" for r in replies)))


def test_a_serial_printer_needing_chinese_mode_on_58mm_paper_gets_its_profile_written(
    tmp_path, printer, monkeypatch, capsys
):
    dev = printer(answers={1: 0x12, 2: 0x12, 3: 0x12, 4: 0x1E})  # online, paper near its end
    cfg = write_config(tmp_path, {"printer": {"backend": "serial", "port": dev.path, "status_timeout": 0.3}})
    text = cfg.read_text().replace('backend = "serial"', '# the hall\'s Xprinter\nbackend = "serial"')
    cfg.write_text(text)
    # Line 1 (plain GB18030) came out as symbols, line 2 (FS &) right, a QR, the ruler wrapped.
    answer(monkeypatch, "n", "y", "y", "n")
    assert main(["printer-probe", "--config", str(cfg), "--write"]) == 0
    out = capsys.readouterr().out
    assert "DLE EOT 1: 0x12 (nothing to report)" in out and "DLE EOT 4: 0x1E (paper near end)" in out
    assert dev.queries[:4] == [1, 2, 3, 4]
    # The slip the technician judged: each line tests one thing.
    slip = dev.wait_until(lambda b: RULER.encode() in b) and bytes(dev.received)
    assert b"1 " + CHINESE + b"\n" in slip
    assert b"2 \x1c&" + CHINESE + b"\x1c." in slip
    assert b"\x1d(k" + bytes([len(QR_TEXT) + 3, 0, 49, 80, 48]) + QR_TEXT in slip
    # Written into [printer], the rest of the file kept, and it passes check-config.
    written = load_config(str(cfg)).printer
    assert (written.profile, written.paper_width, written.flow_control) == ("chinese-mode", 58, "xonxoff")
    assert "# the hall's Xprinter" in cfg.read_text() and "kiosk printer-probe" in cfg.read_text()
    assert "written to [printer]" in out


def test_a_one_way_usb_printer_says_the_paper_check_is_not_available_and_writes_nothing_unasked(
    tmp_path, monkeypatch, capsys
):
    node = tmp_path / "lp0"
    node.write_bytes(b"")
    cfg = write_config(tmp_path, {"printer": {"backend": "usb", "port": str(node), "status_timeout": 0.2}})
    before = cfg.read_text()
    answer(monkeypatch, "y", "y", "n", "y")  # plain Chinese fine, no native QR, 80 mm
    assert main(["printer-probe", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "DLE EOT 1: no answer" in out and "paper check is not available" in out
    assert 'profile = "no-qr"' in out and "paper_width = 80" in out and "flow_control" not in out
    assert node.read_bytes().endswith(RULER.encode() + b"\n\x1bd\x03\x1dV\x01")  # the slip went out
    assert cfg.read_text() == before and "not written" in out


def test_no_answers_at_the_prompt_writes_nothing(tmp_path, printer, monkeypatch, capsys):
    dev = printer(answers={1: 0x12, 4: 0x12})
    cfg = write_config(tmp_path, {"printer": {"backend": "serial", "port": dev.path, "status_timeout": 0.2}})
    before = cfg.read_text()
    answer(monkeypatch, "y")  # then stdin ends
    assert main(["printer-probe", "--config", str(cfg), "--write"]) == 2
    assert cfg.read_text() == before
    assert "nothing written" in capsys.readouterr().err


def test_a_missing_printer_is_a_plain_message(tmp_path, capsys):
    cfg = write_config(tmp_path, {"printer": {"backend": "serial", "port": str(tmp_path / "ttyUSB9")}})
    assert main(["printer-probe", "--config", str(cfg)]) == 1
    assert "not found: check the USB cable" in capsys.readouterr().err


def test_set_keys_refuses_a_value_check_config_refuses_and_keeps_the_file(tmp_path):
    cfg = write_config(tmp_path)
    before = cfg.read_text()
    with pytest.raises(ConfigError, match="paper_width"):
        set_keys(str(cfg), "printer", {"paper_width": 76})
    assert cfg.read_text() == before
    set_keys(str(cfg), "printer", {"profile": "no-chinese-no-qr"})
    assert load_config(str(cfg)).printer.profile == "no-chinese-no-qr"

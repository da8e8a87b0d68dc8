"""kiosk ticket-preview and print-test: what a technician runs."""

from __future__ import annotations

import shutil
import subprocess

from PIL import Image

from devices.preview import interpret
from kiosk.cli import main
from tests.helpers import printer_font, write_config


def test_ticket_preview_renders_the_exact_bytes_with_a_readable_qr(tmp_path, capsys):
    cfg = write_config(tmp_path)
    out = tmp_path / "ticket.png"
    assert main(["ticket-preview", "--config", str(cfg), "--out", str(out), "--offline"]) == 0
    said = capsys.readouterr().out
    assert "A900" in said and "bytes" in said
    size = int(said.split(" bytes")[0].rsplit(" ", 1)[1])
    assert size < 1024
    assert out.stat().st_size > 1000
    if shutil.which("zbarimg"):
        decoded = subprocess.run(["zbarimg", "-q", "--raw", str(out)], capture_output=True, text=True).stdout
        assert decoded.strip() == "https://zwfw.example.gov.cn/queue?t=A900&d=" + decoded.strip()[-10:]


def test_ticket_preview_of_a_printer_without_chinese_draws_the_raster_with_the_found_font(tmp_path, capsys):
    # The "no-chinese" profile sends Chinese as dots drawn with the font kiosk/core/fonts.py
    # found (devices/ has no finder): the ticket is much bigger and still shows its Chinese lines.
    cfg = write_config(tmp_path, {"printer": {"profile": "no-chinese"}})
    out = tmp_path / "ticket.png"
    assert main(["ticket-preview", "--config", str(cfg), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert int(said.split(" bytes")[0].rsplit(" ", 1)[1]) > 4096 and "'no-chinese'" in said
    ink = Image.open(out).convert("L").crop((0, 0, 624, 150)).getextrema()[0]
    assert ink == 0  # the hall name and category, rasterised, are on the paper


def test_print_test_writes_a_test_ticket_to_the_file_printer(tmp_path, capsys):
    path = tmp_path / "printer.bin"
    cfg = write_config(tmp_path, {"printer": {"backend": "file", "path": str(path)}})
    assert main(["print-test", "--config", str(cfg)]) == 0
    lines = interpret(path.read_bytes(), font_path=printer_font()).lines
    assert any("PRINT TEST" in ln for ln in lines) and any("此票无效" in ln for ln in lines)


def test_print_test_refuses_on_a_dead_serial_port(tmp_path, capsys):
    cfg = write_config(
        tmp_path, {"printer": {"backend": "serial", "port": str(tmp_path / "nope"), "status_timeout": 0.2}}
    )
    assert main(["print-test", "--config", str(cfg)]) == 1
    assert "not found" in capsys.readouterr().out

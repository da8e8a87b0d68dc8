"""kiosk ticket-preview and print-test: what a technician runs."""

from __future__ import annotations

import shutil
import subprocess

from PIL import Image

from devices.preview import interpret
from kiosk.cli import main
from kiosk.core import keys
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


def test_ticket_preview_last_shows_the_ticket_the_demo_really_printed(tmp_path, capsys):
    from tests.helpers import AppHarness

    cfg = write_config(
        tmp_path,
        {
            "device": {"roles": ["dispenser"]},
            "dispenser": {"open_days": [1, 2, 3, 4, 5, 6, 7], "open_hours": ["00:00-23:59"]},
        },
    )
    assert main(["ticket-preview", "--config", str(cfg), "--last", "--out", str(tmp_path / "none.png")]) == 1
    assert "nothing printed yet" in capsys.readouterr().err
    h = AppHarness(cfg)
    try:
        screen = h.app.sm.current_screen
        h.tap(h.find("不动产登记"))
        assert h.wait_until(lambda: screen.state == "done", 10)
        number = screen.number
    finally:
        h.close()
    out = tmp_path / "last.png"
    assert main(["ticket-preview", "--config", str(cfg), "--last", "--out", str(out)]) == 0
    assert "the last printed job" in capsys.readouterr().out
    assert Image.open(out).size[0] > 300
    job = sorted((tmp_path / "data" / keys.SIM_PRINTED_DIR).glob("job-*.bin"))[-1]
    assert any(number in ln for ln in interpret(job.read_bytes(), font_path=printer_font()).lines)
    if shutil.which("zbarimg"):
        decoded = subprocess.run(["zbarimg", "-q", "--raw", str(out)], capture_output=True, text=True).stdout
        assert f"t={number}" in decoded


def test_ticket_preview_last_needs_the_simulated_printer(tmp_path, capsys):
    cfg = write_config(tmp_path, {"printer": {"backend": "file", "path": str(tmp_path / "p.bin")}})
    assert main(["ticket-preview", "--config", str(cfg), "--last", "--out", str(tmp_path / "x.png")]) == 1
    assert "only the simulated printer keeps" in capsys.readouterr().err


def test_the_simulated_printer_keeps_its_last_jobs_bounded(tmp_path):
    from devices.printer import SimBackend, kept_jobs

    sim = SimBackend(keep_dir=tmp_path / "printed")
    for i in range(SimBackend.KEEP + 5):
        sim.write(f"job {i}".encode())
    jobs = kept_jobs(tmp_path / "printed")
    assert len(jobs) == SimBackend.KEEP
    assert jobs[-1].read_bytes() == f"job {SimBackend.KEEP + 4}".encode()
    assert jobs[0].read_bytes() == b"job 5"

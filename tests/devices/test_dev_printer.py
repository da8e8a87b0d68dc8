"""The ticket printer through a real pty pair, and its worker thread."""

import os
import threading

import pytest

from devices.escpos import encode
from devices.printer import (
    FileBackend,
    PrinterError,
    PrinterStatus,
    PrinterWorker,
    SerialBackend,
    SimBackend,
    TicketPrinter,
    parse_online,
    parse_paper,
)

ONLINE, OFFLINE = 0x12, 0x1A
PAPER_OK, PAPER_NEAR_END, PAPER_OUT = 0x12, 0x1E, 0x72


def test_status_byte_decoding():
    assert parse_online(ONLINE) is True
    assert parse_online(OFFLINE) is False
    assert parse_online(0xFF) is None  # not a status byte
    assert parse_paper(PAPER_OK) == "ok"
    assert parse_paper(0x16) == "near_end"  # only one of the two near-end bits
    assert parse_paper(PAPER_NEAR_END) == "near_end"
    assert parse_paper(PAPER_OUT) == "out"
    assert parse_paper(0x7E) == "out"  # out wins over near end
    assert parse_paper(0x00) == "unknown"


def test_ticket_bytes_arrive_exactly(pty_device, ticket):
    dev = pty_device()
    printer = TicketPrinter(SerialBackend(dev.path, timeout=0.5))
    sent = printer.print_document(ticket)
    assert sent == encode(ticket)
    assert dev.wait_for(len(sent)) == sent
    printer.close()


@pytest.mark.parametrize("paper_byte, paper", [(PAPER_OK, "ok"), (PAPER_NEAR_END, "near_end"), (PAPER_OUT, "out")])
def test_paper_status(pty_device, paper_byte, paper):
    dev = pty_device(answers={1: ONLINE, 4: paper_byte})
    printer = TicketPrinter(SerialBackend(dev.path))
    status = printer.status(timeout=1.0)
    assert status.online is True
    assert status.paper == paper
    assert status.can_print == (paper != "out")
    assert dev.queries == [1, 4]
    printer.close()


def test_offline_printer(pty_device):
    dev = pty_device(answers={1: OFFLINE, 4: PAPER_OK})
    status = TicketPrinter(SerialBackend(dev.path)).status(timeout=1.0)
    assert status.online is False and not status.can_print
    assert "offline" in status.detail


def test_no_answer_is_unknown_not_out(pty_device):
    dev = pty_device(answers={})  # a printer that never answers DLE EOT
    status = TicketPrinter(SerialBackend(dev.path)).status(timeout=0.2)
    assert status == PrinterStatus(None, "unknown", status.detail)
    assert status.can_print  # unknown must not stop the kiosk issuing tickets
    assert "did not answer" in status.detail


def test_paper_sensor_silent_is_unknown(pty_device):
    dev = pty_device(answers={1: ONLINE})
    status = TicketPrinter(SerialBackend(dev.path)).status(timeout=0.2)
    assert (status.online, status.paper) == (True, "unknown")


def test_missing_port_tells_the_technician(tmp_path):
    backend = SerialBackend(str(tmp_path / "kiosk-printer"))
    with pytest.raises(PrinterError, match="not found: check the USB cable and the udev rule"):
        backend.write(b"x")
    status = backend.status(0.1)
    assert (status.online, status.paper) == (False, "unknown")
    assert "not found" in status.detail


def test_port_held_by_another_program(pty_device):
    dev = pty_device()
    first = TicketPrinter(SerialBackend(dev.path))
    first.print_bytes(b"a\n")
    second = SerialBackend(dev.path)
    with pytest.raises(PrinterError, match="is busy: another program holds it"):
        second.write(b"b\n")
    first.close()
    second.write(b"b\n")  # free once the first one let go
    assert dev.wait_for(4) == b"a\nb\n"
    second.close()


def test_unplug_and_replug_reuses_the_same_printer(pty_device, tmp_path):
    link = tmp_path / "kiosk-printer"  # what the udev rule provides on a device
    first = pty_device(answers={1: ONLINE, 4: PAPER_OK})
    os.symlink(first.path, link)
    printer = TicketPrinter(SerialBackend(str(link), timeout=0.3, write_timeout=1.0))
    printer.print_bytes(b"one\n")
    assert first.wait_for(4) == b"one\n"

    first.unplug()
    with pytest.raises(PrinterError, match="check the USB cable"):
        printer.print_bytes(b"lost\n")
    assert printer.status(0.2).online is False

    second = pty_device(answers={1: ONLINE, 4: PAPER_NEAR_END})
    tmp_link = tmp_path / "new-link"
    os.symlink(second.path, tmp_link)
    os.replace(tmp_link, link)  # udev re-points the symlink at the new device
    assert printer.status(1.0).paper == "near_end"
    printer.print_bytes(b"two\n")
    assert second.wait_for(4) == b"two\n"
    printer.close()


def test_write_failing_midway_is_a_failure(pty_device):
    dev = pty_device(hang_up_after=1000)  # the printer dies after 1000 bytes
    printer = TicketPrinter(SerialBackend(dev.path, write_timeout=1.0))
    job = b"\x1b@" + b"A" * 400_000  # more than the kernel buffers hold
    with pytest.raises(PrinterError) as failure:
        printer.print_bytes(job)
    message = str(failure.value)
    assert f"of {len(job)} bytes" in message and "reprinted" in message
    assert 1000 <= len(dev.received) < len(job)


def test_printer_that_stops_reading_times_out(pty_device):
    dev = pty_device(stall_after=1000)  # alive but taking no more data (jam, cover open)
    printer = TicketPrinter(SerialBackend(dev.path, write_timeout=0.3))
    with pytest.raises(PrinterError, match=r"stopped taking data after .* of 400000 bytes"):
        printer.print_bytes(b"A" * 400_000)
    dev.stall_after = None  # the technician cleared the jam
    printer.print_bytes(b"next\n")
    assert dev.wait_until(lambda got: got.endswith(b"next\n"))


def test_file_backend_appends_exact_bytes(tmp_path, ticket):
    path = tmp_path / "out.bin"
    printer = TicketPrinter(FileBackend(str(path)))
    first = printer.print_document(ticket)
    printer.print_bytes(b"\x1b@again\n")
    assert path.read_bytes() == first + b"\x1b@again\n"
    status = printer.status()  # a file cannot answer: never "paper ok"
    assert (status.online, status.paper) == (None, "unknown")
    assert "paper check not available" in status.detail


def test_file_backend_bad_path(tmp_path):
    with pytest.raises(PrinterError, match="check the path in the config"):
        FileBackend(str(tmp_path / "missing-dir" / "out.bin")).write(b"x")


def test_sim_backend_faults():
    sim = SimBackend()
    sim.write(b"abc")
    sim.fail_after(5)
    sim.write(b"12")
    with pytest.raises(PrinterError, match="after 3 of 10 bytes"):
        sim.write(b"0123456789")
    assert bytes(sim.received) == b"abc12012"
    sim.write(b"ok")  # the fault was one-shot
    sim.paper = "near_end"
    assert sim.status().paper == "near_end"
    sim.answers = False
    assert sim.status() == PrinterStatus(None, "unknown", "simulated printer does not answer")
    sim.connected = False
    with pytest.raises(PrinterError):
        sim.write(b"x")


def test_worker_prints_in_order_and_reports_from_its_thread():
    sim = SimBackend()
    worker = PrinterWorker(TicketPrinter(sim)).start()
    done = []
    threads = set()

    def on_done(ok, error):
        threads.add(threading.current_thread().name)
        done.append((ok, error))

    futures = [worker.submit(f"job{i}\n".encode(), on_done) for i in range(5)]
    sim_fault = worker.submit(b"x", on_done)
    for f in [*futures, sim_fault]:
        f.result(5)  # every job before the unplug is through before the cable goes
    sim.connected = False
    fail = worker.submit(b"lost", on_done)
    with pytest.raises(PrinterError):
        fail.result(5)
    assert sim.jobs[:5] == [f"job{i}\n".encode() for i in range(5)]
    assert done[:6] == [(True, None)] * 6
    assert done[6][0] is False and "unplugged" in done[6][1]
    assert threads == {"printer-worker"}
    worker.close()


def test_worker_status_goes_through_the_worker(pty_device, ticket):
    dev = pty_device(answers={1: ONLINE, 4: PAPER_OUT})
    worker = PrinterWorker(TicketPrinter(SerialBackend(dev.path))).start()
    seen = []
    job = worker.submit(ticket)
    status = worker.check_status(0.5, on_done=seen.append).result(5)
    with pytest.raises(PrinterError, match="paper out"):  # asked again after the job
        job.result(5)
    assert status.paper == "out" and seen == [status]
    assert dev.wait_for(len(encode(ticket))) == encode(ticket)
    worker.close()
    with pytest.raises(RuntimeError):
        worker.submit(b"x")


def test_worker_survives_a_callback_that_raises():
    sim = SimBackend()
    worker = PrinterWorker(TicketPrinter(sim)).start()

    def bad(ok, error):
        raise ValueError("ui bug")

    worker.submit(b"a", bad).result(5)
    worker.submit(b"b").result(5)
    assert sim.jobs == [b"a", b"b"]
    worker.close()

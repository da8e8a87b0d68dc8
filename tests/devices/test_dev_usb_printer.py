"""The usb backend (/dev/usb/lp*), with real nodes standing in for usblp.

A pty slave stands in for a bidirectional printer (it is read and written
like the usblp node, non-blocking, and its far end answers DLE EOT); a plain
file for a one-way printer (nothing ever comes back)."""

import os

import pytest

from devices.printer import PrinterError, PrinterWorker, TicketPrinter
from devices.usb_printer import UsbBackend

ONLINE, PAPER_OK, PAPER_NEAR_END, PAPER_OUT = 0x12, 0x12, 0x1E, 0x72


def test_bidirectional_printer_gets_the_job_and_answers(pty_device, ticket):
    dev = pty_device(answers={1: ONLINE, 4: PAPER_NEAR_END})
    printer = TicketPrinter(UsbBackend(dev.path), status_timeout=0.5)
    sent = printer.print_document(ticket)
    assert dev.wait_for(len(sent)) == sent
    status = printer.status(0.5)
    assert (status.online, status.paper) == (True, "near_end")
    printer.close()


def test_one_way_printer_is_not_available_never_paper_ok(tmp_path):
    node = tmp_path / "lp0"
    node.write_bytes(b"")
    printer = TicketPrinter(UsbBackend(str(node)), status_timeout=0.3)
    printer.print_bytes(b"\x1b@ticket\n")  # the job goes through; "unknown" after it is not a fault
    assert node.read_bytes().startswith(b"\x1b@ticket\n")
    status = printer.status(0.3)
    assert (status.online, status.paper) == (None, "unknown")
    assert "paper check not available" in status.detail and "one-way" in status.detail
    assert status.can_print
    printer.close()


def test_printer_that_stops_taking_data_fails_cleanly_and_recovers(pty_device):
    dev = pty_device(stall_after=1000)  # a jam: usblp would block for ever
    backend = UsbBackend(dev.path, write_timeout=0.3)
    worker = PrinterWorker(TicketPrinter(backend, status_timeout=0.1)).start()
    with pytest.raises(PrinterError, match=r"stopped taking data after \d+ of 400000 bytes.*reprinted"):
        worker.submit(b"A" * 400_000).result(10)
    dev.stall_after = None
    worker.submit(b"next\n").result(10)
    assert dev.wait_until(lambda got: got.endswith(b"next\n"))
    worker.close()


def test_paper_out_mid_job_is_a_failed_job(pty_device, ticket):
    dev = pty_device(answers={1: ONLINE, 4: PAPER_OK}, paper_out_after=150)  # the ticket is 274 bytes
    printer = TicketPrinter(UsbBackend(dev.path), status_timeout=0.5)
    with pytest.raises(PrinterError, match="paper out"):
        printer.print_document(ticket)
    printer.close()


def test_missing_node_and_no_permission_say_what_to_do(tmp_path):
    missing = UsbBackend(str(tmp_path / "lp9"))
    with pytest.raises(PrinterError, match="not found: check that the printer is on"):
        missing.write(b"x")
    assert missing.status(0.1).online is False
    if os.geteuid() == 0:
        pytest.skip("root opens any file: the permission message cannot be provoked")
    locked = tmp_path / "lp1"
    locked.write_bytes(b"")
    locked.chmod(0)
    with pytest.raises(PrinterError, match="lp group"):
        UsbBackend(str(locked)).write(b"x")


def test_unplugged_mid_life_is_reported_and_reopened(pty_device, tmp_path):
    link = tmp_path / "kiosk-printer"
    first = pty_device(answers={1: ONLINE, 4: PAPER_OK})
    os.symlink(first.path, link)
    backend = UsbBackend(str(link), write_timeout=1.0)
    backend.write(b"one\n")
    assert first.wait_for(4) == b"one\n"
    first.unplug()
    with pytest.raises(PrinterError, match="check the USB cable"):
        backend.write(b"lost\n")
    second = pty_device(answers={1: ONLINE, 4: PAPER_OUT})
    os.unlink(link)
    os.symlink(second.path, link)
    assert backend.status(0.5).paper == "out"
    backend.close()

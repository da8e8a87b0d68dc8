"""Flow control on the serial backend, against a printer that pauses.

Without flow control a paused printer drops what it cannot hold while
write() reports success; with XON/XOFF the port stops sending instead, and
a pause longer than printer.write_timeout is a clean failure, never a hang."""

import termios
import threading

import pytest

from devices.printer import PrinterError, PrinterWorker, SerialBackend, TicketPrinter
from tests.helpers import wait_until

JOB = bytes(range(256)).replace(b"\x10", b"\x11") * 80  # 20 KB, no DLE (no status query inside)


def print_while_paused(dev, flow, pause_seconds, job_bytes=JOB):
    """Pause the printer, send a job, resume `pause_seconds` after the job started arriving."""
    dev.pause()
    backend = SerialBackend(dev.path, write_timeout=5.0, flow_control=flow)
    done = threading.Event()
    result = {}

    def job():
        try:
            backend.write(job_bytes)
        except PrinterError as exc:
            result["error"] = exc
        done.set()

    threading.Thread(target=job, daemon=True).start()
    assert wait_until(lambda: len(dev.buffer) > 0 or dev.lost > 0)
    done.wait(pause_seconds)  # the printer's pause: resumes early only if the job already finished
    dev.resume()
    assert done.wait(10)
    backend.close()
    return result.get("error")


def test_without_flow_control_a_pause_loses_bytes_and_nobody_knows(busy_printer):
    # The field problem flow control fixes; the next test is the same pause with XON/XOFF.
    dev = busy_printer(flow="none", capacity=4096)
    # More than the pty's own kernel buffer holds: the write can only finish by the
    # paused printer reading (and dropping), however late a loaded machine runs it.
    big = JOB * 8
    assert print_while_paused(dev, "none", 1.0, big) is None  # write() said success...
    assert dev.lost > 0 and len(dev.received) < len(big)  # ...but bytes are gone


def test_with_xonxoff_a_pause_loses_nothing(busy_printer):
    dev = busy_printer(flow="xonxoff", capacity=4096)
    assert print_while_paused(dev, "xonxoff", 1.0) is None
    assert wait_until(lambda: len(dev.received) == len(JOB)), (len(dev.received), dev.lost, dev.xoffs)
    assert dev.lost == 0 and bytes(dev.received) == JOB
    assert dev.xoffs == 1 and dev.xoff_at is None  # XOFF held the port back, XON released it


def test_a_pause_longer_than_the_write_timeout_is_a_clean_failure(busy_printer):
    dev = busy_printer(flow="xonxoff", capacity=4096)
    dev.pause()  # and never resumes: cover open, nobody there
    worker = PrinterWorker(
        TicketPrinter(SerialBackend(dev.path, write_timeout=0.5, flow_control="xonxoff"), status_timeout=0.1)
    ).start()
    big = JOB * 20  # more than the kernel's buffers hold, so the write itself is held back
    with pytest.raises(PrinterError, match=r"stopped taking data after \d+ of 409600 bytes .*reprinted"):
        worker.submit(big).result(10)
    assert dev.lost == 0  # failed, but nothing was sent into the void
    worker.close()


def test_a_printer_holding_the_line_after_the_job_fails_the_job(busy_printer):
    # The whole job fitted in the buffers before XOFF, then the line stays held:
    # even the status query after the job cannot be sent.
    dev = busy_printer(flow="xonxoff", capacity=4096)
    dev.pause()
    printer = TicketPrinter(SerialBackend(dev.path, write_timeout=0.5, flow_control="xonxoff"), status_timeout=0.1)
    try:
        printer.backend.write(JOB)
    except PrinterError:
        pass  # the kernel's buffers decide whether the write itself is held; the query is what is tested
    assert wait_until(lambda: dev.xoffs == 1)  # the printer's reader may run late on a loaded machine
    status = printer.status(0.1)
    assert status.online is False and status.fault
    assert "holding the line" in status.detail and "paper jam" in status.detail
    printer.close()


@pytest.mark.parametrize("flow", ["rtscts", "dsrdtr"])
def test_hardware_flow_control_opens_and_prints(pty_device, flow):
    # A pty has no modem lines, so only the setting is exercised here, not the holding back.
    dev = pty_device()
    backend = SerialBackend(dev.path, flow_control=flow)
    backend.write(b"\x1b@hello\n")
    assert dev.wait_for(8) == b"\x1b@hello\n"
    assert getattr(backend._serial, flow) is True
    backend.close()


def test_rtscts_sets_the_kernels_hardware_flow_control_and_only_then(pty_device):
    """What the tty driver is told, one level below pyserial: CRTSCTS on, software flow off.
    With CRTSCTS a UART's driver stops sending while the printer holds CTS low."""
    dev = pty_device()
    for flow, crtscts, ixon in (("rtscts", True, False), ("xonxoff", False, True), ("none", False, False)):
        backend = SerialBackend(dev.path, flow_control=flow)
        backend.write(b"\x1b@")
        iflag, _, cflag, *_ = termios.tcgetattr(backend._serial.fd)
        assert (bool(cflag & termios.CRTSCTS), bool(iflag & termios.IXON)) == (crtscts, ixon), flow
        backend.close()


def test_a_printer_that_never_raises_cts_is_a_clean_failure_then_recovers(pty_device):
    """CTS that never asserts, as far as a pty can play it: a pty has no modem lines, so the
    emulator stops the line's output the way the tty layer stops it for a held line (tcflow
    TCOOFF: the same stop XOFF causes). The job fails within write_timeout, naming how far it
    got, and nothing is lost; once the line is released the next job prints whole."""
    dev = pty_device()
    backend = SerialBackend(dev.path, write_timeout=0.5, flow_control="rtscts")
    backend.write(b"\x1b@")  # open the port
    assert dev.wait_for(2) == b"\x1b@"
    termios.tcflow(dev.slave, termios.TCOOFF)  # the printer holds the line: nothing leaves
    big = JOB * 20
    with pytest.raises(PrinterError, match=r"stopped taking data after \d+ of 409600 bytes .*reprinted"):
        backend.write(big)
    assert len(dev.received) == 2  # nothing went out while the line was held
    termios.tcflow(dev.slave, termios.TCOON)
    backend.write(b"\x1b@after\n")
    assert dev.wait_until(lambda b: b.endswith(b"\x1b@after\n"))
    # The failed job's queued rest was discarded, not dribbled out after the release.
    assert bytes(dev.received) == b"\x1b@\x1b@after\n"
    backend.close()


def test_unknown_flow_control_is_refused():
    with pytest.raises(ValueError, match="flow_control must be one of"):
        SerialBackend("/dev/null", flow_control="hardware")

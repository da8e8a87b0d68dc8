"""Status you can trust: DLE EOT answers among the other bytes a real line carries.

Each printer here is a pty emulator playing what halls' printers do: answer
late, answer twice, send junk or automatic-status (ASB) bursts, run out of
paper in the middle of a ticket."""

import pytest

from devices.printer import PrinterError, PrinterWorker, SerialBackend, TicketPrinter
from devices.printer_status import status_byte_valid
from tests.helpers import wait_until

ONLINE, OFFLINE = 0x12, 0x1A
PAPER_OK, PAPER_NEAR_END, PAPER_OUT = 0x12, 0x1E, 0x72
# An ASB burst (Epson layout): byte 1 0xx1xx00, bytes 2-4 0xx0xxxx; here "cover open, paper near end".
ASB = bytes([0x30, 0x00, 0x0C, 0x00])
XOFF, XON = 0x13, 0x11


def test_no_asb_or_flow_control_byte_passes_for_an_answer():
    assert not any(status_byte_valid(b) for b in (*ASB, 0x10, 0x14, 0x00, 0x0F, XON, XOFF, 0xFF))
    assert all(status_byte_valid(b) for b in (ONLINE, OFFLINE, PAPER_NEAR_END, PAPER_OUT))


def test_stray_bytes_before_the_answer_are_skipped(pty_device):
    # Junk that fails the fixed bits, then the real paper-end answer.
    dev = pty_device(answers={1: bytes([0xFF, 0x00, ONLINE]), 4: bytes([XOFF, 0x80, PAPER_OUT])})
    status = SerialBackend(dev.path).status(timeout=1.0)
    assert (status.online, status.paper) == (True, "out")


def test_asb_bursts_do_not_hide_the_answer(pty_device):
    dev = pty_device(answers={1: ASB + ASB + bytes([ONLINE]), 4: ASB + bytes([PAPER_NEAR_END]) + ASB})
    backend = SerialBackend(dev.path)
    assert backend.status(timeout=1.0).paper == "near_end"
    dev.send(ASB * 3)  # unsolicited bursts waiting on the line before the next query
    dev.answers = {1: ONLINE, 4: PAPER_OK}
    status = backend.status(timeout=1.0)
    assert (status.online, status.paper) == (True, "ok")
    backend.close()


def test_only_junk_is_unknown_and_says_so(pty_device):
    dev = pty_device(answers={1: ASB + bytes([0xFF])})
    status = SerialBackend(dev.path).status(timeout=0.3)
    assert (status.online, status.paper) == (None, "unknown")
    assert "not status answers" in status.detail
    assert status.can_print  # unknown is not paper out


def test_an_answer_sent_twice_is_not_taken_for_the_next_one(pty_device):
    # Reading one byte per query took the second copy of "online" (0x12) as
    # the paper answer: a printer out of paper read as "paper ok".
    dev = pty_device(answers={1: bytes([ONLINE, ONLINE]), 4: bytes([PAPER_OUT, PAPER_OUT])})
    backend = SerialBackend(dev.path)
    for _ in range(2):
        status = backend.status(timeout=1.0)
        assert (status.online, status.paper) == (True, "out")
    backend.close()


def test_a_late_answer_within_the_configured_timeout_counts(pty_device):
    dev = pty_device(answers={1: ONLINE, 4: PAPER_NEAR_END}, answer_delay=0.3)
    status = SerialBackend(dev.path).status(timeout=1.0)
    assert status.paper == "near_end"


def test_an_answer_after_the_timeout_is_unknown_and_not_read_later(pty_device):
    dev = pty_device(answers={1: ONLINE, 4: PAPER_OK}, answer_delay=0.4)
    backend = SerialBackend(dev.path)
    first = backend.status(timeout=0.1)
    assert (first.online, first.paper) == (None, "unknown")
    assert "within 0.1 s" in first.detail and "status_timeout" in first.detail
    assert wait_until(lambda: dev.answered == 1)  # the late "online/ok" byte is now waiting on the line
    dev.answer_delay = 0
    dev.answers = {1: ONLINE, 4: PAPER_OUT}
    second = backend.status(timeout=1.0)
    assert second.paper == "out"  # not the stale 0x12 read as "paper ok"
    backend.close()


def test_paper_out_mid_job_fails_the_job(pty_device, ticket):
    dev = pty_device(answers={1: ONLINE, 4: PAPER_OK}, paper_out_after=150)  # the ticket is 274 bytes
    printer = TicketPrinter(SerialBackend(dev.path), status_timeout=0.5)
    assert printer.status(0.5).paper == "ok"  # the check before issuing passes
    with pytest.raises(PrinterError, match=r"reported a fault right after the job.*paper out.*reprint"):
        printer.print_document(ticket)
    assert len(dev.received) > 150  # every byte was taken: only asking again shows the fault
    printer.close()


def test_a_job_on_a_printer_that_never_answers_counts_as_printed(pty_device):
    dev = pty_device(answers={})
    worker = PrinterWorker(TicketPrinter(SerialBackend(dev.path), status_timeout=0.1)).start()
    assert worker.submit(b"\x1b@hello\n").result(5) is None
    assert dev.queries[-1] == 1  # it did ask after the job
    worker.close()


class NoisyPrinter:
    """A printer on the wrong baud rate: what it says arrives as a stream of noise,
    asked or not. Among the noise, bytes with the fixed bits of a status answer
    (0x72: "paper out", 0x12: "ok") come by at random."""

    def __init__(self, pty_device):
        import threading

        self.dev = pty_device()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._spew, daemon=True)
        self.thread.start()

    def _spew(self):
        while not self.stop.is_set():
            try:
                self.dev.send(bytes([0xFF, PAPER_OUT, 0x00, 0xE7, ONLINE, 0x80]))
            except OSError:
                return
            self.stop.wait(0.005)

    def close(self):
        self.stop.set()
        self.thread.join(2)


def test_a_line_of_noise_is_unknown_not_paper_out(pty_device):
    noisy = NoisyPrinter(pty_device)
    backend = SerialBackend(noisy.dev.path)
    try:
        status = backend.status(timeout=0.2)
        assert (status.online, status.paper) == (None, "unknown")
        assert "without being asked" in status.detail and "printer.baudrate" in status.detail
        assert status.can_print  # unknown: the config's on_unknown_status decides, not the noise
        assert backend.query(4, timeout=0.2) is None
    finally:
        noisy.close()
        backend.close()

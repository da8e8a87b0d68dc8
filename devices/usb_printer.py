"""USB printer-class printers (/dev/usb/lp*, the kernel's usblp driver).

The usual USB mode of SNBC, Xprinter, Gprinter and HPRT kiosk printers.
pyserial cannot open these nodes (they are not ttys), and usblp never times
out a write by itself: a jammed printer would hold a blocking write(), and the
printer thread with it, for good.  So the node is opened non-blocking and every
write waits with poll() against our own deadline.

Status: a bidirectional printer answers DLE EOT through read(); a one-way
printer cannot be read at all (usblp refuses the read, EINVAL) - then the paper
check is "not available", which is "unknown", never "paper ok".
"""

from __future__ import annotations

import errno
import os
import select
import time

from devices.printer import Backend, PrinterError, PrinterStatus
from devices.printer_status import NoisyLine, ask, read_status


class OneWay(Exception):
    """The device cannot be read: no status can come back."""


class _UsbLink:
    """The StatusLink of an open usblp node."""

    def __init__(self, backend: UsbBackend, fd: int):
        self.backend = backend
        self.fd = fd

    def read_some(self, timeout: float) -> bytes:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        if not poller.poll(max(0, int(timeout * 1000))):
            return b""
        try:
            data = os.read(self.fd, 64)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # usblp: the printer has no way back
                raise OneWay from exc
            raise
        if not data:  # end of file: nothing can ever be read from this node
            raise OneWay
        return data

    def send(self, data: bytes) -> None:
        self.backend._write_all(self.fd, data)


class UsbBackend(Backend):
    """ESC/POS to a USB printer-class node, every write bounded by `write_timeout`.

    Open it by a stable name (the udev rule's /dev/kiosk-printer): lp0 and lp1
    swap when two USB printers or a replug change the order.  The node is
    closed on any error and opened again on the next request."""

    def __init__(self, path: str, write_timeout: float = 5.0):
        self.path = path
        self.write_timeout = write_timeout
        self.description = f"USB printer {path}"
        self._fd: int | None = None
        self.one_way = False  # learnt on the first status query

    def _open(self) -> int:
        if self._fd is not None:
            return self._fd
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as exc:
            raise PrinterError(self._open_advice(exc)) from exc
        return self._fd

    def _open_advice(self, exc: OSError) -> str:
        if exc.errno == errno.ENOENT:
            return (
                f"USB printer {self.path} not found: check that the printer is on and its USB cable, "
                "and the udev rule (/dev/usb/lp* appears only while the printer is connected)"
            )
        if exc.errno == errno.EACCES:
            return f"no permission to open USB printer {self.path}: add the kiosk user to the lp group"
        if exc.errno == errno.EBUSY:
            return f"USB printer {self.path} is busy: another program (a print spooler such as CUPS?) holds it"
        return f"cannot open USB printer {self.path} ({exc}): check the cable, the power and printer.port"

    def _drop(self) -> None:
        self.one_way = False  # what comes back after a replug may be another printer
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:  # a vanished device; nothing left to close
                pass
            self._fd = None

    def _write_all(self, fd: int, data: bytes) -> int:
        """Write everything; TimeoutError if the printer takes nothing for write_timeout s."""
        view = memoryview(data)
        sent = 0
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        deadline = time.monotonic() + self.write_timeout
        while sent < len(data):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(sent)
            if not poller.poll(max(1, int(left * 1000))):
                continue
            try:
                n = os.write(fd, view[sent:])
            except BlockingIOError:
                continue
            if n:
                sent += n
                deadline = time.monotonic() + self.write_timeout  # the timeout is for no progress
        return sent

    def write(self, data: bytes) -> None:
        fd = self._open()
        try:
            self._write_all(fd, data)
        except TimeoutError as exc:
            self._drop()
            raise PrinterError(
                f"USB printer {self.path} stopped taking data after {exc.args[0]} of {len(data)} bytes "
                f"(no progress for {self.write_timeout:g} s): check for a paper jam, an open cover or "
                "the USB cable; the ticket can be reprinted"
            ) from exc
        except OSError as exc:
            self._drop()
            raise PrinterError(
                f"USB printer {self.path} failed during a {len(data)}-byte job ({exc}): check the USB cable "
                "and the printer power; the ticket can be reprinted"
            ) from exc

    def status(self, timeout: float = 1.0) -> PrinterStatus:
        try:
            fd = self._open()
        except PrinterError as exc:
            return PrinterStatus(False, "unknown", str(exc))
        if self.one_way:
            return self._not_available()
        try:
            return read_status(_UsbLink(self, fd), timeout, self.description)
        except OneWay:
            self.one_way = True
            return self._not_available()
        except TimeoutError:
            self._drop()
            return PrinterStatus(
                None, "unknown", f"USB printer {self.path} did not take the status query: check for a jam"
            )
        except OSError as exc:
            self._drop()
            return PrinterStatus(False, "unknown", f"USB printer {self.path} lost ({exc}): check the USB cable")

    def query(self, n: int, timeout: float = 1.0) -> int | None:
        fd = self._open()
        if self.one_way:
            return None
        try:
            return ask(_UsbLink(self, fd), n, timeout)[0]
        except NoisyLine:
            return None  # no answer that can be told from the noise
        except OneWay:
            self.one_way = True
            return None

    def _not_available(self) -> PrinterStatus:
        return PrinterStatus(
            None,
            "unknown",
            f"paper check not available: USB printer {self.path} is one-way (nothing can be read back); "
            "check the paper by eye, or use a bidirectional printer or its serial port",
        )

    def close(self) -> None:
        self._drop()

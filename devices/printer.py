"""Ticket printer: backends (serial, file, sim), paper status, a worker thread.

A backend is tiny — `write(data)`, `status(timeout)`, `close()` — like the
python-escpos printer classes; `TicketPrinter` adds the ESC/POS encoding and
`PrinterWorker` gives the printer to one thread, so a slow or dead printer
never blocks the UI and two threads never talk on the port at once.

Every `PrinterError` message says what a technician should check, because it
ends up on the technician screen and in the log, not in a developer's hands.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import termios
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from devices.escpos import DEFAULT_PROFILE, Document, PrinterProfile, encode
from devices.printer_status import (  # noqa: F401  (re-exported: the printer's whole interface is here)
    DLE_EOT,
    PAPER_STATES,
    NoisyLine,
    PrinterStatus,
    ask,
    parse_online,
    parse_paper,
    read_status,
)

log = logging.getLogger(__name__)

FLOW_CONTROLS = ("none", "xonxoff", "rtscts", "dsrdtr")


class PrinterError(Exception):
    """A print or status request failed; the message tells a technician what to do."""


class Backend:
    """Where printer bytes go. Subclasses implement write/status/close."""

    description = "printer"

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def status(self, timeout: float = 1.0) -> PrinterStatus:
        raise NotImplementedError

    def query(self, n: int, timeout: float = 1.0) -> int | None:
        """One DLE EOT n answer byte, or None (no answer, or a backend that cannot read). For the probe."""
        return None

    def close(self) -> None:
        pass


class _SerialLink:
    """The StatusLink of an open pyserial port."""

    def __init__(self, port):
        self.port = port

    def read_some(self, timeout: float) -> bytes:
        self.port.timeout = timeout
        return self.port.read(max(1, self.port.in_waiting))

    def send(self, data: bytes) -> None:
        self.port.write(data)


class SerialBackend(Backend):
    """ESC/POS over a serial port (USB-serial adapter or a native UART).

    The port is opened lazily and closed on any error, then opened again on
    the next request: a USB-serial printer that was unplugged comes back
    without a restart.  Open it by a stable name (a udev symlink such as
    /dev/kiosk-printer or /dev/serial/by-id/...) because after a replug the
    kernel may give it another ttyUSB number.

    Flow control matters: a printer pauses while its head heats, its cover is
    open or its paper runs out, and without XON/XOFF or RTS/CTS the bytes sent
    meanwhile are dropped by the printer while write() reports success.  With
    flow control the port stops sending instead; `write_timeout` bounds how
    long it may stay stopped, per chunk and for the final drain, so a jam is a
    clean failure rather than a printer thread blocked for good."""

    CHUNK = 256  # write in chunks so a failure can say how far the job got

    def __init__(
        self,
        port: str,
        baudrate: int = 9600,
        timeout: float = 1.0,
        write_timeout: float = 5.0,
        flow_control: str = "none",
    ):
        if flow_control not in FLOW_CONTROLS:
            raise ValueError(f"flow_control must be one of {FLOW_CONTROLS}")
        self.port = port
        self.baudrate = baudrate
        self.timeout = timeout
        self.write_timeout = write_timeout
        self.flow_control = flow_control
        self.description = f"printer on {port}"
        self._serial = None

    def _open(self):
        import serial  # pyserial; imported here so the sim/file backends need nothing

        if self._serial is not None:
            return self._serial
        try:
            # exclusive: an advisory flock, but it stops a second kiosk process
            # (a forgotten print-test) from interleaving bytes with ours
            self._serial = serial.Serial(
                self.port,
                self.baudrate,
                timeout=self.timeout,
                write_timeout=self.write_timeout,
                xonxoff=self.flow_control == "xonxoff",
                rtscts=self.flow_control == "rtscts",
                dsrdtr=self.flow_control == "dsrdtr",
                exclusive=True,
            )
        except (serial.SerialException, OSError) as exc:
            raise PrinterError(self._open_advice(exc)) from exc
        return self._serial

    def _open_advice(self, exc: Exception) -> str:
        code = getattr(exc, "errno", None)
        if code == errno.ENOENT or not os.path.exists(self.port):
            return f"printer port {self.port} not found: check the USB cable and the udev rule"
        if code == errno.EACCES:
            return f"no permission to open printer port {self.port}: add the kiosk user to the dialout group"
        if code in (errno.EBUSY, errno.EAGAIN):
            return (
                f"printer port {self.port} is busy: another program holds it (a second kiosk "
                'process, or ModemManager: set ENV{ID_MM_DEVICE_IGNORE}="1" in the udev rule)'
            )
        if code == errno.ENOTTY:
            return (
                f"{self.port} is not a serial port (a USB printer-class device such as /dev/usb/lp0?): "
                'set printer.backend = "usb" for it'
            )
        return f"cannot open printer port {self.port} ({exc}): check the cable, the power and the port in the config"

    def _drop(self, discard: bool = True) -> None:
        """Forget the port after an error; the next request reopens it."""
        if self._serial is not None:
            if discard:
                try:
                    # Discard what is still queued: closing a UART waits for its output to
                    # drain (up to 30 s), and after a failed job it is half a ticket anyway.
                    self._serial.reset_output_buffer()
                except Exception:  # a vanished device cannot be flushed
                    pass
            try:
                self._serial.close()
            except Exception:  # closing a vanished device may fail too; nothing to keep
                pass
            self._serial = None

    def _drain(self, port) -> None:
        """Wait until the output queue is empty, at most write_timeout.

        Not pyserial's flush(): that is tcdrain(), which waits for ever on a
        line the printer holds stopped (XOFF, CTS low)."""
        deadline = time.monotonic() + self.write_timeout
        while port.out_waiting:
            if time.monotonic() > deadline:
                import serial

                raise serial.SerialTimeoutException("drain timed out")
            time.sleep(0.005)  # TIOCOUTQ has no wait; the queue empties at line speed

    def write(self, data: bytes) -> None:
        import serial

        port = self._open()
        sent = 0
        try:
            for start in range(0, len(data), self.CHUNK):
                sent += port.write(data[start : start + self.CHUNK]) or 0
            self._drain(port)
        except serial.SerialTimeoutException as exc:
            self._drop()
            raise PrinterError(
                f"printer on {self.port} stopped taking data after {sent} of {len(data)} bytes "
                f"(no progress for {self.write_timeout:g} s): check for a paper jam, an open cover "
                "or a lost connection; the ticket can be reprinted"
            ) from exc
        except (serial.SerialException, OSError, termios.error) as exc:
            self._drop()
            raise PrinterError(
                f"printer on {self.port} failed after {sent} of {len(data)} bytes ({exc}): "
                "check the USB cable and the printer power; the ticket can be reprinted"
            ) from exc

    def status(self, timeout: float = 1.0) -> PrinterStatus:
        import serial

        try:
            port = self._open()
        except PrinterError as exc:
            return PrinterStatus(False, "unknown", str(exc))
        try:
            port.reset_input_buffer()  # what is already waiting is not an answer to this query
            return read_status(_SerialLink(port), timeout, self.description)
        except serial.SerialTimeoutException:
            # Flow control holds the line: the query itself could not be sent.
            self._drop()
            return PrinterStatus(
                False,
                "unknown",
                f"printer on {self.port} is holding the line and took no status query for "
                f"{self.write_timeout:g} s: check for a paper jam or an open cover",
            )
        except (serial.SerialException, OSError, termios.error) as exc:
            # termios.error: flushing a tty whose USB device just went away.
            self._drop()
            return PrinterStatus(
                False, "unknown", f"printer on {self.port} lost ({exc}): check the USB cable and the power"
            )

    def query(self, n: int, timeout: float = 1.0) -> int | None:
        import serial

        port = self._open()
        try:
            port.reset_input_buffer()
            return ask(_SerialLink(port), n, timeout)[0]
        except NoisyLine:
            return None  # no answer that can be told from the noise
        except (serial.SerialException, OSError, termios.error) as exc:
            self._drop()
            raise PrinterError(f"printer on {self.port} lost ({exc}): check the USB cable and the power") from exc

    def clear_to_send(self) -> bool | None:
        """The CTS line as the printer drives it (None: the port has no modem lines, e.g. a pty)."""
        port = self._open()
        try:
            return bool(port.cts)
        except (OSError, termios.error, Exception):  # pyserial raises its own on ports without modem lines
            return None

    def close(self) -> None:
        self._drop(discard=False)  # a finished job stays whole


class FileBackend(Backend):
    """Appends the exact bytes to a file: for bench checks and the preview tool."""

    def __init__(self, path: str):
        self.path = path
        self.description = f"printer file {path}"

    def write(self, data: bytes) -> None:
        try:
            with open(self.path, "ab") as f:
                f.write(data)
        except OSError as exc:
            raise PrinterError(f"cannot write printer file {self.path} ({exc}): check the path in the config") from exc

    def status(self, timeout: float = 1.0) -> PrinterStatus:
        # A file cannot answer: whatever is behind the path (a spool, a device
        # node), "ok" here would be a claim nobody checked.
        return PrinterStatus(None, "unknown", f"paper check not available: file backend writing to {self.path}")


class SimBackend(Backend):
    """An in-memory printer for the demo and tests, with settable faults.

    `paper`, `online`, `answers` (False = never answers status queries) and
    `connected` (False = unplugged) can be changed at any time;
    `fail_after(n)` makes the job that reaches n more bytes fail midway,
    keeping the bytes "printed" before the fault, like a real jam."""

    description = "simulated printer"

    def __init__(self, paper: str = "ok", online: bool = True, seconds_per_byte: float = 0.0):
        if paper not in PAPER_STATES:
            raise ValueError(f"paper must be one of {PAPER_STATES}")
        self.paper = paper
        self.online = online
        self.answers = True
        self.connected = True
        self.seconds_per_byte = seconds_per_byte  # 1/960 imitates 9600 baud
        self.received = bytearray()
        self.jobs: list[bytes] = []
        self._fail_in: int | None = None

    def fail_after(self, n: int) -> None:
        self._fail_in = n

    def write(self, data: bytes) -> None:
        if not self.connected:
            raise PrinterError("simulated printer unplugged: check the USB cable and the udev rule")
        if self._fail_in is not None and len(data) > self._fail_in:
            kept, self._fail_in = self._fail_in, None
            self.received += data[:kept]
            raise PrinterError(
                f"simulated printer failed after {kept} of {len(data)} bytes: "
                "check the USB cable and the printer power; the ticket can be reprinted"
            )
        if self._fail_in is not None:
            self._fail_in -= len(data)
        if self.seconds_per_byte:
            time.sleep(len(data) * self.seconds_per_byte)
        self.received += data
        self.jobs.append(bytes(data))

    def status(self, timeout: float = 1.0) -> PrinterStatus:
        if not self.connected:
            return PrinterStatus(False, "unknown", "simulated printer unplugged")
        if not self.answers:
            return PrinterStatus(None, "unknown", "simulated printer does not answer")
        return PrinterStatus(self.online, self.paper, f"simulated: paper {self.paper}")


class TicketPrinter:
    """A printer = a backend + the profile its documents are encoded with."""

    def __init__(self, backend: Backend, profile: PrinterProfile = DEFAULT_PROFILE, status_timeout: float = 1.0):
        self.backend = backend
        self.profile = profile
        self.status_timeout = status_timeout
        self._lock = threading.Lock()  # the worker is the normal user; the CLI may call directly

    def print_bytes(self, data: bytes) -> None:
        """Send a job, then ask the printer again: all bytes taken is not a ticket printed.

        A printer that ran out of paper or jammed while printing took the
        bytes and reports the fault only when asked, so the job fails here
        and the ticket is kept as failed, to be reprinted.  A printer that
        does not answer ("unknown") cannot tell us; the job counts as printed."""
        with self._lock:
            self.backend.write(bytes(data))
            after = self.backend.status(self.status_timeout)
        if after.fault:
            raise PrinterError(
                f"{self.backend.description} reported a fault right after the job ({after.detail}): "
                "the ticket may be cut short; fix the printer and reprint the ticket"
            )

    def print_document(self, doc: Document) -> bytes:
        data = encode(doc, self.profile)
        self.print_bytes(data)
        return data

    def status(self, timeout: float = 1.0) -> PrinterStatus:
        with self._lock:
            return self.backend.status(timeout)

    def close(self) -> None:
        with self._lock:
            self.backend.close()


_STOP = object()


class PrinterWorker:
    """The one thread that talks to the printer.

    Jobs and status checks run in order on the worker thread.  Callbacks are
    called *on the worker thread*: the app must hand them to the UI thread
    (Kivy `Clock.schedule_once`) before touching widgets."""

    def __init__(self, printer: TicketPrinter, name: str = "printer-worker"):
        self.printer = printer
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> PrinterWorker:
        """Run the worker thread; jobs submitted before wait in the queue until then."""
        if not self._thread.is_alive() and not self._closed:
            self._thread.start()
        return self

    def submit(self, data: bytes | Document, on_done: Callable[[bool, str | None], None] | None = None) -> Future:
        """Queue a print job (bytes, or a Document encoded with the printer's profile).

        on_done(ok, error) is called when it finished; the Future gives the
        same outcome (None, or the PrinterError) to a caller that waits."""
        return self._put("print", data, on_done)

    def check_status(self, timeout: float = 1.0, on_done: Callable[[PrinterStatus], None] | None = None) -> Future:
        """Queue a status check; Future[PrinterStatus]. It waits behind queued jobs."""
        return self._put("status", timeout, on_done)

    def _put(self, kind, arg, on_done) -> Future:
        if self._closed:
            raise RuntimeError("printer worker is closed")
        future: Future = Future()
        self._queue.put((kind, arg, on_done, future))
        return future

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            kind, arg, on_done, future = item
            if not future.set_running_or_notify_cancel():
                continue
            if kind == "status":
                self._run_status(arg, on_done, future)
            else:
                self._run_print(arg, on_done, future)

    def _run_status(self, timeout, on_done, future) -> None:
        try:
            status = self.printer.status(timeout)
        except Exception as exc:  # a backend bug must not kill the worker
            log.exception("printer status check failed")
            status = PrinterStatus(None, "unknown", f"status check failed: {exc}")
        future.set_result(status)
        self._call(on_done, status)

    def _run_print(self, data, on_done, future) -> None:
        try:
            if isinstance(data, Document):
                self.printer.print_document(data)
            else:
                self.printer.print_bytes(data)
        except PrinterError as exc:
            log.warning("print failed: %s", exc)
            future.set_exception(exc)
            self._call(on_done, False, str(exc))
        except Exception as exc:
            log.exception("unexpected error while printing")
            future.set_exception(exc)
            self._call(on_done, False, f"unexpected printer error ({exc}): see the kiosk log")
        else:
            future.set_result(None)
            self._call(on_done, True, None)

    @staticmethod
    def _call(callback, *args) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:  # the caller's bug must not stop later jobs
            log.exception("printer callback failed")

    def close(self, timeout: float = 10.0) -> None:
        """Finish queued jobs, stop the thread, close the port."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            if self._thread.is_alive():
                self._thread.join(timeout)
            self.printer.close()

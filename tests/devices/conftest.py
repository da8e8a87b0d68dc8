"""Shared fixtures for the device adapter tests."""

import os
import select
import threading
import time
import tty

import pytest

from devices.escpos import Document

TICKET_URL = "https://hall.example.gov.cn/q/status?t=A023&d=20240501&h=110105"  # 64 chars


def make_ticket(url: str = TICKET_URL) -> Document:
    """A normal queue ticket, as the dispenser prints it."""
    return (
        Document()
        .text("北京市朝阳区政务服务中心", align="center", bold=True)
        .text("社保医保综合窗口", align="center", width=2, height=2)
        .feed(1)
        .text("A023", align="center", width=4, height=4)
        .feed(1)
        .text("前面还有 5 人等候，请留意叫号。")
        .text("取号时间：2024-05-01 09:31:07")
        .qr(url, module_size=5, error_level="M")
        .text("扫码查看排队进度", align="center")
        .cut()
    )


@pytest.fixture
def ticket_url() -> str:
    return TICKET_URL


@pytest.fixture
def ticket() -> Document:
    return make_ticket()


class PtyDevice:
    """The far end of a real pty pair, standing in for a serial device.

    The code under test opens `path` (the pty slave) with pyserial exactly as
    it would open /dev/ttyUSB0.  A thread on the master side records what
    arrives and answers DLE EOT status queries from `answers` ({n: byte, or
    the exact bytes to send: junk, an ASB burst, a doubled answer}), or stays
    silent for a query it has no answer for.

    Field behaviour it can play: `answer_delay` (seconds before each answer:
    a busy printer answering late); `paper_out_after` (after that many job
    bytes the roll is empty: DLE EOT 4 says out, DLE EOT 1 offline, and the
    rest of the job is taken but not printed, as a real printer does)."""

    def __init__(self, answers=None, hang_up_after=None, stall_after=None, answer_delay=0.0, paper_out_after=None):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no CR/LF translation before pyserial opens it
        self.path = os.ttyname(self.slave)
        self.answers = dict(answers or {})
        self.hang_up_after = hang_up_after
        self.stall_after = stall_after  # stop reading (a jammed printer holding the line busy)
        self.answer_delay = answer_delay
        self.paper_out_after = paper_out_after
        self.received = bytearray()  # everything but the status queries
        self.queries: list[int] = []
        self.answered = 0  # answers actually written to the line (late ones included)
        self._timers: list[threading.Timer] = []
        self._stop = threading.Event()
        self._pending = b""
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            if self.stall_after is not None and len(self.received) >= self.stall_after:
                self._stop.wait(0.02)
                continue
            try:
                ready, _, _ = select.select([self.master], [], [], 0.02)
                if not ready:
                    continue
                chunk = os.read(self.master, 4096)
            except OSError:
                return  # unplugged
            self._take(self._pending + chunk)
            if self.hang_up_after is not None and len(self.received) >= self.hang_up_after:
                self.unplug()
                return

    def _take(self, data: bytes):
        self._pending = b""
        i = 0
        while i < len(data):
            if data[i : i + 2] == b"\x10\x04":
                if i + 2 >= len(data):
                    self._pending = data[i:]
                    return
                n = data[i + 2]
                self.queries.append(n)
                if n in self.answers:
                    self._answer(self.answers[n])
                i += 3
            else:
                self._accept(data[i])
                i += 1
                if self.paper_out_after is not None and len(self.received) >= self.paper_out_after:
                    self.answers.update({1: 0x1A, 4: 0x72})  # offline because of paper end; paper out

    def _accept(self, byte: int):
        self.received.append(byte)

    def _answer(self, answer):
        data = bytes([answer]) if isinstance(answer, int) else bytes(answer)

        def send():
            try:
                os.write(self.master, data)
                self.answered += 1
            except OSError:
                pass  # unplugged meanwhile

        if self.answer_delay:
            timer = threading.Timer(self.answer_delay, send)
            timer.daemon = True
            self._timers.append(timer)
            timer.start()
        else:
            send()

    def send(self, data: bytes):
        os.write(self.master, data)

    def wait_for(self, n: int, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.005)
        return bytes(self.received)

    def wait_until(self, predicate, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate(bytes(self.received)):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def unplug(self):
        """Close both ends: the kernel hangs the tty up, like a pulled USB cable."""
        self._stop.set()
        for timer in self._timers:
            timer.cancel()
            if timer is not threading.current_thread():
                timer.join(2)
        if threading.current_thread() is not self._thread:
            self._thread.join(2)  # never close an fd the reader may still select on
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self.master = self.slave = -1


class BusyPrinter(PtyDevice):
    """A serial printer that pauses (head heating, cover open) with a small receive buffer.

    While paused its UART keeps receiving, as a real one does: bytes beyond
    `capacity` are dropped and counted in `lost`.  With `flow="xonxoff"` it
    sends XOFF when half full and XON on `resume()`.  The pty's own buffer
    stands in for the sender's UART queue, so what the sender had already
    queued when XOFF went out may still arrive for `grace` seconds; any byte
    after that, while XOFF holds, is a sender ignoring flow control and is
    lost too."""

    def __init__(self, flow="none", capacity=4096, grace=0.3, **kw):
        self.flow = flow
        self.capacity = capacity
        self.grace = grace
        self.paused = False
        self.buffer = bytearray()
        self.lost = 0
        self.xoff_at = None  # monotonic time XOFF was sent, None while XON
        self.xoffs = 0
        self._lock = threading.Lock()
        super().__init__(**kw)

    def pause(self):
        self.paused = True

    def resume(self):
        with self._lock:  # the reader thread must not add to the buffer while it is emptied
            self.paused = False
            self.received += self.buffer
            self.buffer.clear()
            if self.xoff_at is not None:
                self.xoff_at = None
                os.write(self.master, b"\x11")  # XON

    def _accept(self, byte: int):
        with self._lock:
            self._accept_locked(byte)

    def _accept_locked(self, byte: int):
        if not self.paused:
            self.received.append(byte)
            return
        if self.xoff_at is not None and time.monotonic() > self.xoff_at + self.grace:
            self.lost += 1  # the sender did not stop
        elif self.xoff_at is not None or len(self.buffer) < self.capacity:
            self.buffer.append(byte)
        else:
            self.lost += 1  # buffer full, no flow control
        if self.flow == "xonxoff" and self.xoff_at is None and len(self.buffer) >= self.capacity // 2:
            self.xoff_at = time.monotonic()
            self.xoffs += 1
            os.write(self.master, b"\x13")  # XOFF


def _device_factory(cls):
    """A factory of emulated devices of ``cls``; every one is unplugged at the end of the test."""
    made = []

    def make(**kwargs):
        dev = cls(**kwargs)
        made.append(dev)
        return dev

    yield make
    for dev in made:
        if dev.master != -1:
            dev.unplug()


@pytest.fixture
def busy_printer():
    yield from _device_factory(BusyPrinter)


@pytest.fixture
def pty_device():
    """Factory of PtyDevice; every device is unplugged at the end of the test."""
    yield from _device_factory(PtyDevice)

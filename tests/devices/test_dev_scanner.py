"""QR scanners: serial through a real pty pair, the simulator, the wedge timing."""

import os
import queue
import time

import pytest

from devices.scanner import LineDecoder, ScanPayload, SerialScanner, SimScanner, WedgeAssembler


class Collector:
    def __init__(self):
        self.payloads: queue.Queue = queue.Queue()
        self.states: queue.Queue = queue.Queue()

    def __call__(self, payload):
        self.payloads.put(payload)

    def state(self, connected, detail):
        self.states.put((connected, detail))

    def next(self, timeout=3.0) -> ScanPayload:
        return self.payloads.get(timeout=timeout)

    def none_within(self, seconds) -> bool:
        try:
            self.payloads.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def scanner_on(pty_device):
    made = []

    def start(port, wait=True, **kwargs):
        got = Collector()
        scanner = SerialScanner(port, 9600, got, reconnect_delay=0.05, on_state=got.state, **kwargs).start()
        made.append(scanner)
        # pyserial empties the input buffer when it opens the port: wait for
        # that before sending, as a scanner cannot scan before it is opened
        deadline = time.monotonic() + 3
        while wait and not scanner.connected and time.monotonic() < deadline:
            time.sleep(0.005)
        return scanner, got

    yield start
    for scanner in made:
        scanner.close()


def test_terminators_and_split_writes(pty_device, scanner_on):
    dev = pty_device()
    _scanner, got = scanner_on(dev.path)
    assert got.states.get(timeout=3)[0] is True
    dev.send(b"CR-ended\r")
    dev.send(b"LF-ended\n")
    dev.send(b"CRLF-ended\r\n")
    dev.send(b"44010620240501|")
    dev.send(b"8K3Q\r")
    dev.send("https://hall.example.gov.cn/lookup?no=受理123".encode()[:30])
    dev.send("https://hall.example.gov.cn/lookup?no=受理123".encode()[30:] + b"\r\n")
    texts = [got.next().text for _ in range(5)]
    assert texts == [
        "CR-ended",
        "LF-ended",
        "CRLF-ended",
        "44010620240501|8K3Q",
        "https://hall.example.gov.cn/lookup?no=受理123",
    ]
    assert got.none_within(0.1)  # CRLF made no empty payload


def test_gb18030_fallback_and_garbage(pty_device, scanner_on):
    dev = pty_device()
    _scanner, got = scanner_on(dev.path)
    dev.send("受理编号".encode("gb18030") + b"\r")
    dev.send(b"\xff\xfe\x80\x00garbage\r")
    first, second = got.next(), got.next()
    assert (first.text, first.valid) == ("受理编号", True)
    assert (second.valid, second.problem) == (False, "undecodable")
    dev.send(b"still-working\r")
    assert got.next().text == "still-working"


def test_over_long_line_reported_once(pty_device, scanner_on):
    dev = pty_device()
    _scanner, got = scanner_on(dev.path, max_len=64)
    dev.send(b"x" * 1000)
    dev.send(b"y" * 1000 + b"\r")
    bad = got.next()
    assert (bad.valid, bad.problem) == (False, "too_long")
    dev.send(b"after\r")
    assert got.next().text == "after"  # the rest of the long line was dropped


def test_reconnects_after_unplug(pty_device, scanner_on, tmp_path):
    link = tmp_path / "kiosk-scanner"
    first = pty_device()
    os.symlink(first.path, link)
    scanner, got = scanner_on(str(link))
    assert got.states.get(timeout=3) == (True, f"scanner on {link} connected")
    first.send(b"one\r")
    assert got.next().text == "one"
    first.send(b"partial-before-unplug")
    first.unplug()
    connected, detail = got.states.get(timeout=3)
    assert connected is False and "check the scanner cable" in detail

    second = pty_device()
    tmp_link = tmp_path / "new"
    os.symlink(second.path, tmp_link)
    os.replace(tmp_link, link)
    assert got.states.get(timeout=3)[0] is True
    second.send(b"two\r")
    assert got.next().text == "two"  # the partial line before the unplug was dropped
    assert scanner.connected


def test_missing_port_keeps_trying(tmp_path, pty_device, scanner_on):
    link = tmp_path / "kiosk-scanner"
    _scanner, got = scanner_on(str(link), wait=False)
    connected, detail = got.states.get(timeout=3)
    assert connected is False and "cannot be opened" in detail
    dev = pty_device()
    os.symlink(dev.path, link)  # the scanner is plugged in later
    assert got.states.get(timeout=3)[0] is True
    dev.send(b"late\r")
    assert got.next().text == "late"


def test_close_stops_the_thread(pty_device, scanner_on):
    dev = pty_device()
    scanner, got = scanner_on(dev.path)
    scanner.close()
    assert not scanner._thread.is_alive()
    dev.send(b"ignored\r")
    assert got.none_within(0.2)


def test_handler_exception_does_not_kill_the_reader(pty_device):
    dev = pty_device()
    got = Collector()

    def handler(payload):
        if payload.text == "boom":
            raise RuntimeError("app bug")
        got(payload)

    scanner = SerialScanner(dev.path, 9600, handler).start()
    while not scanner.connected:
        time.sleep(0.005)
    dev.send(b"boom\rfine\r")
    assert got.next().text == "fine"
    scanner.close()


def test_payload_text_stays_out_of_repr():
    assert "44010620240501" not in repr(ScanPayload("44010620240501|8K3Q", True, None, 19))


def test_line_decoder_limits_are_exact():
    decoder = LineDecoder(max_len=4)
    assert [p.text for p in decoder.feed(b"abcd\r")] == ["abcd"]
    out = decoder.feed(b"abcde\rok\r")
    assert [(p.valid, p.problem) for p in out] == [(False, "too_long"), (True, None)]


def test_sim_scanner_uses_the_same_rules():
    got = Collector()
    sim = SimScanner(got, max_len=10)
    sim.inject("A001|1234")
    sim.inject("x" * 11)
    sim.inject(b"\xff\xff")
    results = [got.next(0.1) for _ in range(3)]
    assert results[0].text == "A001|1234"
    assert [r.problem for r in results[1:]] == ["too_long", "undecodable"]


# --- keyboard wedge ---------------------------------------------------------------


def type_at(wedge, text, start, gap):
    t = start
    for ch in text:
        wedge.key(ch, t)
        t += gap
    return t


def test_wedge_emits_fast_scans():
    wedge = WedgeAssembler()
    t = type_at(wedge, "44010620240501|8K3Q", 100.0, 0.008)
    payload = wedge.enter(t)
    assert payload == ScanPayload("44010620240501|8K3Q", True, None, 19)


def test_wedge_ignores_human_typing():
    wedge = WedgeAssembler()
    t = type_at(wedge, "12345678", 100.0, 0.180)
    assert wedge.enter(t) is None


def test_wedge_ignores_slow_enter_after_fast_burst():
    wedge = WedgeAssembler()
    t = type_at(wedge, "abcdef", 100.0, 0.005)
    assert wedge.enter(t + 0.5) is None


def test_wedge_long_gap_starts_afresh():
    wedge = WedgeAssembler()
    type_at(wedge, "typed", 100.0, 0.3)  # a person, then a scan a second later
    t = type_at(wedge, "SCAN0001", 102.0, 0.01)
    assert wedge.enter(t).text == "SCAN0001"
    assert wedge.enter(t + 0.01) is None  # the buffer was cleared


def test_wedge_configurable_gap_and_min_length():
    wedge = WedgeAssembler(max_gap=0.12, min_length=2)
    t = type_at(wedge, "ab", 5.0, 0.1)
    assert wedge.enter(t).text == "ab"
    assert WedgeAssembler().enter(1.0) is None  # Enter alone


def test_wedge_overflow_is_invalid():
    wedge = WedgeAssembler(max_len=8)
    t = type_at(wedge, "x" * 20, 0.0, 0.001)
    payload = wedge.enter(t)
    assert (payload.valid, payload.problem) == (False, "too_long")


def test_scanner_without_suffix_delivers_after_the_idle_gap(pty_device, scanner_on):
    dev = pty_device()
    _scanner, got = scanner_on(dev.path, idle_gap=0.15)
    dev.send(b"44010620240501|8K3Q")  # no CR, no LF: the scanner's factory setting
    first = got.next()
    assert first.text == "44010620240501|8K3Q" and first.valid
    dev.send(b"44010620240502|7Z2P")  # the next citizen's scan is a payload of its own
    assert got.next().text == "44010620240502|7Z2P"
    dev.send(b"A1\r")  # a terminator still ends a scan at once, with nothing left over for the gap
    assert got.next().text == "A1" and got.none_within(0.4)


def test_a_pause_shorter_than_the_idle_gap_does_not_split_a_scan(pty_device, scanner_on):
    dev = pty_device()
    _scanner, got = scanner_on(dev.path, idle_gap=0.8)
    dev.send(b"44010620240501|")
    time.sleep(0.05)  # the scanner's own pause between two USB packets (device behaviour, not a wait)
    dev.send(b"8K3Q")
    assert got.next().text == "44010620240501|8K3Q"


def test_without_an_idle_gap_only_a_terminator_ends_a_scan(pty_device, scanner_on):
    dev = pty_device()
    _scanner, got = scanner_on(dev.path)
    dev.send(b"no-suffix")
    assert got.none_within(0.4)
    dev.send(b"\r")
    assert got.next().text == "no-suffix"

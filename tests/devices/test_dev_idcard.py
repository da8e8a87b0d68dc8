"""The GA/T 467 ID card reader backend through a real pty pair, against the emulated reader."""

import itertools
import queue

import pytest

from devices.idcard import (
    FrameDecoder,
    ReaderEvent,
    SerialIdCardReader,
    SimIdCardReader,
    decode_base_info,
    encode_base_info,
    frame,
    reply_frame,
)
from tests.helpers import wait_until
from tests.idcard_emulator import ADDRESS, ID_NUMBER, NAME, IdCardReaderEmulator


class Events:
    def __init__(self):
        self.q: queue.Queue[ReaderEvent] = queue.Queue()

    def __call__(self, ev):
        self.q.put(ev)

    def next(self, kinds=None, timeout=4.0) -> ReaderEvent:
        """The next event of one of these kinds (others are skipped)."""
        while True:
            ev = self.q.get(timeout=timeout)
            if kinds is None or ev.kind in kinds:
                return ev

    def none_of(self, kind, seconds) -> bool:
        try:
            self.next({kind}, timeout=seconds)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def reader_on(tmp_path):
    made = []

    def start(**kw):
        emu = IdCardReaderEmulator(tmp_path / "kiosk-idcard")
        got = Events()
        kw = {"poll_interval": 0.3, "answer_timeout": 0.3, "reconnect_delay": 0.05} | kw
        reader = SerialIdCardReader(str(emu.link), got, **kw).start()
        made.append((reader, emu))
        assert got.next({"connected"}).kind == "connected"
        return reader, emu, got

    yield start
    for reader, emu in made:
        reader.close()
        emu.unplug()


def test_the_frame_of_the_standard():
    # The find-card example of GA/T 467: AA AA AA 96 69 00 03 20 01 22.
    assert frame(0x20, 0x01) == bytes.fromhex("AAAAAA9669 0003 2001 22")
    assert FrameDecoder().feed(bytes.fromhex("AAAAAA9669 0004 00009F 9B"))[0].sw3 == 0x9F


def test_decoder_partial_split_noise_and_bad_checksum():
    good = reply_frame(0x90, b"\x01\x02\x03")
    bad = bytearray(reply_frame(0x90, b"\x09"))
    bad[-1] ^= 0xFF
    dec = FrameDecoder()
    stream = b"\x00\xaa\x13" + bytes(bad) + good + good[:6]
    got = []
    for i in range(0, len(stream), 3):  # three bytes at a time, a preamble cut in two
        got += dec.feed(stream[i : i + 3])
    assert [r.data for r in got] == [b"\x01\x02\x03"]
    assert dec.bad == 1
    assert [r.data for r in dec.feed(good[6:])] == [b"\x01\x02\x03"]  # the frame split across feeds


def test_only_name_and_number_are_decoded():
    data = encode_base_info(NAME, ID_NUMBER, ADDRESS, b"\xff" * 1024)
    assert len(reply_frame(0x90, data)) == 1295  # the size the standard gives
    card = decode_base_info(data)
    assert (card.name, card.id_number) == (NAME, ID_NUMBER)
    assert NAME not in repr(card) and ID_NUMBER not in repr(card)
    assert not hasattr(card, "address") and not hasattr(card, "photo")
    with pytest.raises(ValueError):
        decode_base_info(data[:100])


def test_reads_a_card_once_until_it_leaves_the_field(reader_on):
    reader, emu, got = reader_on()
    assert got.none_of("card", 0.7)  # no card: finds come back empty, nothing reported
    emu.place()
    ev = got.next({"card"})
    assert (ev.card.name, ev.card.id_number) == (NAME, ID_NUMBER)
    assert got.none_of("card", 1.0)  # still lying there: not read again
    assert emu.reads() == 1
    emu.lift()
    emu.place()
    assert got.next({"card"}).card.id_number == ID_NUMBER
    assert reader.reads == 2


def test_polls_no_faster_than_every_300_ms(reader_on):
    _reader, emu, _got = reader_on(poll_interval=0.05)  # asked too fast: held to the standard's floor
    assert wait_until(lambda: len(emu.commands) >= 5, 4)
    finds = [t for t, c, p in emu.commands if (c, p) == (0x20, 0x01)]
    gaps = [b - a for a, b in itertools.pairwise(finds)]
    assert min(gaps) >= 0.29


def test_split_reply_frames_are_assembled(reader_on):
    _reader, emu, got = reader_on(answer_timeout=2.0)  # 260 pieces of a 1295-byte reply take their time
    emu.split = 5  # the preamble and the length cut apart
    emu.place()
    assert got.next({"card"}).card.name == NAME


def test_bad_checksum_is_reported_and_the_next_poll_reads(reader_on):
    reader, emu, got = reader_on()
    emu.corrupt = 1  # the next find answer is damaged
    emu.place()
    assert got.next({"bad_frame", "card"}).kind == "bad_frame"
    assert got.next({"card"}).card.id_number == ID_NUMBER  # the following poll reads the card
    assert reader.bad_frames == 1


def test_card_removed_mid_read(reader_on):
    _reader, emu, got = reader_on()
    emu.remove_during_read = True
    emu.place()
    assert got.next({"read_failed", "card"}).kind == "read_failed"
    emu.remove_during_read = False
    emu.place()
    assert got.next({"card"}).card.name == NAME


def test_a_reader_that_stops_answering_and_comes_back(reader_on):
    reader, emu, got = reader_on()
    emu.silent = True
    assert got.next({"not_answering"}).kind == "not_answering"
    assert reader.answering is False
    assert got.none_of("not_answering", 0.8)  # said once, not on every poll
    emu.silent = False
    emu.place()
    assert got.next({"card"}).card.name == NAME
    assert reader.answering is True


def test_unplugged_and_plugged_back(reader_on):
    reader, emu, got = reader_on()
    emu.unplug()
    lost = got.next({"lost"})
    assert "check the reader's cable" in lost.detail
    emu.replug()
    assert got.next({"connected"}).kind == "connected"
    emu.place()
    assert got.next({"card"}).card.id_number == ID_NUMBER
    assert reader.connected


def test_a_handler_that_raises_does_not_stop_the_reader(reader_on):
    calls = []

    def boom(ev):
        calls.append(ev.kind)
        raise RuntimeError("app bug")

    reader, emu, _ = reader_on()
    reader.on_event = boom
    emu.place()
    assert wait_until(lambda: "card" in calls, 4)
    emu.lift()
    emu.place()
    assert wait_until(lambda: calls.count("card") == 2, 4)


def test_sim_reader():
    got = Events()
    sim = SimIdCardReader(got)
    sim.present(NAME, ID_NUMBER)
    sim.fail("not_answering")
    assert got.next().card.name == NAME
    assert got.next().kind == "not_answering"

"""An emulated 二代身份证 reader (GA/T 467 SAM) on the far end of a real pty pair.

It behaves as the standard and the readers halls buy do: it answers find
(20 01) with SW3 9F while a card lies in the field that has not been read
since it was placed, else 80; select (20 02) with 90 (81 without a card);
read base info (30 01) with 90 and 1288 bytes of text and photo (41 when the
card went away). It parses the host's frames with their checksums and ignores
a frame that fails its own.

Field faults it can play: a reply with a bad checksum (``corrupt``), replies
written in pieces (``split``), a card lifted between select and read
(``remove_during_read``), a reader that stops answering (``silent``), and an
unplug (the pty closed; ``replug`` makes a new one behind the same symlink).
Every command it receives is timed, so a test can check the poll interval.
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from pathlib import Path

from devices.idcard import PREAMBLE, checksum, encode_base_info, reply_frame

# A card as the field has them: a long address the reader must skip unread.
NAME = "林晓岚"
ID_NUMBER = "110101199003071236"
ADDRESS = "北京市东城区景山前街四号院十二号楼三单元五零一室"
PHOTO = bytes(range(256)) * 4  # stands in for the wavelet photo: never decoded


class IdCardReaderEmulator:
    def __init__(self, link: Path):
        self.link = Path(link)
        self.commands: list[tuple[float, int, int]] = []  # (monotonic time, CMD, PARA)
        self.bad_commands = 0
        self.card: tuple[str, str] | None = None
        self.read_since_placed = False
        self.corrupt = 0  # the next n replies go out with a wrong checksum
        self.split: int | None = None  # write replies in pieces of this many bytes
        self.remove_during_read = False
        self.silent = False
        self.master = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.replug()

    # -- the cable -----------------------------------------------------------
    def replug(self) -> None:
        """A new pty behind the same path, as udev gives /dev/kiosk-idcard again."""
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self._slave = slave
        tmp = self.link.with_suffix(".new")
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.link)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(self.master, self._stop), daemon=True)
        self._thread.start()

    def unplug(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self.master = -1

    # -- the card ----------------------------------------------------------------
    def place(self, name: str = NAME, id_number: str = ID_NUMBER) -> None:
        self.card = (name, id_number)
        self.read_since_placed = False

    def remove(self) -> None:
        self.card = None

    def lift(self) -> None:
        """Take the card away and wait for the host to poll the empty field, as a hand would."""
        from tests.helpers import wait_until

        self.remove()
        seen = len(self.commands)
        assert wait_until(lambda: len(self.commands) > seen, 3), "the host stopped polling"

    def reads(self) -> int:
        return sum(1 for _, c, p in self.commands if (c, p) == (0x30, 0x01))

    # -- the protocol --------------------------------------------------------------
    def _serve(self, master: int, stop: threading.Event) -> None:
        buf = bytearray()
        while not stop.is_set():
            try:
                ready, _, _ = select.select([master], [], [], 0.02)
                if not ready:
                    continue
                chunk = os.read(master, 4096)
            except OSError:
                return
            buf += chunk
            while True:
                at = buf.find(PREAMBLE)
                if at < 0 or len(buf) < at + 7:
                    break
                n = int.from_bytes(buf[at + 5 : at + 7], "big")
                if len(buf) < at + 7 + n:
                    break
                body, chk = bytes(buf[at + 5 : at + 7 + n - 1]), buf[at + 7 + n - 1]
                del buf[: at + 7 + n]
                if checksum(body) != chk or n < 3:
                    self.bad_commands += 1
                    continue
                self.commands.append((time.monotonic(), body[2], body[3]))
                answer = self._answer(body[2], body[3])
                if answer is not None and not self.silent:
                    self._write(master, answer)

    def _answer(self, cmd: int, para: int) -> bytes | None:
        if (cmd, para) == (0x20, 0x01):
            if self.card is not None and not self.read_since_placed:
                return reply_frame(0x9F, b"\x00\x00\x00\x00")
            return reply_frame(0x80)
        if (cmd, para) == (0x20, 0x02):
            return reply_frame(0x90, bytes(8)) if self.card is not None else reply_frame(0x81)
        if (cmd, para) == (0x30, 0x01):
            if self.remove_during_read:
                self.card = None
            if self.card is None:
                return reply_frame(0x41)
            self.read_since_placed = True
            name, number = self.card
            return reply_frame(0x90, encode_base_info(name, number, ADDRESS, PHOTO))
        if (cmd, para) == (0x11, 0xFF):
            return reply_frame(0x90)
        return reply_frame(0x21)  # unknown command

    def _write(self, master: int, data: bytes) -> None:
        if self.corrupt:
            self.corrupt -= 1
            data = data[:-1] + bytes([data[-1] ^ 0x5A])
        pieces = [data] if not self.split else [data[i : i + self.split] for i in range(0, len(data), self.split)]
        try:
            for piece in pieces:
                os.write(master, piece)
                if self.split:
                    time.sleep(0.002)  # the reader's UART trickling, not synchronisation
        except OSError:
            pass

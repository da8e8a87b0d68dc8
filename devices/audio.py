"""Audio out for spoken prompts: a player thread that plays WAV clips in order.

Backends, chosen by ``voice.backend`` in the config (kiosk/wiring.py):

- ``aplay``: ALSA's own player (alsa-utils), one process per clip, so a broken
  clip or a missing sound card costs that clip and a log line, never the app;
- ``sim``: records what would have been played (tests, the demo without sound);
- ``none``: plays nothing.

``play()`` returns at once; the clips of one prompt are played back to back,
and a new prompt waits for the one before it (prompts never overlap). Volume
is applied to the samples here (16-bit PCM), so it works on any card without
touching the mixer.
"""

from __future__ import annotations

import array
import logging
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import wave
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("devices.audio")

_STOP = object()


def scaled_copy(src: Path, volume: float, out_dir: Path) -> Path:
    """A copy of a 16-bit PCM WAV with every sample times ``volume`` (0…1); other formats as they are."""
    if volume >= 0.999:
        return src
    with wave.open(str(src), "rb") as w:
        params = w.getparams()
        frames = w.readframes(w.getnframes())
    if params.sampwidth != 2:
        return src
    samples = array.array("h")
    samples.frombytes(frames)
    if sys.byteorder != "little":  # WAV is little-endian
        samples.byteswap()
    v = max(0.0, min(1.0, volume))
    samples = array.array("h", (int(s * v) for s in samples))
    if sys.byteorder != "little":
        samples.byteswap()
    out = out_dir / src.name
    with wave.open(str(out), "wb") as w:
        w.setparams(params)
        w.writeframes(samples.tobytes())
    return out


class _PlayerThread:
    """Plays queued prompts one after another on its own thread."""

    def __init__(self, name: str = "voice") -> None:
        self._queue: queue.Queue[tuple[list[Path], float] | object] = queue.Queue(
            maxsize=8
        )  # a burst of prompts must not pile up
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._failing = False

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    def play(self, files: Sequence[Path], volume: float) -> None:
        try:
            self._queue.put_nowait((list(files), volume))
        except queue.Full:
            log.warning("voice: too many prompts queued, one is skipped")

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(5)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if not isinstance(item, tuple):  # _STOP
                return
            files: list[Path] = item[0]
            volume: float = item[1]
            with tempfile.TemporaryDirectory(prefix="kiosk-voice-") as tmp:
                for f in files:
                    try:
                        self.play_file(scaled_copy(Path(f), volume, Path(tmp)))
                        self._failing = False
                    except Exception as e:  # a broken clip or no sound card: say so once, go on
                        if not self._failing:
                            log.warning("voice: cannot play %s: %s", Path(f).name, e)
                        self._failing = True

    def play_file(self, path: Path) -> None:
        raise NotImplementedError


class AplayPlayer(_PlayerThread):
    def __init__(self, device: str = "", binary: str = "aplay") -> None:
        super().__init__()
        self.device = device
        self.binary = shutil.which(binary) or binary

    def play_file(self, path: Path) -> None:
        cmd = [self.binary, "-q"] + (["-D", self.device] if self.device else []) + [str(path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise OSError((proc.stderr or "").strip().splitlines()[-1:] or [f"aplay exited {proc.returncode}"])


class SimPlayer(_PlayerThread):
    """Keeps what it would have played: (file name, peak sample) per clip, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.played: list[str] = []
        self.peaks: list[int] = []
        self.done = threading.Event()

    def play_file(self, path: Path) -> None:
        with wave.open(str(path), "rb") as w:  # a broken clip fails here, as it would on a card
            frames = w.readframes(w.getnframes())
            width = w.getsampwidth()
        peak = 0
        if width == 2 and frames:
            samples = array.array("h")
            samples.frombytes(frames[: len(frames) // 2 * 2])
            peak = max(abs(s) for s in samples)
        self.played.append(path.name)
        self.peaks.append(peak)
        self.done.set()


class SilentPlayer:
    def start(self) -> None:
        pass

    def play(self, files: Sequence[Path], volume: float) -> None:
        pass

    def close(self) -> None:
        pass

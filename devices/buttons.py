"""Hardware buttons and LEDs through gpiozero.

The pin factory is chosen by config with gpiozero's own names
(kiosk/core/ports.py PIN_FACTORIES): "default" lets gpiozero pick (lgpio on
Raspberry Pi OS bookworm), "lgpio", "rpigpio" and "pigpio" are gpiozero's
factories of those names, "mock" is gpiozero's own MockFactory for the demo
and the tests.

Threads: gpiozero calls `on_press` on its own thread (lgpio's callback
thread on a Pi; on MockFactory, the thread that drives the pin).  The app
hands the call over at once (kiosk/core/handoff.py: the role's own thread does
the work; the screens move what they show to the UI thread).

lgpio makes its notification pipes (``.lgd-nfy*``) in the directory named by
``LG_WD``, else in the current directory: `sudo -u kiosk kiosk selftest` run
from an admin's home cannot write there and every pin "fails". So a factory is
made with LG_WD pointing at a folder the kiosk user can write (the storage folder).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable

from kiosk.core.ports import PIN_FACTORIES, PIN_FACTORY_RENAMED

log = logging.getLogger(__name__)

# gpiozero's own entry points for its factories (gpiozero/devices.py uses the same).
_GPIOZERO_FACTORIES = {
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
}


class GPIOSetupError(RuntimeError):
    """Buttons or LEDs could not be set up; the message says what to check."""


def lgpio_workdir(workdir: str | None) -> str | None:
    """Point lgpio at a writable folder for its pipe files, before lgpio is loaded.

    The C library reads LG_WD once, when it is loaded, so this must run before
    gpiozero imports lgpio. A LG_WD set by the unit or the technician is kept
    when it is writable; otherwise ``workdir`` (made if missing), else the
    system's temporary folder (an admin running the self-check as themselves
    cannot write the kiosk's storage folder). The folder in use is returned."""
    import tempfile

    current = os.environ.get("LG_WD")
    if current and os.path.isdir(current) and os.access(current, os.W_OK):
        return current
    if workdir:
        try:
            os.makedirs(workdir, exist_ok=True)
        except OSError:
            pass
    for folder in (workdir, tempfile.gettempdir()):
        if folder and os.path.isdir(folder) and os.access(folder, os.W_OK):
            os.environ["LG_WD"] = folder
            return folder
    return None


def make_pin_factory(kind: str = "default", workdir: str | None = None):
    """A gpiozero pin factory for `kind` (a gpiozero name); None means gpiozero's default.

    workdir: a folder the kiosk user can write, for lgpio's pipe files (see lgpio_workdir)."""
    kind = PIN_FACTORY_RENAMED.get(kind, kind)
    if kind in ("default", "lgpio"):
        lgpio_workdir(workdir)
    if kind == "default":
        return None  # gpiozero picks lgpio / RPi.GPIO / ... when the first pin is made
    if kind == "mock":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    if kind in _GPIOZERO_FACTORIES:
        import importlib

        module, name = _GPIOZERO_FACTORIES[kind]
        try:
            return getattr(importlib.import_module(module), name)()
        except Exception as exc:  # ImportError, or the library cannot reach the GPIO chip
            raise GPIOSetupError(
                f"pin factory {kind!r} cannot start ({exc.__class__.__name__}: {exc}): install its "
                f'library (python3-{kind}) or use pin_factory = "default" to let gpiozero choose'
            ) from exc
    raise ValueError(f"unknown pin factory {kind!r}: use one of {', '.join(PIN_FACTORIES)}")


def claim_problems(kind: str, pins: dict[int, str], workdir: str | None = None) -> list[str]:
    """Claim each pin once and let it go: one line per pin that cannot be claimed.

    The self-check's view of pins nobody holds. Raises what the pin factory
    itself raises when there is no GPIO access at all."""
    import warnings

    from gpiozero import DigitalInputDevice
    from gpiozero.exc import GPIOZeroError

    bad = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gpiozero warns for every pin factory it falls back from
        factory = make_pin_factory(kind, workdir)
        try:
            for pin, what in sorted(pins.items()):
                try:
                    DigitalInputDevice(pin, pin_factory=factory).close()
                except (GPIOZeroError, GPIOSetupError, OSError, RuntimeError) as e:
                    bad.append(f"GPIO{pin} ({what}): {type(e).__name__}: {e}")
        finally:
            if factory is not None:
                factory.close()
    return bad


def _make(device_class, pin: int, name: str, **kwargs):
    from gpiozero.exc import GPIOZeroError

    try:
        return device_class(pin, **kwargs)
    except GPIOZeroError as exc:
        raise GPIOSetupError(
            f"cannot use GPIO{pin} for {name!r} ({exc.__class__.__name__}: {exc}): check the pin "
            "numbers in the config (BCM numbering, each pin once), that the kiosk user is in the "
            'gpio group and that lgpio is installed (python3-lgpio); use pin_factory = "mock" '
            "on a machine without GPIO"
        ) from exc


def _make_board(board_class, device_class, pins: dict[str, int], pin_factory=None, **kwargs):
    """A gpiozero ButtonBoard / LEDBoard over `pins`, or GPIOSetupError naming the pin that failed.

    The pins go in positionally, in config order, and our names stay in our
    own mapping: a board's named pins become attributes, so gpiozero refuses
    names such as "value" or "close" and any name that is not a Python
    identifier, and a category code or key name must not have to obey that.

    When the board cannot be made, gpiozero's error names at best a pin number,
    never which key it is. So the pins are claimed again one by one (each
    probe kept until all are tried, so a pin listed twice fails on its second
    use) and the first that fails is reported by name, as the technician
    configured it."""
    from gpiozero.exc import GPIOZeroError

    # The commonest mistake, caught before gpiozero: it would fail half-way
    # through building the board, and name neither key.
    first_use: dict[int, str] = {}
    for name, pin in pins.items():
        if pin in first_use:
            raise GPIOSetupError(
                f"cannot use GPIO{pin} for {name!r}: it is already configured for {first_use[pin]!r}; "
                "check the pin numbers in the config (BCM numbering, each pin once)"
            )
        first_use[pin] = name
    try:
        return board_class(*pins.values(), pin_factory=pin_factory, **kwargs)
    except GPIOZeroError as exc:
        # Only the text is kept: the exception's traceback holds the devices the
        # board made before the failing pin, and they keep their pins claimed
        # (so the probe below would blame the wrong key) until it is dropped.
        failure = f"{exc.__class__.__name__}: {exc}"
    probes = []
    try:
        for name, pin in pins.items():
            probes.append(_make(device_class, pin, name, pin_factory=pin_factory))
    finally:
        for probe in probes:
            probe.close()
    # Every pin could be claimed alone: the board failed for another reason.
    raise GPIOSetupError(
        f"cannot set up GPIO{', GPIO'.join(str(p) for p in pins.values())} "
        f"({failure}): check the pin numbers in the config (BCM numbering, each pin once)"
    )


@functools.cache
def _button_board():
    from gpiozero import ButtonBoard

    class SafeButtonBoard(ButtonBoard):
        """gpiozero's ButtonBoard, closable when its constructor failed.

        When a pin cannot be claimed, ButtonBoard.__init__ fails before its
        hold machinery exists, and gpiozero's close() (run again from __del__)
        then trips over the missing ``_hold_thread``: an "Exception ignored"
        traceback in the journal on top of our GPIOSetupError. Such a board
        holds no pin yet (its buttons were never handed to it), so there is
        nothing to close."""

        def close(self):
            if "_hold_thread" in self.__dict__:
                super().close()

    return SafeButtonBoard


class ButtonBank:
    """Named push buttons on one gpiozero ButtonBoard; on_press(name) once per press.

    Debouncing is done here as well as by gpiozero: a press counts only after
    the pin has been quiet for `bounce_time`.  gpiozero's bounce_time depends on
    the pin factory (the mock one does not debounce at all), and a worn
    button or a noisy cable must never give a citizen two tickets or a
    pad two ratings."""

    def __init__(
        self,
        pins: dict[str, int],
        on_press: Callable[[str], None],
        bounce_time: float = 0.05,
        pin_factory=None,
        pull_up: bool = True,
    ):
        from gpiozero import Button

        self.on_press = on_press
        self.bounce_time = bounce_time
        self._last_edge: dict[str, float] = {}
        self._lock = threading.Lock()  # callbacks may come from several threads
        self._index = {name: i for i, name in enumerate(pins)}
        # gpiozero refuses an empty board; a bank without buttons simply has none.
        self._board = (
            _make_board(_button_board(), Button, pins, pin_factory, pull_up=pull_up, bounce_time=bounce_time or None)
            if pins
            else None
        )
        # The board's own when_pressed says only that *some* button went down;
        # each button's own event says which one.
        if self._board is not None:
            for name, i in self._index.items():
                self._board[i].when_pressed = self._handler(name)

    def _handler(self, name: str) -> Callable[[], None]:
        def pressed():  # no parameters: gpiozero then calls it without the device
            self._pressed(name)

        return pressed

    def _pressed(self, name: str) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last_edge.get(name)
            self._last_edge[name] = now
        if last is not None and now - last < self.bounce_time:
            return  # a bounce: the pin was not quiet long enough
        try:
            self.on_press(name)
        except Exception:  # an app bug must not break gpiozero's callback thread
            log.exception("button handler failed for %r", name)

    def is_pressed(self, name: str) -> bool:
        i = self._index[name]  # KeyError for a name the bank does not have, as before
        if self._board is None:  # unreachable: a bank without pins has no names
            return False
        return bool(self._board[i].is_pressed)

    @property
    def names(self) -> list[str]:
        return list(self._index) if self._board is not None else []

    def close(self) -> None:
        """Release the pins (they can be used again, e.g. after a config reload)."""
        if self._board is not None:
            self._board.close()
            self._board = None


class LedBank:
    """Named LEDs (e.g. on the five rating keys of a physical pad) on one gpiozero LEDBoard."""

    def __init__(self, pins: dict[str, int], pin_factory=None):
        from gpiozero import LED, LEDBoard

        self._index = {name: i for i, name in enumerate(pins)}
        self._board = _make_board(LEDBoard, LED, pins, pin_factory) if pins else None

    def _led(self, name: str):
        if name not in self._index or self._board is None:
            raise KeyError(f"no LED named {name!r}: configured LEDs are {', '.join(self._index)}")
        return self._board[self._index[name]]

    def on(self, name: str) -> None:
        self._led(name).on()

    def off(self, name: str) -> None:
        self._led(name).off()

    def blink(self, name: str, on_time: float = 0.5, off_time: float = 0.5, n: int | None = None) -> None:
        """Blink in gpiozero's background thread; n=None blinks until on/off.

        The LED's own blink, not the board's: LEDBoard.blink blinks every LED."""
        self._led(name).blink(on_time=on_time, off_time=off_time, n=n, background=True)

    def all_off(self) -> None:
        if self._board is not None:
            self._board.off()

    def is_lit(self, name: str) -> bool:
        return bool(self._led(name).is_lit)

    def close(self) -> None:
        if self._board is not None:
            self._board.close()
            self._board = None

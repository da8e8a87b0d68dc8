"""Hardware buttons and LEDs through gpiozero.

The pin factory is chosen by config with gpiozero's own names
(kiosk/core/ports.py PIN_FACTORIES): "default" lets gpiozero pick (lgpio on
Raspberry Pi OS bookworm), "lgpio", "rpigpio" and "pigpio" are gpiozero's
factories of those names, "mock" is gpiozero's own MockFactory for the demo
and the tests.

Threads: gpiozero calls `on_press` on its own thread (lgpio's callback
thread on a Pi; on MockFactory, the thread that drives the pin).  The app
must hand the call to the UI thread (Kivy `Clock.schedule_once`) and keep it
short.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

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


def make_pin_factory(kind: str = "default"):
    """A gpiozero pin factory for `kind` (a gpiozero name); None means gpiozero's default."""
    kind = PIN_FACTORY_RENAMED.get(kind, kind)
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
                f"library (python3-{kind}) or use pin_factory = \"default\" to let gpiozero choose"
            ) from exc
    raise ValueError(f"unknown pin factory {kind!r}: use one of {', '.join(PIN_FACTORIES)}")


def _make(device_class, pin: int, name: str, **kwargs):
    from gpiozero.exc import GPIOZeroError

    try:
        return device_class(pin, **kwargs)
    except GPIOZeroError as exc:
        raise GPIOSetupError(
            f"cannot use GPIO{pin} for {name!r} ({exc.__class__.__name__}: {exc}): check the pin "
            "numbers in the config (BCM numbering, each pin once), that the kiosk user is in the "
            "gpio group and that lgpio is installed (python3-lgpio); use pin_factory = \"mock\" "
            "on a machine without GPIO"
        ) from exc


class ButtonBank:
    """Named push buttons; on_press(name) once per press.

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
        self._buttons = {}
        try:
            for name, pin in pins.items():
                button = _make(
                    Button, pin, name, pull_up=pull_up, bounce_time=bounce_time or None, pin_factory=pin_factory
                )
                self._buttons[name] = button
                button.when_pressed = self._handler(name)
        except Exception:
            self.close()  # release the pins already taken
            raise

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
        return self._buttons[name].is_pressed

    @property
    def names(self) -> list[str]:
        return list(self._buttons)

    def close(self) -> None:
        """Release the pins (they can be used again, e.g. after a config reload)."""
        for button in self._buttons.values():
            button.close()
        self._buttons.clear()


class LedBank:
    """Named LEDs (e.g. on the five rating keys of a physical pad)."""

    def __init__(self, pins: dict[str, int], pin_factory=None):
        from gpiozero import LED

        self._leds = {}
        try:
            for name, pin in pins.items():
                self._leds[name] = _make(LED, pin, name, pin_factory=pin_factory)
        except Exception:
            self.close()
            raise

    def _led(self, name: str):
        try:
            return self._leds[name]
        except KeyError:
            raise KeyError(f"no LED named {name!r}: configured LEDs are {', '.join(self._leds)}") from None

    def on(self, name: str) -> None:
        self._led(name).on()

    def off(self, name: str) -> None:
        self._led(name).off()

    def blink(self, name: str, on_time: float = 0.5, off_time: float = 0.5, n: int | None = None) -> None:
        """Blink in gpiozero's background thread; n=None blinks until on/off."""
        self._led(name).blink(on_time=on_time, off_time=off_time, n=n, background=True)

    def all_off(self) -> None:
        for led in self._leds.values():
            led.off()

    def is_lit(self, name: str) -> bool:
        return bool(self._led(name).is_lit)

    def close(self) -> None:
        for led in self._leds.values():
            led.close()
        self._leds.clear()

"""The pad's hardware keys: the clerk's 请评价 button and the five-key keypad.

Keypad rule (documented in docs/configuration.md): ★5, ★4 and ★3 are
recorded at once. ★2 and ★1 need a reason, and the pad always has its
touchscreen, so the key only picks the level and the screen then asks for
the reason; if none is given in time the session is recorded as not rated.
A keypad rating is never recorded with an invented reason.

gpiozero calls these handlers on its own threads; RatingService is
thread-safe and the screen moves its notifications to the UI thread.
A bouncing or hammered key cannot rate twice: gpiozero debounces, and the
ledger's UNIQUE session_id refuses a second outcome for one session.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from kiosk.roles.pad.service import BAD_LEVELS, LEVELS, PadState, RatingError, RatingService

log = logging.getLogger("kiosk.pad")


class Lights(Protocol):
    """What PadKeys lights: five LEDs, ★5 … ★1."""

    def set(self, lit: list[bool]) -> None: ...


class NamedLeds(Protocol):
    """An LED bank switched by name (devices' LedBank)."""

    def on(self, name: str) -> None: ...

    def off(self, name: str) -> None: ...


class PadKeys:
    """Turns key presses into service calls and the session into LED light."""

    SHOW_CHOICE_S = 3.0  # the chosen level's LED stays lit this long after a rating

    def __init__(self, service: RatingService, leds: Lights | None = None):
        self.service = service
        self.leds = leds  # None: a pad without keypad LEDs
        self._off_timer: threading.Timer | None = None
        service.subscribe(self._on_change)

    def key_pressed(self, index: int) -> None:
        """Key 0..4 = ★5..★1."""
        level = LEVELS[index]
        try:
            if level in BAD_LEVELS:
                self.service.choose_level(level)
            else:
                self.service.submit(level, via="keypad")
        except RatingError as e:
            # No session, already rated, time over: a key press changes nothing.
            log.debug("keypad %s ignored: %s", level, e.code)

    def on_press(self, name: str) -> None:
        """ButtonBank callback: "clerk" or "star5" … "star1"."""
        if name == "clerk":
            self.clerk_pressed()
        elif name.startswith("star") and name[4:].isdigit() and int(name[4:]) in LEVELS:
            self.key_pressed(LEVELS.index(int(name[4:])))

    def clerk_pressed(self) -> None:
        if self.service.clerk_button() is None:
            log.info("clerk button ignored: online, paused or a session is already open")

    def _on_change(self, what: str, st: PadState) -> None:
        if self.leds is None:
            return
        if what in ("invite", "level") and st.session is not None:
            lit = [True] * 5 if st.session.level is None else [lv == st.session.level for lv in LEVELS]
            self._show(lit)
        elif what == "rated" and st.last_outcome:
            self._show([lv == st.last_outcome["level"] for lv in LEVELS])
            self._schedule_off()
        elif what == "not_rated":
            self._show([False] * 5)

    def _show(self, lit: list[bool]) -> None:
        if self._off_timer is not None:
            self._off_timer.cancel()
            self._off_timer = None
        if self.leds is None:
            return
        try:
            self.leds.set(lit)
        except Exception:
            log.exception("keypad LEDs failed")

    def close(self) -> None:
        self.service.unsubscribe(self._on_change)
        if self._off_timer is not None:
            self._off_timer.cancel()
            self._off_timer = None

    def _schedule_off(self) -> None:
        t = threading.Timer(self.SHOW_CHOICE_S, lambda: self._show([False] * 5))
        t.daemon = True
        t.start()
        self._off_timer = t


def key_names() -> list[str]:
    return [f"star{lv}" for lv in LEVELS]  # star5 … star1, in config order


class LedLights:
    """PadKeys' view of a LedBank: one list of five booleans, ★5 … ★1."""

    def __init__(self, bank: NamedLeds):
        self.bank = bank

    def set(self, lit: list[bool]) -> None:
        for name, on in zip(key_names(), lit, strict=True):
            (self.bank.on if on else self.bank.off)(name)

"""Per-person rules for tickets taken by ID card (刷身份证取号), and the desk that reads cards.

A person is known only as ``person_key(hall_key, id_number)`` (kiosk/core/privacy.py):
an HMAC under the hall's key, the same on every device of the hall. The raw
number exists only between the reader and ``IdCardDesk._card``, which hashes it
and masks it for the screen; it is never stored, sent or logged.

The rules (docs/configuration.md, [idcard]): one open ticket per person per
service, and at most ``daily_max`` tickets per person per day (the central's
config ``person_limits.daily_max`` overrides the file). A citizen who already
holds a ticket for the service is shown it and may have it reprinted instead of
a second number. Online the central decides hall-wide (it enforces the same
rules on ``POST /tickets`` with ``person``); offline the device decides from its
own ledger, and its offline tickets reach the central with ``person`` in their
``ticket.issued`` event, so the hall-wide count is whole again once it returns.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kiosk.core.privacy import mask_id, mask_name, person_key

log = logging.getLogger("kiosk.dispenser.persons")

OPEN_STATES = ("waiting", "local")  # local: on this device's ledger, the central's word not known


@dataclass(frozen=True)
class Citizen:
    """What the device keeps of a card: the HMAC and two masked strings, never the number."""

    person: str = field(repr=False)
    masked_id: str
    masked_name: str


@dataclass(frozen=True)
class Holding:
    """A ticket a person holds today, as the central or this device's ledger knows it."""

    day: str
    display: str
    category: str
    priority: bool
    state: str  # waiting | called | void (the central's), or local
    issued_at: str
    ticket_id: int | None = None  # on this device's ledger: reprinted from there
    service_zh: str = ""
    service_en: str = ""
    device_id: str = ""

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def counts(self) -> bool:
        return self.state != "void"  # a voided number was held by nobody


@dataclass
class Standing:
    citizen: Citizen
    holdings: list[Holding]
    daily_max: int
    online: bool  # the central answered: the holdings are the hall's, not only this device's

    def open_for(self, category: str) -> Holding | None:
        for h in self.holdings:
            if h.open and h.category == category:
                return h
        return None

    @property
    def taken(self) -> int:
        return sum(1 for h in self.holdings if h.counts)

    @property
    def at_limit(self) -> bool:
        return self.taken >= self.daily_max


def merge(central: list[Holding], local: list[Holding]) -> list[Holding]:
    """The central's list, with this device's ledger ids added, plus local tickets it has not heard of yet."""
    by_key = {(h.day, h.display): h for h in local}
    out = []
    for h in central:
        mine = by_key.pop((h.day, h.display), None)
        if mine is not None:
            h = Holding(**{**h.__dict__, "ticket_id": mine.ticket_id, "service_zh": mine.service_zh or h.service_zh})
        out.append(h)
    return out + list(by_key.values())


def holding_from_central(t: dict[str, Any]) -> Holding | None:
    try:
        return Holding(
            day=str(t["day"]),
            display=str(t["display"]),
            category=str(t["category"]),
            priority=bool(t.get("priority")),
            state=str(t.get("state") or "waiting"),
            issued_at=str(t.get("issued_at") or ""),
            service_zh=str(t.get("service_zh") or ""),
            service_en=str(t.get("service_en") or ""),
            device_id=str(t.get("device_id") or ""),
        )
    except (KeyError, TypeError):
        return None


# ---- the desk: cards in, standings out ----------------------------------------


class StandingSource(Protocol):
    def standing(self, citizen: Citizen) -> Standing: ...


@dataclass(frozen=True)
class DeskNews:
    """What the screen is told: a citizen's standing, or a problem in plain words (kind)."""

    kind: str  # card | bad_read | reader_down | reader_up | unavailable (no hall key)
    standing: Standing | None = None


class IdCardDesk:
    """Takes the reader thread's events and hands results to its own thread (``idcard-desk``).

    The reader thread must keep polling, and asking the central for a person's
    tickets takes a network call, so neither runs there nor on the UI thread."""

    def __init__(self, hall_key: Callable[[], bytes], service: StandingSource):
        self._hall_key = hall_key
        self.service = service
        self.listeners: list[Callable[[DeskNews], None]] = []
        self.reader_ok: bool | None = None
        self._q: queue.Queue[Any] = queue.Queue(maxsize=8)
        self._thread: threading.Thread | None = None

    # Called on the reader's thread (devices/idcard.py ReaderEvent; duck-typed: no device import here).
    def offer(self, event: Any) -> None:
        try:
            self._q.put_nowait(event)
        except queue.Full:
            log.warning("ID card desk busy: a reader event was dropped")

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="idcard-desk", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        while True:
            event = self._q.get()
            if event is None:
                return
            try:
                news = self._handle(event)
            except Exception:
                log.exception("ID card event not handled")
                news = DeskNews("bad_read")
            if news is not None:
                self._tell(news)

    def _handle(self, event: Any) -> DeskNews | None:
        kind = getattr(event, "kind", "")
        if kind == "card":
            return self._card(event.card)
        if kind in ("bad_frame", "read_failed"):
            log.info("ID card not read (%s): the citizen is asked to place it again", kind)
            return DeskNews("bad_read")
        if kind in ("not_answering", "lost"):
            self.reader_ok = False
            return DeskNews("reader_down")
        if kind == "connected":
            self.reader_ok = True
            return DeskNews("reader_up")
        return None

    def _card(self, card: Any) -> DeskNews:
        self.reader_ok = True
        try:
            key = self._hall_key()
        except Exception:  # no hall key on this device: the wiring logged what to fix
            return DeskNews("unavailable")
        try:
            person = person_key(key, card.id_number)
        except ValueError:
            return DeskNews("bad_read")  # not an 18-character number: a misread
        citizen = Citizen(person, mask_id(card.id_number), mask_name(card.name))
        del card  # the raw values go no further than this frame
        return DeskNews("card", self.service.standing(citizen))

    def _tell(self, news: DeskNews) -> None:
        for fn in list(self.listeners):
            try:
                fn(news)
            except Exception:
                log.exception("ID card listener failed")

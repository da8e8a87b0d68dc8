"""Appointments (预约签到) on the dispenser: what a booking code or a booking QR is,
and why a check-in was refused.

A booking code is 6..12 letters or digits (typed on the keypad, or read from
the QR code on the citizen's phone: ``APPT:<code>``, or a URL with
``appt=<code>`` in its query string; docs/central-api.yaml, "Booking QR").
``parse_booking`` never raises: anything else the scanner reads is not a
booking, and a code that breaks the pattern never reaches the central.

Check-in needs the central: it alone knows whether another dispenser already
used the booking, so offline the citizen is told so and offered an ordinary
ticket (docs/configuration.md, [dispenser] entries).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from kiosk.core.config import Config

CODE_RX = re.compile(r"[A-Z0-9]{6,12}")
PERSON_RX = re.compile(r"[0-9a-f]{64}")
QR_PREFIX = "APPT:"
QR_PARAM = "appt"
MAX_PAYLOAD = 512


def normal_code(text: str) -> str | None:
    """The booking code in canonical form (upper case, no spaces), or None when it is not one."""
    code = re.sub(r"[\s-]", "", text or "").upper()
    return code if CODE_RX.fullmatch(code) else None


def is_booking_payload(payload: object) -> bool:
    """Whether a scanned payload claims to be a booking QR (even a broken one):
    such a scan goes to the dispenser, every other one to the case lookup."""
    if not isinstance(payload, str) or len(payload) > MAX_PAYLOAD:
        return False
    text = payload.strip()
    if text.upper().startswith(QR_PREFIX):
        return True
    if "://" in text:
        try:
            return QR_PARAM in parse_qs(urlsplit(text).query)
        except ValueError:
            return False
    return False


def parse_booking(payload: object) -> str | None:
    """The booking code a scanned QR holds, or None (not a booking QR, or a broken one)."""
    if not is_booking_payload(payload):
        return None
    assert isinstance(payload, str)
    text = payload.strip()
    if text.upper().startswith(QR_PREFIX):
        return normal_code(text[len(QR_PREFIX) :])
    values = parse_qs(urlsplit(text).query).get(QR_PARAM) or []
    return normal_code(values[0]) if len(values) == 1 else None


def policy(cfg: Config) -> dict[str, object]:
    """This device's check-in rules, sent with each check-in (the central's own override them)."""
    d = cfg.dispenser
    return {
        "early_minutes": d.appointment_early_minutes,
        "late_minutes": d.appointment_late_minutes,
        "ticket": d.appointment_ticket,
        "prefix": d.appointment_prefix,
    }

"""Technician PIN: stored only as a PBKDF2-SHA256 hash in the config."""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import os

ITERATIONS = 200_000
# Six digits at least: with the lockout after a few wrong tries, guessing one is hopeless.
MIN_DIGITS = 6
# The demo's published PIN 246810 (config/demo.toml): never a device's.
DEMO_PIN = "246810"
DEMO_PIN_HASH = "pbkdf2_sha256$200000$ZGVtby1zYWx0LTAwMDAwMA==$Frk0YLlYIHSdIvxrYFYE/YGGRUtJ+60xySmufWLitx4="


def hash_pin(pin: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    if not pin.isdigit() or not MIN_DIGITS <= len(pin) <= 12:
        raise ValueError(f"a PIN is {MIN_DIGITS} to 12 digits")
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_pin(pin: str, stored: str) -> bool:
    try:
        algo, iterations, salt, digest = stored.split("$")
        if algo != "pbkdf2_sha256":
            return False
        got = hashlib.pbkdf2_hmac("sha256", pin.encode(), base64.b64decode(salt), int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


def read_new_pin() -> str:
    first = getpass.getpass(f"New technician PIN ({MIN_DIGITS}-12 digits): ")
    if first != getpass.getpass("Again: "):
        raise SystemExit("kiosk: the two PINs differ")
    return first

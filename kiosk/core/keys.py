"""Every name the device stores something under, in one place.

A cache key written by one thread and read by another (the sync worker fills
``central.config``, the dispenser and the pad read it) is a contract between
modules; when each module spelt it itself, a rename in one place silently left
the reader with nothing. So the cache keys, the ledger's meta keys and the
file names under ``[storage] dir`` are defined here only, and
tests/core/test_keys.py fails when one of these literals appears anywhere else
in the product.

Renaming a value here changes what an installed device finds on disk: the
old entry is orphaned (a cache entry is re-fetched, a meta key or file is not),
so treat the values as part of the storage format.
"""

from __future__ import annotations

# ---- cache keys (kiosk.core.cache: re-fetchable, losing them loses nothing) ----

CENTRAL_CONFIG = "central.config"  # the central's device config document (dict)
CENTRAL_CONFIG_ETAG = "central.config.etag"  # its ETag, for a conditional GET
QUEUE_STATUS = "queue.status"  # the last queue status (dict)
STAFF_CARD_PREFIX = "staff.card."  # + window: {"card": dict, "etag": str, "fetched_at": iso}
STAFF_PHOTO_PREFIX = "staff.photo."  # + staff id: {"content_type", "data_b64", "etag"}
LOOKUP_CASE_PREFIX = "lookup:"  # + receipt hash: a case shown recently, for offline answers


def staff_card(window: str) -> str:
    return f"{STAFF_CARD_PREFIX}{window}"


def staff_photo(staff_id: str) -> str:
    return f"{STAFF_PHOTO_PREFIX}{staff_id}"


# ---- ledger meta keys (kiosk.core.ledger ``meta`` table: durable) ----

LAST_SYNC = "last_sync"  # wall time of the last successful sync
SELFTEST_LAST_WRITE = "selftest.last_write"  # the self-check proves the ledger takes a write
DISPENSER_SERVICE_DAY = "dispenser.service_day"  # the day the ticket counters belong to
DISPENSER_DAY_ANCHOR = "dispenser.day_anchor"  # JSON {boot, wall, mono}: the wall clock at a monotonic instant
LOOKUP_SECRET = "lookup.secret"  # HMAC key for receipt numbers (never leaves the device)
LOOKUP_LOCK_PREFIX = "lookup.lock."  # + receipt hash: wrong-code tries and lockout
RATING_CHAIN_HEAD = "ratings.chain_head"  # "<count>:<hash of newest record>"
# "<records pruned>:<hash of the last pruned record>": where the chain in the table starts
RATING_CHAIN_CHECKPOINT = "ratings.chain_checkpoint"
PAD_OPEN_SESSION = "pad.open_session"  # JSON of the open rating session and its choice so far, or ""
LEDGER_FULL_CHECK = "ledger.full_check"  # "<UTC ISO time> ok|damaged": the last full integrity check
LEDGER_QUICK_CHECK = "ledger.quick_check"  # "<UTC ISO time> ok|damaged": the last whole-file quick check
LEDGER_PRUNED = "ledger.pruned"  # JSON: the last retention pass (when, cutoff, rows per table)
TECHNICIAN_FAILED_TRIES = "technician.failed_tries"
TECHNICIAN_LOCKED_UNTIL = "technician.locked_until"

# ---- files and folders under [storage] dir ----

LEDGER_FILE = "ledger.sqlite3"
CACHE_FILE = "cache.sqlite3"
BOOT_GUARD_FILE = "boot-guard.json"  # written before anything else at start (kiosk.core.bootguard)
STAFF_PHOTO_DIR = "staff-photos"  # cached staff photos written out as files for the screen
RELEASE_HEALTH_FILE = "release-health.json"  # the app's verdict on the release on trial (kiosk.release)
SIM_PRINTED_DIR = "sim-printed"  # the simulated printer's last jobs (kiosk ticket-preview --last)
KIVY_HOME_DIR = "kivy"  # Kivy's own config and logs, unless KIVY_HOME is set

# ---- files of `kiosk demo` under its data folder ----

DEMO_TOKEN_FILE = "device-token"
DEMO_CONFIG_FILE = "kiosk.toml"
DEMO_DEVICE_DIR = "device"  # the demo device's [storage] dir
DEMO_CENTRAL_DIR = "central"  # the bench central's data folder

# ---- the bench central's own storage (kiosk.central.store) ----

CENTRAL_DB_FILE = "central.sqlite3"

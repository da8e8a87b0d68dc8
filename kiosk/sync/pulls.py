"""Download: what the device keeps of the central's state, refreshed into the cache.

The config document (categories, rating reasons ...), the window's staff card
and photo for a pad, the queue status for a dispenser. Each is fetched with
its ETag, so an unchanged answer costs a 304. A refusal of one pull (no staff
on the window yet) is recorded in the summary and is not an outage.

Every document is checked (kiosk/sync/validate.py) before it is cached: a bad
one is never stored, the last good one stays in use, and the rejection is kept
in ``rejected`` for the heartbeat's ``central_data`` part until a good one
arrives, so the central's operator sees which field of which document to fix.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable
from typing import Any

from kiosk.core.cache import Cache
from kiosk.core.keys import CENTRAL_CONFIG, CENTRAL_CONFIG_ETAG, QUEUE_STATUS, staff_card, staff_photo
from kiosk.core.time import wall_now
from kiosk.sync.client import CentralClient, CentralRejected, CentralUnreachable
from kiosk.sync.validate import check_central_config, check_queue_status, check_staff_card

log = logging.getLogger("kiosk.sync")

MAX_REPORTED = 5  # problems per document in the heartbeat: enough to find the field


class Pulls:
    def __init__(
        self,
        cache: Cache | None,
        client: CentralClient,
        *,
        window: str | None = None,
        queue: bool = False,
        on_config: Callable[[], None] | None = None,
    ):
        self.cache = cache
        self.client = client
        self.window = window
        self.queue = queue
        # Called (on the sync thread) after a new, valid config was stored.
        self.on_config = on_config
        self._lock = threading.Lock()
        self._rejected: dict[str, dict[str, Any]] = {}
        if cache is not None:
            self._drop_invalid_cached(cache)

    def _drop_invalid_cached(self, cache: Cache) -> None:
        # A config cached before these checks existed (or by an older firmware)
        # may be one that crashes a role: fall back to the file's settings until
        # the central sends a good one. Its ETag goes too, so the next pull gets it whole.
        data = cache.get(CENTRAL_CONFIG)
        if data is None:
            return
        problems = check_central_config(data)
        if problems:
            log.error("cached central config dropped, it fails the checks: %s", "; ".join(problems[:MAX_REPORTED]))
            cache.delete(CENTRAL_CONFIG)
            cache.delete(CENTRAL_CONFIG_ETAG)
            self._reject("config", problems, None)

    # -- what the heartbeat reports ----------------------------------------------
    def rejected(self) -> dict[str, dict[str, Any]]:
        """Per document (config, queue, staff): the problems of the last answer refused, until a good one."""
        with self._lock:
            return {k: dict(v) for k, v in self._rejected.items()}

    def _reject(self, what: str, problems: list[str], etag: str | None) -> str:
        with self._lock:
            self._rejected[what] = {
                "problems": problems[:MAX_REPORTED],
                "more": max(0, len(problems) - MAX_REPORTED),
                "etag": etag,
                "at": wall_now("seconds"),
            }
        log.error("central %s refused, keeping the last good one: %s", what, "; ".join(problems[:MAX_REPORTED]))
        return "rejected: " + "; ".join(problems[:MAX_REPORTED])

    def _accepted(self, what: str) -> None:
        with self._lock:
            self._rejected.pop(what, None)

    # -- the pulls --------------------------------------------------------------
    def pull(self) -> dict[str, str]:
        """Refresh everything this device reads; returns what happened per item.

        Raises CentralUnreachable / CentralAuthError (an outage), never for one refused item."""
        pulled: dict[str, str] = {}
        cache = self.cache
        if cache is None:
            return pulled
        pulled["config"] = self.pull_config()
        if self.window:
            try:
                pulled["staff"] = self._staff(cache, self.window)
            except CentralRejected as e:  # e.g. no staff on this window yet: not a connectivity problem
                pulled["staff"] = f"refused: {e.message}"
        if self.queue:
            try:
                queue = self.client.queue_status()
            except CentralRejected as e:
                pulled["queue"] = f"refused: {e.message}"
            else:
                problems = check_queue_status(queue)
                if problems:
                    pulled["queue"] = self._reject("queue", problems, None)
                else:
                    cache.set(QUEUE_STATUS, queue)
                    self._accepted("queue")
                    pulled["queue"] = "updated"
        return pulled

    def pull_config(self) -> str:
        """The config alone (what an out-of-service device still fetches); raises for an outage."""
        cache = self.cache
        if cache is None:
            return "no cache"
        try:
            etag = cache.get(CENTRAL_CONFIG_ETAG) if cache.get(CENTRAL_CONFIG) else None
            f = self.client.get_config(etag)
        except CentralRejected as e:
            return f"refused: {e.message}"
        if f.not_modified:  # the central is back to the config this device holds: nothing refused now
            self._accepted("config")
            return "not_modified"
        problems = check_central_config(f.data)
        if problems:
            # The bad answer's ETag is not stored: the next pull asks with the last
            # good one and so gets the corrected config as soon as there is one.
            return self._reject("config", problems, f.etag)
        cache.set(CENTRAL_CONFIG, f.data)
        cache.set(CENTRAL_CONFIG_ETAG, f.etag)
        self._accepted("config")
        if self.on_config is not None:
            self.on_config()
        return "updated"

    def _staff(self, cache: Cache, window: str) -> str:
        key = staff_card(window)
        have = cache.get(key) or {}
        f = self.client.staff_card(window, have.get("etag"))
        card = have.get("card") if f.not_modified else f.data
        if not isinstance(card, dict):
            # A 304 for a card this cache does not hold, or a card that is not an
            # object: a broken answer, retried like one (not a KeyError in the loop).
            raise CentralUnreachable(f"the central's staff card for window {window} is unusable")
        if not f.not_modified:
            problems = check_staff_card(card)
            if problems:
                return self._reject("staff", problems, f.etag)
            cache.set(key, {"card": card, "etag": f.etag, "fetched_at": wall_now("seconds")})
            self._accepted("staff")
        photo_key = staff_photo(card["staff_id"])
        photo = cache.get(photo_key) or {}
        p = self.client.staff_photo(card["staff_id"], photo.get("etag"))
        if not p.not_modified:
            cache.set(
                photo_key,
                {"content_type": p.content_type, "etag": p.etag, "data_b64": base64.b64encode(p.data).decode("ascii")},
            )
        return "not_modified" if f.not_modified and p.not_modified else "updated"

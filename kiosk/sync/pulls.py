"""Download: what the device keeps of the central's state, refreshed into the cache.

The config document (categories, rating reasons ...), the window's staff card
and photo for a pad, the queue status for a dispenser. Each is fetched with
its ETag, so an unchanged answer costs a 304. A refusal of one pull (no staff
on the window yet) is recorded in the summary and is not an outage.
"""

from __future__ import annotations

import base64

from kiosk.core.cache import Cache
from kiosk.core.keys import CENTRAL_CONFIG, CENTRAL_CONFIG_ETAG, QUEUE_STATUS, staff_card, staff_photo
from kiosk.core.time import wall_now
from kiosk.sync.client import CentralClient, CentralRejected, CentralUnreachable


class Pulls:
    def __init__(self, cache: Cache | None, client: CentralClient, *, window: str | None = None, queue: bool = False):
        self.cache = cache
        self.client = client
        self.window = window
        self.queue = queue

    def pull(self) -> dict[str, str]:
        """Refresh everything this device reads; returns what happened per item.

        Raises CentralUnreachable / CentralAuthError (an outage), never for one refused item."""
        pulled: dict[str, str] = {}
        cache = self.cache
        if cache is None:
            return pulled
        try:
            etag = cache.get(CENTRAL_CONFIG_ETAG) if cache.get(CENTRAL_CONFIG) else None
            f = self.client.get_config(etag)
        except CentralRejected as e:
            pulled["config"] = f"refused: {e.message}"
        else:
            if not f.not_modified:
                cache.set(CENTRAL_CONFIG, f.data)
                cache.set(CENTRAL_CONFIG_ETAG, f.etag)
            pulled["config"] = "not_modified" if f.not_modified else "updated"
        if self.window:
            try:
                pulled["staff"] = self._staff(cache, self.window)
            except CentralRejected as e:  # e.g. no staff on this window yet: not a connectivity problem
                pulled["staff"] = f"refused: {e.message}"
        if self.queue:
            try:
                cache.set(QUEUE_STATUS, self.client.queue_status())
                pulled["queue"] = "updated"
            except CentralRejected as e:
                pulled["queue"] = f"refused: {e.message}"
        return pulled

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
            cache.set(key, {"card": card, "etag": f.etag, "fetched_at": wall_now("seconds")})
        photo_key = staff_photo(card["staff_id"])
        photo = cache.get(photo_key) or {}
        p = self.client.staff_photo(card["staff_id"], photo.get("etag"))
        if not p.not_modified:
            cache.set(
                photo_key,
                {"content_type": p.content_type, "etag": p.etag, "data_b64": base64.b64encode(p.data).decode("ascii")},
            )
        return "not_modified" if f.not_modified and p.not_modified else "updated"

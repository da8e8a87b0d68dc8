"""Upload: the outbox to the central system, in batches, each event with its own UUID.

Delivery is at-least-once from here and exactly-once at the central system:
an event leaves the outbox only on the central's ``accepted`` or
``duplicate`` for its UUID; ``rejected`` moves it to dead letters with the
reason (a technician sees it); an event the answer does not mention stays
pending and travels again, with the same UUID, next time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.core.ledger import Ledger
from kiosk.sync.client import CentralAuthError, CentralClient, CentralRejected, CentralUnreachable

log = logging.getLogger("kiosk.sync")


@dataclass
class UploadResult:
    sent: bool = False  # anything was sent (a reply from the central proves it is there)
    delivered: int = 0
    duplicates: int = 0
    rejected: int = 0


class OutboxUploader:
    """Drains the ledger's outbox; remembers a smaller batch size after a batch was refused as too big."""

    def __init__(
        self,
        ledger: Ledger,
        client: CentralClient,
        device_id: str,
        batch_size: int = 200,
        on_progress: Callable[[], object] | None = None,
    ):
        self.ledger = ledger
        self.client = client
        self.device_id = device_id
        self.batch_size = batch_size
        self.on_progress = on_progress  # called with nothing after each delivered batch

    def upload(self, result: UploadResult | None = None) -> UploadResult:
        """Send every pending event. Raises CentralUnreachable / CentralAuthError when the central
        cannot take them now; what was delivered before that stays delivered and is counted
        in ``result`` (pass one in to read the counts after a failure)."""
        result = result if result is not None else UploadResult()
        while True:
            batch = self.ledger.pending_events(limit=self.batch_size)
            if not batch:
                return result
            result.sent = True
            try:
                answers_list = self.client.upload_events([ev.wire(self.device_id) for ev in batch])
            except (CentralUnreachable, CentralAuthError) as e:
                self.ledger.note_attempt([ev.uuid for ev in batch], str(e)[:300])
                raise
            except CentralRejected as e:
                # The whole batch refused (e.g. too large): nothing is lost, try smaller batches.
                self.ledger.note_attempt([ev.uuid for ev in batch], str(e)[:300])
                if self.batch_size > 1:
                    self.batch_size = max(1, self.batch_size // 2)
                    continue
                raise CentralUnreachable(str(e), e.retry_after) from e
            # Only entries of the contract's shape count: an id that is a list or an object
            # (valid JSON, a broken central) leaves its event unanswered, not the loop crashed.
            answers = {r["id"]: r for r in answers_list if isinstance(r, dict) and isinstance(r.get("id"), str)}
            delivered, unanswered = [], []
            for ev in batch:
                r = answers.get(ev.uuid)
                status = r.get("status") if r else None
                if status in ("accepted", "duplicate"):
                    delivered.append(ev.uuid)
                    if status == "accepted":
                        result.delivered += 1
                    else:
                        result.duplicates += 1
                elif status == "rejected":
                    reason = str(r.get("reason") or "rejected without a reason")[:500] if r else ""
                    log.warning("central rejected event %s (%s): %s", ev.uuid, ev.kind, reason)
                    self.ledger.mark_dead(ev.uuid, reason)
                    result.rejected += 1
                else:
                    unanswered.append(ev.uuid)
            self.ledger.mark_delivered(delivered)
            if unanswered:
                # Kept pending: a later retry with the same UUIDs settles them.
                self.ledger.note_attempt(unanswered, "no answer for this event in the batch reply")
                raise CentralUnreachable(f"central left {len(unanswered)} events unanswered")
            if self.on_progress is not None:
                self.on_progress()
            if len(batch) < self.batch_size:
                return result

"""What the sync worker tells the screen and the technician: one typed snapshot.

Upload and download are reported apart (an outbox that cannot be delivered is
a different problem from a staff card that cannot be refreshed), as well as
the overall state the header shows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

State = Literal["starting", "online", "offline", "auth_error", "busy"]  # busy: a 429, "wait"


@dataclass
class SyncStatus:
    status: State = "starting"
    last_success: str | None = None  # wall time of the last full exchange
    last_attempt: str | None = None
    pending: int = 0  # events waiting in the outbox
    dead: int = 0  # events the central refused for good
    last_error: str | None = None
    upload_error: str | None = None  # why the outbox could not be delivered, if it could not
    download_error: str | None = None  # why the pulls or the heartbeat failed, if they did
    next_retry_s: float | None = None
    failures: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

"""Who may do what at the central: a device token's scope, and the rule per operation.

Each token is one device with its roles (and, for a pad, its window). The
contract (docs/central-api.yaml) states each operation's scope; this module is
that table, so the server and the document have one list to agree on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROLES = ("dispenser", "lookup", "pad")
WINDOW_RX = re.compile(r"[0-9A-Za-z-]{1,8}")

# Operation -> the role it needs (None: any device token). The queue and the
# config are what the hall's own screens show everyone; whoami and the
# heartbeat are how any device checks in.
OPERATION_ROLE: dict[str, str | None] = {
    "whoami": None,
    "getConfig": None,
    "heartbeat": None,
    "queueStatus": None,
    "queueStatusOne": None,
    "uploadEvents": None,  # each event is then checked by its family, below
    "issueTicket": "dispenser",
    "leaseNumbers": "dispenser",
    "checkInAppointment": "dispenser",
    "lookupCase": "lookup",
    "windowSession": "pad",  # and only the pad's own window
    "staffCard": "pad",  # and only the pad's own window
    "staffPhoto": "pad",  # and only the staff member now on the pad's window
}

# Event family -> the role that may send it (None: any device).
EVENT_ROLE: dict[str, str | None] = {
    "ticket": "dispenser",
    "printer": "dispenser",
    "rating": "pad",
    "pad": "pad",
    "lookup": "lookup",
    "audit": None,
    "device": None,
}


class ScopeError(Exception):
    """The token is valid but does not cover this operation (HTTP 403, error `forbidden`)."""


@dataclass(frozen=True)
class Scope:
    device_id: str
    roles: frozenset[str]
    window: str | None = None

    def describe(self) -> str:
        roles = ", ".join(sorted(self.roles)) or "no roles"
        return f"device {self.device_id} ({roles}{', window ' + self.window if self.window else ''})"

    def require(self, role: str | None, what: str) -> None:
        if role is not None and role not in self.roles:
            raise ScopeError(
                f"the token of {self.describe()} may not {what}: that needs the {role} role; "
                f"issue this device a token with --role {role}"
            )

    def require_window(self, window: str, what: str) -> None:
        self.require("pad", what)
        if window != self.window:
            raise ScopeError(f"the token of {self.describe()} may not {what} of window {window}: only its own window")


def check_roles(roles: list[str] | tuple[str, ...], window: str | None) -> tuple[frozenset[str], str | None]:
    """Validate what a token is issued for; ValueError says what to fix."""
    if isinstance(roles, str):
        roles = [roles]
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(f"roles {list(roles)!r}: give one or more of {', '.join(ROLES)}")
    if "pad" in roles:
        if not window or not WINDOW_RX.fullmatch(window):
            raise ValueError("a pad's token needs its window (1..8 letters, digits or '-'), e.g. --window 01")
    elif window:
        raise ValueError("only a pad's token has a window; drop --window or add --role pad")
    return frozenset(roles), window or None

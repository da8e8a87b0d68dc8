"""The central client's errors, apart from the client: a role catches them without
importing the HTTP stack (requests and urllib3 are loaded only when a central is
configured; see kiosk/wiring.py _connect_central). kiosk/sync/client.py says
what each kind means to a caller."""

from __future__ import annotations

from typing import Any


class CentralError(Exception):
    pass


class CentralUnreachable(CentralError):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class CentralOffline(CentralUnreachable):
    """Not sent: the central has left the last calls unanswered and a probe waits for it (kiosk/sync/breaker.py)."""


class CentralBusy(CentralUnreachable):
    """The central asked this device to wait (429): "try again in `retry_after` s".
    Not an outage and not a fault of the device: callers wait, they do not alarm."""


class CentralTLSError(CentralUnreachable):
    """The TLS handshake or certificate check failed: retried like an outage, but a
    self-check fails on it, since a wrong CA file, clock or scheme never heals alone."""


class CentralNotCentral(CentralUnreachable):
    """The address answered, but not as a central: a redirect (never followed, so the
    token goes nowhere else) or a 2xx page that is not JSON (a web portal, a captive
    page). Retried like an outage; the self-check fails on it, since a wrong
    central.url never heals by waiting."""


class CentralAuthError(CentralError):
    pass


class CentralRejected(CentralError):
    def __init__(
        self, status: int, code: str, message: str, body: dict[str, Any] | None = None, retry_after: float | None = None
    ):
        super().__init__(f"central refused ({status} {code}): {message}")
        self.status, self.code, self.message, self.body, self.retry_after = (
            status,
            code,
            message,
            body or {},
            retry_after,
        )


class CaseCodeWrong(CentralRejected):
    """Wrong 查询码 (or unknown 受理编号): `attempts_left` before the lockout."""

    @property
    def attempts_left(self) -> int | None:
        left = self.body.get("attempts_left")
        ok = isinstance(left, int) and not isinstance(left, bool) and 0 <= left <= 100
        return left if ok else None  # a true, a -5 or a 10**9 is no count to show a citizen


class CaseLocked(CentralRejected):
    """Too many wrong codes for this receipt number: wait `retry_after` seconds."""

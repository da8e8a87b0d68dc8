"""Client of the central system (docs/central-api.yaml), over one requests.Session.

Every failure is one of three kinds, because callers act on the kind, not
on the HTTP details:

- ``CentralUnreachable``: try again later (no connection, timeout, 5xx, 429,
  an answer that is not JSON); carries ``retry_after`` when the server said so;
  its ``CentralBusy`` is the 429: the central is up and asks this device to wait;
- ``CentralAuthError``: the device token is missing, wrong or revoked — retrying
  will not help until a technician fixes it;
- ``CentralRejected``: the central understood and said no (4xx); carries its
  error code and message. ``CaseCodeWrong`` and ``CaseLocked`` are the lookup's.
"""

from __future__ import annotations

import email.utils
import heapq
import itertools
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from kiosk import __version__
from kiosk.core.config import Config, ConfigError, check_ca_file
from kiosk.sync.breaker import Breaker
from kiosk.sync.errors import CaseCodeWrong as CaseCodeWrong
from kiosk.sync.errors import CaseLocked as CaseLocked
from kiosk.sync.errors import CentralAuthError as CentralAuthError
from kiosk.sync.errors import CentralBusy as CentralBusy
from kiosk.sync.errors import CentralError as CentralError
from kiosk.sync.errors import CentralNotCentral as CentralNotCentral
from kiosk.sync.errors import CentralOffline as CentralOffline
from kiosk.sync.errors import CentralRejected as CentralRejected
from kiosk.sync.errors import CentralTLSError as CentralTLSError
from kiosk.sync.errors import CentralUnreachable as CentralUnreachable

API = "/api/v1"


@dataclass(frozen=True)
class Fetched:
    """A conditional GET's result: `not_modified` means keep what you have (data is None)."""

    data: Any
    etag: str | None
    not_modified: bool = False
    content_type: str | None = None


# ---- a deadline on the whole answer --------------------------------------
# requests' read timeout bounds each recv, not the answer: a central that sends
# a byte now and then (a congested link, a stuck proxy) keeps a call going for
# as long as it likes. So every call also has a total deadline, kept by one
# watchdog thread that shuts the call's socket down when it passes; the
# blocked read then fails at once and the call ends as "did not answer in time".


@dataclass(order=True)
class _Watch:
    at: float
    n: int
    conn: HTTPConnection | None = field(default=None, compare=False)
    # The socket the request went out on: an answer with "Connection: close" is
    # read after http.client has let go of it (conn.sock is None by then).
    sock: socket.socket | None = field(default=None, compare=False)
    expired: bool = field(default=False, compare=False)
    done: bool = field(default=False, compare=False)


_current = threading.local()  # the _Watch of the call this thread is making


class _WatchedConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        # Called on the calling thread for every request, new or kept-alive connection.
        watch = getattr(_current, "watch", None)
        if watch is not None:
            watch.conn = self
        super().request(*args, **kwargs)
        if watch is not None:
            watch.sock = self.sock


class _WatchedHTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _DeadlineAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedHTTPSPool}


class _Watchdog:
    """One thread for every client of the process; it sleeps until the nearest deadline."""

    RECHECK_S = 0.05  # a call still connecting (no socket yet) is looked at again this soon

    def __init__(self) -> None:
        self._heap: list[_Watch] = []
        self._cond = threading.Condition()
        self._n = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> _Watch:
        watch = _Watch(time.monotonic() + seconds, next(self._n))
        with self._cond:
            heapq.heappush(self._heap, watch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="central-deadline", daemon=True)
                self._thread.start()
            self._cond.notify()
        return watch

    def disarm(self, watch: _Watch) -> None:
        with self._cond:
            watch.done = True  # left in the heap; dropped when its time comes

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0].done:
                    if self._heap:
                        heapq.heappop(self._heap)
                        continue
                    self._cond.wait()
                watch = self._heap[0]
                wait = watch.at - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                watch.expired = True
                conn = watch.conn
                sock = (getattr(conn, "sock", None) if conn is not None else None) or watch.sock
                if sock is None:  # not connected yet: the connect timeout runs; look again soon
                    watch.at = time.monotonic() + self.RECHECK_S
                    heapq.heappush(self._heap, watch)
                    continue
                # Under the lock, so a call that has just ended (disarm waits) keeps its connection.
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed: the call is ending anyway


_WATCHDOG = _Watchdog()


MAX_ANSWER_BYTES = 8 * 1024 * 1024  # a staff photo is the largest answer: well under this
MAX_WAIT_S = 86400.0  # a central's "come back later" longer than a day is a broken answer


def seconds_or_none(value: object) -> float | None:
    """A wait the central gave in a body: a number of seconds within a day, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_WAIT_S:
        return None
    return float(value)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_WAIT_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(MAX_WAIT_S, max(0.0, when.timestamp() - time.time()))


class CentralClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        verify: bool | str = True,
        offline_after: int = 3,
        probe_every: float = 5.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        # Passed with every request, not only set on the session: requests lets
        # $REQUESTS_CA_BUNDLE override a session's verify, which would silently
        # replace the CA the technician configured in central.ca_file.
        self.verify = verify
        self._headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": f"hall-kiosk/{__version__}",
            "Accept": "application/json",
        }
        # One requests.Session per thread: the sync worker, the pad's window
        # watcher, the lookup worker, the dispenser's refresh, the self-check and
        # the UI pool all call the central, and requests does not document a
        # Session (its cookie jar, its adapters' pool bookkeeping) as safe to
        # share between threads. Every session made is kept so close() ends them all.
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        # Shared by every thread: after offline_after unanswered calls in a row, the calls a
        # citizen waits on fail at once until the probe (or any call) gets an answer.
        self.breaker = Breaker(offline_after, probe_every, self._probe)

    def _probe(self) -> None:
        t = min(2.0, self.connect_timeout + self.read_timeout)
        self._request("GET", "/whoami", connect_timeout=min(t, self.connect_timeout), read_timeout=t, total_timeout=t)

    @classmethod
    def from_config(cls, cfg: Config) -> CentralClient:
        c = cfg.central
        if c.url.startswith("http://") and not c.allow_http:
            raise ValueError(
                f"central.url {c.url} is plain http: the device token would travel in clear. "
                "Use https://, or set allow_http = true for a bench central only"
            )
        if c.ca_file:
            problem = check_ca_file(c.ca_file)
            if problem:  # removed since the config was checked: offline with the reason, not an OSError later
                raise ConfigError(cfg.path, [problem])
        return cls(
            c.url,
            cfg.read_token(),
            c.connect_timeout,
            c.read_timeout,
            c.ca_file or True,
            offline_after=c.offline_after,
            probe_every=c.probe_interval,
        )

    @property
    def session(self) -> requests.Session:
        """This thread's session, made on its first request with the client's settings."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._new_session()
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def _new_session(self) -> requests.Session:
        # Everything a session carries is set here, so every thread's session is
        # the same; verify and the timeouts travel with each request (_request).
        session = requests.Session()
        session.headers.update(self._headers)
        session.mount("http://", _DeadlineAdapter())
        session.mount("https://", _DeadlineAdapter())
        return session

    def close(self) -> None:
        """Close every thread's session (their pooled connections). A thread that
        calls again afterwards keeps working on a fresh connection, as requests does."""
        self.breaker.close()
        with self._sessions_lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.close()

    def __repr__(self) -> str:  # never show the token
        return f"CentralClient({self.base_url!r})"

    # -- one request ------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        read_timeout: float | None = None,
        connect_timeout: float | None = None,
        total_timeout: float | None = None,
        urgent: bool = False,
    ) -> requests.Response:
        """One call; it ends within `total_timeout` (default: connect + read timeout) whatever the server does.

        `urgent`: a citizen waits on it, so it is not sent while the breaker is open."""
        if urgent and self.breaker.open:
            raise CentralOffline(
                f"{self.base_url} left {self.breaker.threshold} calls in a row unanswered: offline until "
                f"a probe (every {self.breaker.probe_every:g} s) gets an answer"
            )
        try:
            r = self._send(method, path, json, params, headers, read_timeout, connect_timeout, total_timeout)
        except CentralUnreachable as e:
            self.breaker.failure(type(e).__name__)
            raise
        self.breaker.success()  # an answer, whatever its status: the central is there
        return self._check(r, method, path)

    def _send(
        self,
        method: str,
        path: str,
        json: Any,
        params: dict[str, str] | None,
        headers: dict[str, str] | None,
        read_timeout: float | None,
        connect_timeout: float | None,
        total_timeout: float | None,
    ) -> requests.Response:
        url = self.base_url + API + path
        timeout = (
            connect_timeout if connect_timeout is not None else self.connect_timeout,
            read_timeout if read_timeout is not None else self.read_timeout,
        )
        total = total_timeout if total_timeout is not None else timeout[0] + timeout[1]
        watch = _WATCHDOG.arm(total)
        _current.watch = watch
        try:
            # Redirects are not followed: the token is for this address alone, and a
            # POST turned into a GET elsewhere would read a stranger's answer as ours.
            r = self.session.request(
                method,
                url,
                json=json,
                params=params,
                headers=headers,
                timeout=timeout,
                verify=self.verify,
                allow_redirects=False,
                stream=True,  # read below, up to MAX_ANSWER_BYTES
            )
            self._read_bounded(r, method, path)
        except requests.RequestException as e:
            if watch.expired:  # the watchdog cut it: say so, not "connection reset"
                raise CentralUnreachable(
                    f"{self.base_url} did not finish answering {method} {path} within {total:g} s "
                    "(a slow or congested link to the central?)"
                ) from None
            if isinstance(e, requests.exceptions.SSLError):
                raise CentralTLSError(
                    f"TLS check of {self.base_url} failed ({e.__class__.__name__}): "
                    "check central.ca_file and the device clock"
                ) from None
            if isinstance(e, requests.Timeout):
                raise CentralUnreachable(f"{self.base_url} did not answer {method} {path} in time") from None
            if isinstance(e, requests.ConnectionError):
                raise CentralUnreachable(f"cannot reach {self.base_url} ({_reason(e)})") from None
            raise CentralUnreachable(f"request to {self.base_url} failed ({e.__class__.__name__})") from None
        finally:
            _current.watch = None
            _WATCHDOG.disarm(watch)
        if watch.expired:
            # Cut mid-answer, http.client may still make a "response" of what it got
            # (a status line and no more reads as headers ended, an empty body).
            raise CentralUnreachable(
                f"{self.base_url} did not finish answering {method} {path} within {total:g} s "
                "(a slow or congested link to the central?)"
            )
        return r

    def _read_bounded(self, r: requests.Response, method: str, path: str) -> None:
        """The whole answer, read here under the call's deadline and cut at MAX_ANSWER_BYTES:
        the deadline bounds the time an answer takes, this its size (decoded, so a
        compressed bomb is cut too). No answer of the contract comes near it."""
        parts, size = [], 0
        for chunk in r.iter_content(64 * 1024):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                r.close()
                raise CentralNotCentral(
                    f"{self.base_url} sent more than {MAX_ANSWER_BYTES // (1024 * 1024)} MiB answering "
                    f"{method} {path}: not an answer of the central's API (is central.url right?)"
                )
            parts.append(chunk)
        r._content = b"".join(parts)  # what Response.content would have read, now bounded

    def _check(self, r: requests.Response, method: str, path: str) -> requests.Response:
        """The answer, or the error its status means."""
        if 300 <= r.status_code < 400 and r.status_code != 304:
            where = r.headers.get("Location", "")[:200] or "nowhere"
            raise CentralNotCentral(
                f"{self.base_url} answered {r.status_code} redirecting {method} {path} to {where}: "
                "the device does not follow redirects; set central.url to the central's own address"
            )
        if r.status_code < 400:
            return r
        retry_after = parse_retry_after(r.headers.get("Retry-After"))
        if r.status_code == 429:
            raise CentralBusy(f"{self.base_url} asked to wait before the next {method} {path} (429)", retry_after)
        if r.status_code >= 500:
            raise CentralUnreachable(f"{self.base_url} answered {r.status_code} to {method} {path}", retry_after)
        # A refusal's body is a JSON object by the contract; anything else
        # (an HTML error page, a JSON list) counts as an empty one.
        answer = self._json_or_none(r)
        body: dict[str, Any] = answer if isinstance(answer, dict) else {}
        code = body.get("error", "")
        message = body.get("message", r.reason or "")
        if r.status_code == 401 or (r.status_code == 403 and code != "wrong_code"):
            raise CentralAuthError(
                f"central refused the device token ({r.status_code}: {message}); "
                "check central.token_file or issue a new token"
            )
        if r.status_code == 403:
            raise CaseCodeWrong(403, code, message, body)
        if r.status_code == 423:
            raise CaseLocked(
                423, code or "locked", message, body, retry_after or seconds_or_none(body.get("retry_after_s"))
            )
        raise CentralRejected(r.status_code, code or "rejected", message, body, retry_after)

    @staticmethod
    def _json_or_none(r: requests.Response) -> object:
        try:
            return r.json()
        except ValueError:
            return {}

    def _json(self, r: requests.Response) -> Any:
        try:
            return r.json()
        except ValueError:
            kind = (r.headers.get("Content-Type") or "no type").split(";")[0][:60]
            raise CentralNotCentral(
                f"{self.base_url} sent an answer that is not JSON ({len(r.content)} bytes of {kind}, "
                f"HTTP {r.status_code}): is central.url the central, not a web page?"
            ) from None

    def _object(self, r: requests.Response) -> dict[str, Any]:
        """An answer the contract makes a JSON object; anything else is a broken answer, like non-JSON."""
        data = self._json(r)
        if not isinstance(data, dict):
            raise CentralUnreachable(
                f"{self.base_url} sent an answer that is not a JSON object "
                f"({type(data).__name__}, HTTP {r.status_code})"
            )
        return data

    def _conditional(self, path: str, etag: str | None, binary: bool = False) -> Fetched:
        r = self._request("GET", path, headers={"If-None-Match": etag} if etag else None)
        if r.status_code == 304:
            return Fetched(None, r.headers.get("ETag", etag), True)
        data = r.content if binary else self._json(r)
        return Fetched(data, r.headers.get("ETag"), False, r.headers.get("Content-Type"))

    # -- the endpoints ----------------------------------------------------
    def whoami(self) -> dict[str, Any]:
        """Who the central thinks this device is: checks reachability and the token at once."""
        return self._object(self._request("GET", "/whoami"))

    def get_config(self, etag: str | None = None) -> Fetched:
        return self._conditional("/config", etag)

    def issue_ticket(
        self,
        category: str,
        request_id: str,
        priority: bool = False,
        read_timeout: float | None = None,
        connect_timeout: float | None = None,
        total_timeout: float | None = None,
        person: str | None = None,
        quota: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Same request_id, same ticket: safe to resend after a timeout.

        A citizen is waiting at the screen, so the dispenser passes short
        timeouts (and a total one) and falls back to offline numbering when they run out.
        person: the HMAC of the citizen's ID number, for the central's per-person rules
        (409 person_has_ticket / person_daily_limit).
        quota: this device's quota for the service now ({"hours", "limit"}), for the central to enforce."""
        body: dict[str, Any] = {"request_id": request_id, "category": category, "priority": priority}
        if person is not None:
            body["person"] = person
        if quota is not None:
            body["quota"] = quota
        return self._object(
            self._request(
                "POST",
                "/tickets",
                json=body,
                read_timeout=read_timeout,
                connect_timeout=connect_timeout,
                total_timeout=total_timeout,
                urgent=True,
            )
        )

    def check_in_appointment(
        self,
        request_id: str,
        *,
        code: str | None = None,
        person: str | None = None,
        policy: dict[str, Any] | None = None,
        read_timeout: float | None = None,
        connect_timeout: float | None = None,
        total_timeout: float | None = None,
    ) -> dict[str, Any]:
        """预约签到 by booking code or person key: {"appointment": ..., "ticket": ...}; idempotent by request_id."""
        body: dict[str, Any] = {"request_id": request_id}
        if code is not None:
            body["code"] = code
        if person is not None:
            body["person"] = person
        if policy:
            body["policy"] = policy
        return self._object(
            self._request(
                "POST",
                "/appointments/check-in",
                json=body,
                read_timeout=read_timeout,
                connect_timeout=connect_timeout,
                total_timeout=total_timeout,
                urgent=True,
            )
        )

    def person_tickets(self, person: str, total_timeout: float | None = None) -> dict[str, Any]:
        """Today's tickets of one person hall-wide (by the HMAC of the ID number), and the daily limit."""
        t = total_timeout
        return self._object(
            self._request("GET", f"/persons/{person}/tickets", read_timeout=t, connect_timeout=t, total_timeout=t)
        )

    def lease_numbers(
        self, category: str, size: int, request_id: str | None = None, priority: bool = False
    ) -> dict[str, Any]:
        body: dict[str, object] = {"category": category, "size": size, "priority": priority}
        if request_id:
            body["request_id"] = request_id
        return self._object(self._request("POST", "/tickets/leases", json=body))

    def queue_status(self, category: str | None = None) -> dict[str, Any]:
        return self._object(self._request("GET", f"/queue/{category}" if category else "/queue"))

    def upload_events(self, events: list[dict[str, Any]]) -> list[object]:
        """Per event: {"id", "status": accepted|duplicate|rejected, "reason"?}; the caller checks each entry."""
        data = self._json(self._request("POST", "/events", json={"events": events}))
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise CentralUnreachable(f"{self.base_url} answered the event upload without results")
        return results

    def lookup_case(self, receipt_no: str, query_code: str, read_timeout: float | None = None) -> dict[str, Any]:
        return self._object(
            self._request(
                "POST",
                "/cases/lookup",
                json={"receipt_no": receipt_no, "query_code": query_code},
                read_timeout=read_timeout,
                urgent=True,
            )
        )

    def window_session(self, window: str, wait: float = 0, since: int | None = None) -> dict[str, Any]:
        """Long-poll: returns when the session's rev differs from `since`, or after `wait` s."""
        params = {"wait": f"{wait:g}"}
        if since is not None:
            params["since"] = str(since)
        return self._object(
            self._request("GET", f"/windows/{window}/session", params=params, read_timeout=self.read_timeout + wait)
        )

    def staff_card(self, window: str, etag: str | None = None) -> Fetched:
        return self._conditional(f"/windows/{window}/staff", etag)

    def staff_photo(self, staff_id: str, etag: str | None = None) -> Fetched:
        return self._conditional(f"/staff/{staff_id}/photo", etag, binary=True)

    def heartbeat(self, health: dict[str, Any]) -> dict[str, Any]:
        return self._object(self._request("POST", "/heartbeat", json=health))


def _reason(e: Exception) -> str:
    text = str(e)
    for hint in (
        "Connection refused",
        "Name or service not known",
        "timed out",
        "Remote end closed",
        "Connection reset",
        "No route to host",
        "Network is unreachable",
    ):
        if hint in text:
            return hint.lower()
    return e.__class__.__name__

"""The bench central: the contract of docs/central-api.yaml over real HTTP.

A technician's and a test's stand-in for the province's system. Served by
uvicorn (kiosk/central/asgi.py: connection cap, header and body deadlines,
thread pools), SQLite under the data directory, device tokens it issues
itself. Not a production server: it binds to loopback by
default and the /bench/ pages take the bench password made at start
(`bench_password`, printed by `kiosk central`, opened for you by the demo).

    central = BenchCentral("/tmp/central").start()
    token = central.issue_token("hall01-pad03", ["pad"], window="03")
    ... CentralClient(central.url, token) ...
    central.stop()
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

from kiosk.central import appointments, bench_page
from kiosk.central.faults import Fault, FaultPlan
from kiosk.central.limits import Limits, RateLimit
from kiosk.central.scope import OPERATION_ROLE, WINDOW_RX, Scope, ScopeError
from kiosk.central.store import REQUEST_ID_RX, CentralStore, StoreError

log = logging.getLogger("kiosk.central")

API = "/api/v1"
MAX_BODY = 4 * 1024 * 1024
MAX_BENCH_BODY = 64 * 1024  # the bench pages' forms and fault specs
MAX_BATCH = 500
MAX_WAIT = 60


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers or {}, extra


def _require(obj: dict, key: str, typ, *, optional: bool = False):
    v = obj.get(key)
    if v is None and optional and key not in obj:
        return None
    ok = isinstance(v, typ) and not (typ in (int, (int,)) and isinstance(v, bool))
    if not ok:
        name = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "an object"}.get(
            typ, "valid"
        )
        raise ApiError(400, "invalid", f"{key} must be {name}")
    return v


class Response:
    def __init__(
        self, status: int, body: bytes = b"", content_type: str = "application/json", headers: dict | None = None
    ):
        self.status, self.body, self.content_type, self.headers = status, body, content_type, headers or {}


def json_response(status: int, obj, headers: dict | None = None) -> Response:
    return Response(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json", headers)


def error_response(status: int, code: str, message: str, headers: dict | None = None, **extra) -> Response:
    return json_response(status, {"error": code, "message": message, **extra}, headers)


class Headers(dict):
    """Request headers by lower-case name (HTTP names are case-insensitive)."""

    def get(self, key, default=None):  # type: ignore[override]
        return super().get(key.lower(), default)


class Request:
    """One request as the handlers see it: what the server library parsed, and the body once read."""

    def __init__(self, method: str, target_path: str, query_string: str, headers: Headers, client: str = ""):
        self.method, self.path, self.headers, self.client = method, target_path, headers, client
        self.query = {k: v[-1] for k, v in parse_qs(query_string).items()}
        self.body = b""
        self.body_read = False

    @property
    def announced_body(self) -> bool:
        return (self.headers.get("content-length") or "0").strip() not in ("", "0") or bool(
            self.headers.get("transfer-encoding")
        )


class Exchange:
    """The work of one request on the bench central, apart from the HTTP plumbing (see asgi.py):
    `prepare` checks what can be checked before the body is read, `respond` does the work."""

    def __init__(self, central: BenchCentral, req: Request):
        self.central, self.req = central, req
        self.headers, self.query = req.headers, req.query
        self.is_api = req.path.startswith(API + "/") or req.path == API
        self._call: tuple[Callable[..., Response], Scope, dict] | None = None

    @property
    def _body(self) -> bytes:
        return self.req.body

    @property
    def body_limit(self) -> int:
        return MAX_BODY if self.is_api else MAX_BENCH_BODY

    def prepare(self) -> Response | None:
        """A refusal, or None when the body may be read and `respond` called."""
        return _guarded(self._prepare)

    def respond(self) -> Response:
        resp = _guarded(self._respond)
        if resp is None:  # _respond always answers; this keeps the type honest
            raise RuntimeError("no answer")
        return resp

    def _prepare(self) -> Response | None:
        if not self.is_api:
            return None
        store = self.central.running_store()
        sub, method = self.req.path[len(API) :], self.req.method
        allowed = []
        for m, rx, op, fn in self._routes():
            match = re.fullmatch(rx, sub)
            if match:
                if m == method:
                    # Token and scope before the body is read: a stranger's or an
                    # out-of-scope upload costs no memory and never reaches the store.
                    scope = self._scope(store)
                    scope.require(OPERATION_ROLE[op], _WHAT[op])
                    self._call = (fn, scope, {k: unquote(v) for k, v in match.groupdict().items()})
                    return None
                allowed.append(m)
        if allowed:
            return error_response(405, "method_not_allowed", f"use {', '.join(allowed)}", {"Allow": ", ".join(allowed)})
        return error_response(404, "not_found", f"no such API path {API}{sub}")

    def _respond(self) -> Response:
        central, path = self.central, self.req.path
        if self.is_api:
            if self._call is None:  # prepare() refused; never called then
                raise RuntimeError("respond() before a successful prepare()")
            fn, scope, params = self._call
            return fn(central.running_store(), scope, **params)
        if path == "/bench" or path.startswith("/bench/"):
            # Reads only (the forms a technician posts are light and rare).
            wait = central.bench_limit.take("bench") if self.req.method == "GET" else None
            if wait is not None:
                seconds = max(1, math.ceil(wait))
                return error_response(
                    429,
                    "rate_limited",
                    "the bench pages are asked too often; try again shortly",
                    {"Retry-After": str(seconds)},
                    retry_after_s=seconds,
                )
            return bench_page.route(central, self.req.method, path, self.query, self._body, self.headers)
        if path == "/":
            return Response(302, b"", "text/plain", {"Location": "/bench/"})
        return error_response(404, "not_found", f"no such path {path}")

    def _routes(self) -> list[tuple[str, str, str, Callable[..., Response]]]:
        return [
            ("GET", r"/whoami", "whoami", self._whoami),
            ("GET", r"/config", "getConfig", self._config),
            ("POST", r"/tickets", "issueTicket", self._ticket),
            ("POST", r"/tickets/leases", "leaseNumbers", self._lease),
            ("POST", r"/appointments/check-in", "checkInAppointment", self._check_in),
            ("GET", r"/queue", "queueStatus", self._queue),
            ("GET", r"/queue/(?P<category>[^/]+)", "queueStatusOne", self._queue),
            ("POST", r"/events", "uploadEvents", self._events),
            ("POST", r"/cases/lookup", "lookupCase", self._lookup),
            ("GET", r"/windows/(?P<window>[^/]+)/session", "windowSession", self._session),
            ("GET", r"/windows/(?P<window>[^/]+)/staff", "staffCard", self._staff),
            ("GET", r"/staff/(?P<staff_id>[^/]+)/photo", "staffPhoto", self._photo),
            ("POST", r"/heartbeat", "heartbeat", self._heartbeat),
        ]

    @property
    def is_long_poll(self) -> bool:
        """A session read that may wait: run where it cannot hold up the other requests."""
        return self.req.method == "GET" and self.req.path.endswith("/session") and self.query.get("wait", "0") != "0"

    def _json_body(self) -> dict:
        raw = self._body
        try:
            obj = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "bad_json", "the request body is not JSON") from None
        if not isinstance(obj, dict):
            raise ApiError(400, "invalid", "the request body must be a JSON object")
        return obj

    # -- the API ----------------------------------------------------------
    def _scope(self, store: CentralStore) -> Scope:
        auth = self.headers.get("Authorization", "")
        m = re.fullmatch(r"Bearer ([A-Za-z0-9._~+/=-]{10,200})", auth.strip())
        scope = store.scope_for_token(m.group(1)) if m else None
        if scope is None:
            raise ApiError(
                401,
                "unauthorized",
                "missing, unknown or revoked device token; issue one with `kiosk central issue-token`",
                {"WWW-Authenticate": 'Bearer realm="central"'},
            )
        return scope

    def _etag_matches(self, etag: str) -> bool:
        given = self.headers.get("If-None-Match", "")
        return any(t.strip() in (etag, "*") for t in given.split(",")) if given else False

    def _whoami(self, store, scope):
        return json_response(
            200,
            {"device_id": scope.device_id, "roles": sorted(scope.roles), "window": scope.window, "server_time": _now()},
        )

    def _config(self, store, scope):
        cfg, etag = store.device_config()
        if self._etag_matches(etag):
            return Response(304, b"", "application/json", {"ETag": etag})
        return json_response(200, cfg, {"ETag": etag, "Cache-Control": "no-cache"})

    def _ticket(self, store, scope):
        body = self._json_body()
        rid = _require(body, "request_id", str)
        if not REQUEST_ID_RX.fullmatch(rid):
            raise ApiError(400, "invalid", "request_id: 1..64 letters, digits or . _ : -")
        cat = _require(body, "category", str)
        prio = _require(body, "priority", bool, optional=True) or False
        quota = body.get("quota")
        problem = appointments.quota_problem(quota) if quota is not None or "quota" not in body else "quota: an object"
        if problem:
            raise ApiError(400, "invalid", problem)
        ticket, created = store.issue_ticket(scope.device_id, rid, cat, prio, quota)
        return json_response(201 if created else 200, ticket)

    def _check_in(self, store, scope):
        body = self._json_body()
        rid = _require(body, "request_id", str)
        if not REQUEST_ID_RX.fullmatch(rid):
            raise ApiError(400, "invalid", "request_id: 1..64 letters, digits or . _ : -")
        code, person = body.get("code"), body.get("person")
        if (code is None) == (person is None):
            raise ApiError(400, "invalid", "give exactly one of code (the booking code) and person (the person key)")
        if code is not None and not (isinstance(code, str) and appointments.CODE_RX.fullmatch(code.upper())):
            raise ApiError(400, "invalid", "code: 6..12 letters or digits")
        if person is not None and not (isinstance(person, str) and appointments.PERSON_RX.fullmatch(person)):
            raise ApiError(400, "invalid", "person: 64 lower-case hex digits (HMAC-SHA256 of the ID number)")
        policy = body.get("policy")
        problem = (
            appointments.policy_problem(policy) if policy is not None or "policy" not in body else "policy: an object"
        )
        if problem:
            raise ApiError(400, "invalid", problem)
        answer, created = store.check_in(scope.device_id, rid, code=code, person=person, policy=body.get("policy"))
        return json_response(201 if created else 200, answer)

    def _lease(self, store, scope):
        body = self._json_body()
        cat = _require(body, "category", str)
        size = _require(body, "size", int)
        rid = _require(body, "request_id", str, optional=True)
        if rid is not None and not REQUEST_ID_RX.fullmatch(rid):
            raise ApiError(400, "invalid", "request_id: 1..64 letters, digits or . _ : -")
        prio = _require(body, "priority", bool, optional=True) or False
        lease, created = store.lease(scope.device_id, cat, size, rid, prio)
        return json_response(201 if created else 200, lease)

    def _queue(self, store, scope, category=None):
        return json_response(200, store.queue_status(category))

    def _events(self, store, scope):
        body = self._json_body()
        events = _require(body, "events", list)
        if len(events) > MAX_BATCH:
            raise ApiError(400, "too_many", f"at most {MAX_BATCH} events per request: send smaller batches")
        return json_response(200, {"results": store.accept_events(scope, events)})

    def _lookup(self, store, scope):
        body = self._json_body()
        # Per device, across receipt numbers: one token cannot walk the receipt space.
        wait = self.central.lookup_limit.take(scope.device_id)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            raise ApiError(
                429,
                "rate_limited",
                f"too many case lookups from this device; try again in {seconds} s",
                {"Retry-After": str(seconds)},
                retry_after_s=seconds,
            )
        case = store.lookup_case(_require(body, "receipt_no", str), _require(body, "query_code", str))
        return json_response(200, case, {"Cache-Control": "no-store"})

    def _session(self, store, scope, window):
        if not WINDOW_RX.fullmatch(window):
            raise ApiError(400, "invalid", "window: 1..8 letters, digits or '-'")
        scope.require_window(window, "read the service session")
        try:
            wait = float(self.query.get("wait", "0"))
            since = int(self.query["since"]) if "since" in self.query else None
        except ValueError:
            raise ApiError(
                400, "invalid", "wait is seconds (number), since is the rev (integer) of the last answer"
            ) from None
        if not 0 <= wait <= MAX_WAIT:
            raise ApiError(400, "invalid", f"wait must be 0..{MAX_WAIT} seconds")
        central = self.central
        s = store.wait_window(window, since, min(wait, central.long_poll_cap), lambda: central.stopping)
        return json_response(200, s)

    def _staff(self, store, scope, window):
        scope.require_window(window, "read the staff card")
        card, etag = store.staff_card(window)
        if self._etag_matches(etag):
            return Response(304, b"", "application/json", {"ETag": etag})
        return json_response(200, card, {"ETag": etag})

    def _photo(self, store, scope, staff_id):
        if staff_id != store.staff_on_window(scope.window):
            raise ScopeError(
                f"the token of {scope.describe()} may read the photo of the staff member on its own window only"
            )
        photo, ctype, etag = store.staff_photo(staff_id)
        if self._etag_matches(etag):
            return Response(304, b"", ctype, {"ETag": etag})
        return Response(200, photo, ctype, {"ETag": etag, "Cache-Control": "max-age=3600"})

    def _heartbeat(self, store, scope):
        body = self._json_body()
        _check_health(body)
        return json_response(200, store.heartbeat(scope.device_id, body))


# Health fields this firmware sends, with their JSON types; other fields pass as they are.
_HEALTH_TYPES = {
    "device_id": (str,),
    "version": (str,),
    "uptime_s": (int, float),
    "system_uptime_s": (int, float, None),
    "outbox": (dict,),
    "last_sync": (str, None),
    "disk_free_bytes": (int, None),
    "sent_at": (str,),
}
_OUTBOX_TYPES = {"pending": (int,), "dead": (int,), "oldest_pending_age_s": (int, float, None)}


# What each operation is, in a refusal's message ("may not <what>").
_WHAT = {
    "whoami": "ask who it is",
    "getConfig": "read the config",
    "heartbeat": "send a heartbeat",
    "queueStatus": "read the queue",
    "queueStatusOne": "read the queue",
    "uploadEvents": "upload events",
    "issueTicket": "issue queue tickets",
    "leaseNumbers": "lease ticket numbers",
    "checkInAppointment": "check in appointments",
    "lookupCase": "look up cases",
    "windowSession": "read window sessions",
    "staffCard": "read staff cards",
    "staffPhoto": "read staff photos",
}


def _guarded(fn: Callable[[], Response | None]) -> Response | None:
    """The handler's answer, or the refusal its exception stands for (never a traceback to the client)."""
    try:
        return fn()
    except ApiError as e:
        return error_response(e.status, e.code, e.message, e.headers, **e.extra)
    except ScopeError as e:
        return error_response(403, "forbidden", str(e))
    except StoreError as e:
        headers = {"Retry-After": str(e.extra["retry_after_s"])} if "retry_after_s" in e.extra else {}
        return error_response(e.status, e.code, e.message, headers, **e.extra)
    except Exception:
        log.exception("bench central: request failed")
        return error_response(500, "internal", "the bench central failed; see its log")


def _check_health(body: dict) -> None:
    def check(obj, types, where):
        for key, allowed in types.items():
            if key not in obj:
                continue
            v = obj[key]
            ok = (v is None and None in allowed) or (
                v is not None and not isinstance(v, bool) and isinstance(v, tuple(t for t in allowed if t))
            )
            if not ok:
                raise ApiError(400, "invalid", f"health field {where}{key} has the wrong type")

    check(body, _HEALTH_TYPES, "")
    if isinstance(body.get("outbox"), dict):
        check(body["outbox"], _OUTBOX_TYPES, "outbox.")


def _now() -> str:
    from kiosk.central.store import now_iso

    return now_iso()


class BenchCentral:
    """The bench central as a Python object: start, drive, inspect, stop."""

    def __init__(
        self,
        data_dir: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        long_poll_cap: float = MAX_WAIT,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        bench_password: str | None = None,
        limits: Limits | None = None,
        **store_options,
    ):
        self.data_dir = Path(data_dir)
        # A new password for each run unless one is given: whoever started the
        # central sees it; anyone else who can reach the port does not.
        self.bench_password = bench_password or secrets.token_urlsafe(12)
        self.bench_session = secrets.token_urlsafe(32)
        # HTTPS like a production central, for checking a device's ca_file and
        # certificate verification at the bench.
        self.tls_files: tuple[str, str | None] | None = None
        if tls_cert:
            # Loaded here once, so a wrong file is an error at once, not in the server's thread.
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(tls_cert, tls_key)
            self.tls_files = (tls_cert, tls_key)
        self.limits = limits or Limits()
        self.lookup_limit = RateLimit(self.limits.lookup_burst, self.limits.lookup_interval)
        self.bench_limit = RateLimit(self.limits.bench_burst, self.limits.bench_interval)
        # The contract lets the server answer a long-poll early; tests shorten it.
        self.long_poll_cap = long_poll_cap
        self.host, self.port = host, port
        self.store_options = store_options
        self.faults = FaultPlan()
        # API requests being handled now: a test waits for a slow request to
        # finish its work before it asks what the counters would call.
        self._busy = 0
        self._busy_lock = threading.Lock()
        self.store: CentralStore | None = None
        self._server: Any = None  # uvicorn.Server while running
        self._app: Any = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.stopping = False

    def start(self) -> BenchCentral:
        import uvicorn

        from kiosk.central.asgi import BenchApp, protocol_for

        self.stopping = False
        self.store = CentralStore(self.data_dir, **self.store_options)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP named, so asyncio sets TCP_NODELAY on each accepted socket: headers
        # and body go out in separate writes, and with Nagle on, each small answer on a
        # kept-alive connection would wait ~40 ms for the client's delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(1024)
        self.port = sock.getsockname()[1]  # keep it: a restart comes back on the same port
        self._app = BenchApp(self, self.limits)
        # No access log (the old server logged paths at debug only); start-up chatter off.
        access = logging.getLogger("uvicorn.access")
        access.propagate, access.disabled = False, True
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        config = uvicorn.Config(
            self._app,
            http=protocol_for(self.limits),
            ws="none",
            lifespan="off",
            loop="asyncio",
            interface="asgi3",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_keep_alive=int(max(1, self.limits.keep_alive)),
            timeout_graceful_shutdown=2,
            ssl_certfile=self.tls_files[0] if self.tls_files else None,
            ssl_keyfile=self.tls_files[1] if self.tls_files else None,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="bench-central", daemon=True
        )
        self._sock = sock
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError("the bench central did not start; see its log")
            time.sleep(0.01)
        return self

    def serve_forever(self) -> None:
        """Foreground use (`kiosk central`): serve until interrupted."""
        if self._server is None:
            self.start()
        thread = self._thread
        try:
            while thread is not None and thread.is_alive():
                thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        if self._server is None:
            return
        store = self.running_store()
        self.stopping = True
        with store.window_changed:
            store.window_changed.notify_all()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self._sock is not None:
            self._sock.close()
        if self._app is not None:
            self._app.close()
        store.close()
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls_files else 'http'}://{host}:{self.port}"

    @property
    def bench_login_url(self) -> str:
        """Opens the bench pages signed in (the password travels once, to this central only)."""
        return f"{self.url}/bench/login?password={self.bench_password}"

    # -- driving it -------------------------------------------------------
    def running_store(self) -> CentralStore:
        """The store of a started central (driving one that was never started is a caller's mistake)."""
        if self.store is None:
            raise RuntimeError("the bench central is not started: call start() first")
        return self.store

    def issue_token(self, device_id: str, roles: list[str] | tuple[str, ...], window: str | None = None) -> str:
        return self.running_store().issue_token(device_id, roles, window)

    def create_case(self, item_name: str = "个体工商户设立登记", applicant_name: str = "张小三", **kw) -> dict:
        """Returns receipt_no, query_code and qr_payload (the receipt's QR text)."""
        return self.running_store().create_case(item_name, applicant_name, **kw)

    def call_next(self, window: str, **kw) -> dict:
        return self.running_store().call_next(window, **kw)

    def end_service(self, window: str) -> dict:
        return self.running_store().end_service(window)

    def pause(self, window: str) -> dict:
        return self.running_store().pause(window)

    def resume(self, window: str) -> dict:
        return self.running_store().resume(window)

    def events(self, kind: str | None = None) -> list[dict]:
        return self.running_store().events(kind)

    def inject(
        self,
        kind: str,
        count: int = 1,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        delay: float = 0.0,
        path: str = API + "/",
        body: str = "",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Make the next `count` API requests under `path` fail in the given way (see faults.py)."""
        if status is None:  # an injected error is a 500, an injected answer a 200, unless told
            status = 200 if kind == "answer" else 500
        self.faults.add(Fault(kind, count, status, retry_after, delay, path, body, content_type, headers or {}))

    def clear_faults(self) -> None:
        self.faults.clear()

    def busy(self, delta: int = 0) -> int:
        """How many requests are being handled (the handler counts itself in and out)."""
        with self._busy_lock:
            self._busy += delta
            return self._busy

    def callable_tickets(self, day: str | None = None) -> list[str]:
        """What the counters would call today, in order: every waiting ticket."""
        return self.running_store().callable_tickets(day)

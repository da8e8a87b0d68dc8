"""The bench central: the contract of docs/central-api.yaml over real HTTP.

A technician's and a test's stand-in for the province's system. Standard
library only (ThreadingHTTPServer), SQLite under the data directory, device
tokens it issues itself. Not a production server: it binds to loopback by
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
import re
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from kiosk.central import bench_page
from kiosk.central.faults import Fault, FaultPlan
from kiosk.central.scope import OPERATION_ROLE, WINDOW_RX, Scope, ScopeError
from kiosk.central.store import REQUEST_ID_RX, CentralStore, StoreError

log = logging.getLogger("kiosk.central")

API = "/api/v1"
MAX_BODY = 4 * 1024 * 1024
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, central: BenchCentral, tls: ssl.SSLContext | None = None):
        self.central = central
        self.tls = tls
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(addr, handler)

    def get_request(self):
        sock, addr = super().get_request()
        if self.tls is not None:
            # The handshake runs on the first read, in the request's own thread,
            # so one slow or bogus client cannot stall the accept loop.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def process_request(self, request, client_address):
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        # Keep-alive connections would otherwise go on being served by their
        # threads after stop(), and a "down" central would still answer.
        with self.sockets_lock:
            socks = list(self.open_sockets)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "BenchCentral/1"
    # Headers and body go out in separate writes; with Nagle on, each small
    # answer on a keep-alive connection waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, fmt, *args):  # paths only: no bodies, so no personal data
        log.debug("%s %s", self.address_string(), fmt % args)

    # -- plumbing ---------------------------------------------------------
    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_PUT(self):
        self._handle("PUT")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_HEAD(self):
        self._handle("HEAD")

    def do_OPTIONS(self):
        self._handle("OPTIONS")

    def do_TRACE(self):
        self._handle("TRACE")

    def do_QUERY(self):
        self._handle("QUERY")

    def _read_body(self) -> bytes:
        self._body_read = True
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError(400, "invalid", "Content-Length is not a number") from None
        if n < 0 or n > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, "too_large", f"request body over {MAX_BODY} bytes")
        return self.rfile.read(n) if n else b""

    def _json_body(self) -> dict:
        raw = self._body
        try:
            obj = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "bad_json", "the request body is not JSON") from None
        if not isinstance(obj, dict):
            raise ApiError(400, "invalid", "the request body must be a JSON object")
        return obj

    def _handle(self, method: str) -> None:
        central = self.server.central
        central.busy(+1)
        try:
            self._handle_counted(method)
        finally:
            central.busy(-1)

    def _handle_counted(self, method: str) -> None:
        central = self.server.central
        url = urlsplit(self.path)
        path = url.path
        self.query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        is_api = path.startswith(API + "/") or path == API
        self._body, self._body_read = b"", False
        if not is_api:  # the API reads its body only after the token is checked (_api)
            try:
                self._body = self._read_body()
            except ApiError as e:
                return self._send(error_response(e.status, e.code, e.message))
        fault = central.faults.take(path) if path.startswith(API + "/") else None
        if fault and fault.kind == "error":
            headers = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after is not None else {}
            return self._send(error_response(fault.status, "injected", "bench fault injection", headers))
        if fault and fault.kind == "hang":
            return self._hang(fault.delay)
        if fault and fault.kind == "slow":
            time.sleep(fault.delay)
        try:
            if is_api:
                resp = self._api(method, path[len(API) :])
            elif path == "/bench" or path.startswith("/bench/"):
                resp = bench_page.route(central, method, path, self.query, self._body, self.headers)
            elif path == "/":
                resp = Response(302, b"", "text/plain", {"Location": "/bench/"})
            else:
                resp = error_response(404, "not_found", f"no such path {path}")
        except ApiError as e:
            resp = error_response(e.status, e.code, e.message, e.headers, **e.extra)
        except ScopeError as e:
            resp = error_response(403, "forbidden", str(e))
        except StoreError as e:
            headers = {"Retry-After": str(e.extra["retry_after_s"])} if "retry_after_s" in e.extra else {}
            resp = error_response(e.status, e.code, e.message, headers, **e.extra)
        except Exception:
            log.exception("bench central: %s %s failed", method, path)
            resp = error_response(500, "internal", "the bench central failed; see its log")
        if fault and fault.kind == "drop":
            # The work is committed; the device never hears about it.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault and fault.kind == "partial" and resp.status == 200:
            try:
                data = json.loads(resp.body)
                data["results"] = data["results"][: len(data["results"]) // 2]
                resp = json_response(200, data)
            except (ValueError, KeyError, TypeError):
                pass
        if fault and fault.kind == "malformed":
            resp = Response(200, b'{"results": [{"id": "', "application/json")
        if fault and fault.kind == "trickle":
            return self._trickle(resp, fault.delay)
        self._send(resp)

    def _hang(self, delay: float) -> None:
        """Connection accepted, request never answered: silence for `delay` s (or until the central
        stops), then the connection is closed. Nothing is done, nothing committed."""
        self.close_connection = True
        end = time.monotonic() + delay
        while time.monotonic() < end and not self.server.central.stopping:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))

    def _trickle(self, resp: Response, delay: float) -> None:
        """The whole answer, one byte every `delay` s, until sent, the client leaves or the central stops."""
        self.close_connection = True
        head = [f"HTTP/1.1 {resp.status} X", f"Content-Type: {resp.content_type}", f"Content-Length: {len(resp.body)}"]
        head += [f"{k}: {v}" for k, v in resp.headers.items()] + ["Connection: close", "", ""]
        data = "\r\n".join(head).encode("latin-1") + resp.body
        for i in range(len(data)):
            if self.server.central.stopping:
                return
            try:
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
            except OSError:
                return
            time.sleep(delay)

    def _send(self, resp: Response) -> None:
        if not self._body_read and (self.headers.get("Content-Length") or "0").strip() not in ("", "0"):
            # Refused before its body was read: the unread bytes would be taken
            # for the next request on this connection, so it ends here.
            self.close_connection = True
            resp.headers.setdefault("Connection", "close")
        try:
            self.send_response(resp.status)
            self.send_header(
                "Content-Type",
                resp.content_type
                + ("; charset=utf-8" if resp.content_type.startswith(("text/", "application/json")) else ""),
            )
            self.send_header("Content-Length", str(len(resp.body)))
            for k, v in resp.headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- the API ----------------------------------------------------------
    def _scope(self) -> Scope:
        auth = self.headers.get("Authorization", "")
        m = re.fullmatch(r"Bearer ([A-Za-z0-9._~+/=-]{10,200})", auth.strip())
        scope = self.server.central.running_store().scope_for_token(m.group(1)) if m else None
        if scope is None:
            raise ApiError(
                401,
                "unauthorized",
                "missing, unknown or revoked device token; issue one with `kiosk central issue-token`",
                {"WWW-Authenticate": 'Bearer realm="central"'},
            )
        return scope

    def _api(self, method: str, sub: str) -> Response:
        store = self.server.central.running_store()
        routes: list[tuple[str, str, str, Callable[..., Response]]] = [
            ("GET", r"/whoami", "whoami", self._whoami),
            ("GET", r"/config", "getConfig", self._config),
            ("POST", r"/tickets", "issueTicket", self._ticket),
            ("POST", r"/tickets/leases", "leaseNumbers", self._lease),
            ("GET", r"/queue", "queueStatus", self._queue),
            ("GET", r"/queue/(?P<category>[^/]+)", "queueStatusOne", self._queue),
            ("POST", r"/events", "uploadEvents", self._events),
            ("POST", r"/cases/lookup", "lookupCase", self._lookup),
            ("GET", r"/windows/(?P<window>[^/]+)/session", "windowSession", self._session),
            ("GET", r"/windows/(?P<window>[^/]+)/staff", "staffCard", self._staff),
            ("GET", r"/staff/(?P<staff_id>[^/]+)/photo", "staffPhoto", self._photo),
            ("POST", r"/heartbeat", "heartbeat", self._heartbeat),
        ]
        allowed = []
        for m, rx, op, fn in routes:
            match = re.fullmatch(rx, sub)
            if match:
                if m == method:
                    # Token and scope before the body is read: a stranger's or an
                    # out-of-scope upload costs no memory and never reaches the store.
                    scope = self._scope()
                    scope.require(OPERATION_ROLE[op], _WHAT[op])
                    self._body = self._read_body()
                    return fn(store, scope, **{k: unquote(v) for k, v in match.groupdict().items()})
                allowed.append(m)
        if allowed:
            return error_response(405, "method_not_allowed", f"use {', '.join(allowed)}", {"Allow": ", ".join(allowed)})
        return error_response(404, "not_found", f"no such API path {API}{sub}")

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
        ticket, created = store.issue_ticket(scope.device_id, rid, cat, prio)
        return json_response(201 if created else 200, ticket)

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
        if not all(isinstance(e, dict) for e in events):
            raise ApiError(400, "invalid", "every item of events must be a JSON object")
        return json_response(200, {"results": store.accept_events(scope, events)})

    def _lookup(self, store, scope):
        body = self._json_body()
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
        central = self.server.central
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
    "lookupCase": "look up cases",
    "windowSession": "read window sessions",
    "staffCard": "read staff cards",
    "staffPhoto": "read staff photos",
}


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
        **store_options,
    ):
        self.data_dir = Path(data_dir)
        # A new password for each run unless one is given: whoever started the
        # central sees it; anyone else who can reach the port does not.
        self.bench_password = bench_password or secrets.token_urlsafe(12)
        self.bench_session = secrets.token_urlsafe(32)
        # HTTPS like a production central, for checking a device's ca_file and
        # certificate verification at the bench.
        self.tls: ssl.SSLContext | None = None
        if tls_cert:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(tls_cert, tls_key)
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
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.stopping = False

    def start(self) -> BenchCentral:
        self.stopping = False
        self.store = CentralStore(self.data_dir, **self.store_options)
        self._httpd = _Server((self.host, self.port), Handler, self, self.tls)
        self.port = self._httpd.server_address[1]  # keep it: a restart comes back on the same port
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="bench-central", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Foreground use (`kiosk central`): serve until interrupted."""
        if self._httpd is None:
            self.start()
        thread = self._thread
        try:
            while thread is not None and thread.is_alive():
                thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        if self._httpd is None:
            return
        store = self.running_store()
        self.stopping = True
        with store.window_changed:
            store.window_changed.notify_all()
        self._httpd.shutdown()
        self._httpd.close_all_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
        store.close()
        self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

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
        status: int = 500,
        retry_after: float | None = None,
        delay: float = 0.0,
        path: str = API + "/",
    ) -> None:
        """Make the next `count` API requests under `path` fail in the given way (see faults.py)."""
        self.faults.add(Fault(kind, count, status, retry_after, delay, path))

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

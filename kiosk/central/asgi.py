"""The bench central on uvicorn: the HTTP plumbing between the server library and server.Exchange.

uvicorn (asyncio, h11) parses HTTP, keeps idle keep-alive connections cheap and
closes them after `keep_alive`; TLS is its own. What a central that must hold
under abuse needs beyond that is here:

- a cap on open connections: one over it closes the oldest connection that is
  waiting for a request (never-served ones first: an idle or slow-loris flood)
  with a 503, and only when every connection is busy is the newcomer refused 503;
- a deadline on the request headers (slow-loris: 408 and close), and one on the
  body (408 too);
- the token and scope checked before the body is read, the body cut at its
  limit (413), never buffered beyond it;
- the handlers run in thread pools, long-polls and the bench pages each in their
  own, so a waiting pad, a slow store call or a bench page polled hard never
  holds the event loop or takes the device API's threads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from kiosk.central.faults import Fault
from kiosk.central.limits import Limits

if TYPE_CHECKING:
    from kiosk.central.server import BenchCentral, Response

log = logging.getLogger("kiosk.central")

_PHRASES = {408: "Request Timeout", 413: "Content Too Large", 503: "Service Unavailable"}


def raw_error(status: int, code: str, message: str) -> bytes:
    """A whole answer for a connection the app never saw (before or instead of a request)."""
    body = json.dumps({"error": code, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status} {_PHRASES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class BenchProtocol(H11Protocol):
    """uvicorn's h11 protocol with a connection cap and a deadline on the request headers."""

    limits = Limits()  # set on the subclass made for each central (protocol_for)
    LINGER_S = 1.0  # after a 408, unread input is drained this long so the client reads the answer

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._timer: asyncio.TimerHandle | None = None
        self._lingering = False
        app = self.app

        async def with_transport(scope: Any, receive: Any, send: Any) -> None:
            # The bench's `drop` fault closes the connection without an answer.
            scope["extensions"] = {**(scope.get("extensions") or {}), "bench.transport": transport}
            await app(scope, receive, send)

        self.app = with_transport
        self._opened = self.loop.time()
        self._requests = 0  # requests whose headers arrived on this connection
        if len(self.connections) > self.limits.max_connections:
            # Full: make room by closing a connection that is waiting for a request,
            # one that never sent a whole one first (an idle or slow-loris flood),
            # so a device can still get in. Only when every connection is busy with
            # a request is the newcomer refused.
            victim = self._evictable()
            if victim is None:
                transport.write(raw_error(503, "busy", "too many connections to the central; try again later"))
                transport.close()
                return
            victim._close_with(503, "busy", "the central is full; this idle connection made room for another")
        self._arm()

    def _waiting(self) -> bool:
        """Open, and between requests (or in the headers of one): nothing of it is being served."""
        return not (self._lingering or self.transport.is_closing()) and (
            self.cycle is None or self.cycle.response_complete
        )

    def _evictable(self) -> BenchProtocol | None:
        waiting = [p for p in self.connections if p is not self and isinstance(p, BenchProtocol) and p._waiting()]
        return min(waiting, key=lambda p: (p._requests > 0, p._opened)) if waiting else None

    def _close_with(self, status: int, code: str, message: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.transport.write(raw_error(status, code, message))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # after a 408: read and drop, so the close does not reset the answer away
        waiting_for_request = self.cycle is None or self.cycle.response_complete
        if waiting_for_request and self._timer is None:
            self._arm()
        before = self.cycle
        super().data_received(data)
        if self.cycle is not before:
            self._requests += 1
            if self._timer is not None:
                self._timer.cancel()  # the headers are in: the body has its own deadline (the app's)
                self._timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._timer = self.loop.call_later(self.limits.header_timeout, self._too_slow)

    def _too_slow(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        self._lingering = True
        s = self.limits.header_timeout
        self.transport.write(raw_error(408, "too_slow", f"the request headers did not arrive within {s:g} s"))
        try:
            self.transport.write_eof()
        except (OSError, RuntimeError):
            pass
        self.loop.call_later(self.LINGER_S, self.transport.close)


def protocol_for(limits: Limits) -> type[BenchProtocol]:
    return type("BenchProtocolWithLimits", (BenchProtocol,), {"limits": limits})


class _Gone(Exception):
    """The client went away before its body arrived."""


class BenchApp:
    """The ASGI application: one Exchange per request, its work in a thread pool."""

    def __init__(self, central: BenchCentral, limits: Limits):
        self.central, self.limits = central, limits
        self.pool = ThreadPoolExecutor(limits.workers, thread_name_prefix="central")
        self.poll_pool = ThreadPoolExecutor(limits.long_poll_workers, thread_name_prefix="central-poll")
        # The bench pages get two threads of their own: however hard they are polled,
        # they take no thread from the devices and at most two at a time of the CPU.
        self.bench_pool = ThreadPoolExecutor(2, thread_name_prefix="central-bench")

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.poll_pool.shutdown(wait=False, cancel_futures=True)
        self.bench_pool.shutdown(wait=False, cancel_futures=True)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.central.busy(+1)
        try:
            await self._handle(scope, receive, send)
        finally:
            self.central.busy(-1)

    async def _handle(self, scope: Any, receive: Any, send: Any) -> None:
        from kiosk.central.server import API, Exchange, Headers, Request, error_response

        headers = Headers((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"])
        req = Request(scope["method"], scope["path"], scope["query_string"].decode("latin-1"), headers)
        ex = Exchange(self.central, req)
        loop = asyncio.get_running_loop()
        fault = self.central.faults.take(req.path) if req.path.startswith(API + "/") else None
        if fault and fault.kind == "hang":
            return await self._hang(fault.delay, scope["extensions"]["bench.transport"])
        if fault and fault.kind == "error":
            extra = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after is not None else {}
            return await self._send(send, req, error_response(fault.status, "injected", "bench fault injection", extra))
        refusal = await loop.run_in_executor(self.pool, ex.prepare)
        if refusal is not None:
            return await self._send(send, req, refusal)
        try:
            await self._read_body(req, receive, ex.body_limit)
        except _Gone:
            return
        except _Refused as e:
            return await self._send(send, req, e.response, close=e.close)
        if fault and fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        pool = self.poll_pool if ex.is_long_poll else self.pool if ex.is_api else self.bench_pool
        resp = await loop.run_in_executor(pool, ex.respond)
        await self._answer(scope, send, req, resp, fault)

    async def _read_body(self, req: Any, receive: Any, limit: int) -> None:
        from kiosk.central.server import error_response

        req.body_read = True
        try:
            announced = int(req.headers.get("content-length") or 0)
        except ValueError:
            raise _Refused(error_response(400, "invalid", "Content-Length is not a number")) from None
        if announced < 0 or announced > limit:
            raise _Refused(error_response(413, "too_large", f"request body over {limit} bytes"), close=True)
        if not req.announced_body:
            return
        chunks: list[bytes] = []
        size = 0

        async def read_all() -> None:
            nonlocal size
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    raise _Gone
                part = msg.get("body", b"")
                size += len(part)
                if size > limit:  # a chunked body has no Content-Length to refuse up front
                    raise _Refused(error_response(413, "too_large", f"request body over {limit} bytes"), close=True)
                chunks.append(part)
                if not msg.get("more_body"):
                    return

        s = self.limits.body_timeout
        try:
            await asyncio.wait_for(read_all(), s)
        except TimeoutError:
            raise _Refused(
                error_response(408, "too_slow", f"the request body did not arrive within {s:g} s"), close=True
            ) from None
        req.body = b"".join(chunks)

    async def _answer(self, scope: Any, send: Any, req: Any, resp: Response, fault: Fault | None) -> None:
        from kiosk.central.server import Response, json_response

        if fault and fault.kind == "drop":
            # The work is committed; the device never hears about it.
            scope["extensions"]["bench.transport"].abort()
            await asyncio.sleep(0.05)  # let the server see the connection gone before the app returns
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
        if fault and fault.kind == "answer":
            resp = Response(fault.status, fault.body.encode("utf-8"), fault.content_type, dict(fault.headers))
        if fault and fault.kind == "trickle":
            return await self._trickle(send, req, resp, fault.delay, scope["extensions"]["bench.transport"])
        await self._send(send, req, resp)

    async def _hang(self, delay: float, transport: Any) -> None:
        """Connection accepted, request never answered: silence for `delay` s (or until the central
        stops or the client leaves), then the connection is closed. Nothing is done, nothing committed."""
        end = time.monotonic() + delay
        while time.monotonic() < end and not self.central.stopping and not transport.is_closing():
            await asyncio.sleep(min(0.05, max(0.0, end - time.monotonic())))
        transport.abort()

    async def _trickle(self, send: Any, req: Any, resp: Response, delay: float, transport: Any) -> None:
        """The headers, then the body one byte every `delay` s, until sent, the client leaves or the central stops."""
        await send({"type": "http.response.start", "status": resp.status, "headers": self._headers(req, resp, True)})
        for i in range(len(resp.body)):
            if self.central.stopping or transport.is_closing():
                break
            await send({"type": "http.response.body", "body": resp.body[i : i + 1], "more_body": True})
            await asyncio.sleep(delay)
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    def _headers(req: Any, resp: Response, close: bool = False) -> list[tuple[bytes, bytes]]:
        ctype = resp.content_type
        if ctype.startswith(("text/", "application/json")):
            ctype += "; charset=utf-8"
        out = [(b"content-type", ctype.encode()), (b"content-length", str(len(resp.body)).encode())]
        out += [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in resp.headers.items()]
        if (close or (req.announced_body and not req.body_read)) and "connection" not in {
            k.lower() for k in resp.headers
        }:
            # Refused before its body was read: the unread bytes would be taken
            # for the next request on this connection, so it ends here.
            out.append((b"connection", b"close"))
        return out

    async def _send(self, send: Any, req: Any, resp: Response | None, close: bool = False) -> None:
        if resp is None:  # prepare() said go on, but nothing followed: cannot happen
            raise RuntimeError("no answer")
        await send({"type": "http.response.start", "status": resp.status, "headers": self._headers(req, resp, close)})
        await send({"type": "http.response.body", "body": b"" if req.method == "HEAD" else resp.body})


class _Refused(Exception):
    def __init__(self, response: Response, close: bool = False):
        super().__init__(response.status)
        self.response, self.close = response, close

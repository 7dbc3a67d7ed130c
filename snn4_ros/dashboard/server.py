"""Serving the dashboard so that nobody on the network can take the e-stop away.

uvicorn alone lets a client hold a connection forever without sending a request (no header
timeout), and its ``limit_concurrency`` answers 503 to *every* request once that many
connections are open: 200 idle TCP connections blocked the authenticated e-stop for as long
as they were held (bench/dashboard_flood.py measures it). Here:

* ``GuardedProtocol`` (uvicorn's httptools protocol, connection level): a connection must
  complete its request headers within ``header_timeout_s`` of opening (or of its previous
  response), headers are capped at ``max_header_bytes`` (431), and when one client address
  holds ``max_connections_per_client`` or ``max_connections`` are open in all, the oldest
  connection *between requests* (of that client first) is closed to make room -- a new
  connection (the e-stop) gets in, a request in progress is never cut, and the
  bookkeeping is O(1) per connection however large the flood.
* ``RequestGuard`` (ASGI, request level): ``Host`` must be an IP literal or a known name of
  this machine (DNS rebinding turns a web page's own origin into ``evil.example:8080``),
  a request body must arrive whole within ``body_timeout_s`` (408) and hold at most
  ``max_body`` bytes (413, declared or streamed), at most ``max_inflight``
  requests run at once (503) -- ``POST /api/estop`` is exempt -- and every response carries
  the security headers.

Every refusal is counted by cause in ``HttpGuard.rejected`` (``/metrics`` exposes it as
``snn4_http_rejected_total{cause}``). No rclpy here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

ESTOP_PATH = "/api/estop"
STREAM_PATH = "/api/stream"

# Every response. The page's own CSP (scripts inline, nothing off the robot) is set on "/";
# everything else is data that must never be rendered, framed or sniffed.
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
DATA_CSP = b"default-src 'none'; frame-ancestors 'none'"
PAGE_CSP = (b"default-src 'self'; script-src 'unsafe-inline' 'self'; style-src "
            b"'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
            b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


@dataclass
class HttpGuard:
    """Limits and refusal counters shared by the connection and request levels."""

    header_timeout_s: float = 5.0
    body_timeout_s: float = 5.0
    max_header_bytes: int = 16384
    max_connections: int = 256
    max_connections_per_client: int = 128  # one address: a browser uses about 6
    max_body: int = 4096
    max_inflight: int = 64
    max_streams: int = 8                    # live-page SSE streams (each costs CPU)
    allowed_hosts: tuple[str, ...] = ()     # extra names; IP literals and this host pass
    rejected: dict = field(default_factory=dict)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._idle: OrderedDict = OrderedDict()
        self._by_ip: dict = {}
        self._open_by_ip: dict = {}
        self._open = 0
        host = socket.gethostname().lower()
        self._names = {"localhost", host, f"{host}.local", *(h.lower() for h in
                                                             self.allowed_hosts)}

    # ---- connections, by client address: O(1) whatever the flood (an LRU of idle ones)
    def opened(self, conn) -> None:
        self._idle[conn] = None
        self._by_ip.setdefault(conn._ip, OrderedDict())[conn] = None
        self._open_by_ip[conn._ip] = self._open_by_ip.get(conn._ip, 0) + 1
        self._open += 1

    def idle(self, conn) -> None:
        """Between requests: evictable, newest last."""
        self._idle[conn] = None
        self._idle.move_to_end(conn)
        ip = self._by_ip.setdefault(conn._ip, OrderedDict())
        ip[conn] = None
        ip.move_to_end(conn)

    def busy(self, conn) -> None:
        self._idle.pop(conn, None)
        self._by_ip.get(conn._ip, {}).pop(conn, None)

    def closed(self, conn) -> None:
        if getattr(conn, "_guard_closed", False):
            return
        conn._guard_closed = True
        self.busy(conn)
        self._open -= 1
        n = self._open_by_ip.get(conn._ip, 1) - 1
        if n:
            self._open_by_ip[conn._ip] = n
        else:
            self._open_by_ip.pop(conn._ip, None)
            self._by_ip.pop(conn._ip, None)

    def victim(self, new):
        """The connection to close for ``new`` to stay: the oldest idle one of the same
        client when that client holds ``max_connections_per_client`` (an attacker's
        flood evicts its own connections first), else the oldest idle one overall when
        ``max_connections`` are open; ``new`` itself when nothing else is idle."""
        if self._open_by_ip.get(new._ip, 0) > self.max_connections_per_client:
            pool = self._by_ip.get(new._ip, {})
        elif self._open > self.max_connections:
            pool = self._idle
        else:
            return None
        for conn in pool:                     # oldest first; `new` is the newest
            return conn
        return new

    def count(self, cause: str) -> None:
        with self._lock:
            self.rejected[cause] = self.rejected.get(cause, 0) + 1

    def counts(self) -> dict:
        with self._lock:
            return dict(self.rejected)

    def host_ok(self, host: bytes | None) -> bool:
        """An IP literal (no DNS name, so no rebinding) or one of this machine's names."""
        if not host:
            return False
        try:
            h = host.decode("ascii").strip().lower()
        except UnicodeDecodeError:
            return False
        if h.startswith("["):                          # [v6]:port
            h = h[1:].partition("]")[0]
        elif h.count(":") == 1:
            h, _, port = h.partition(":")
            if not port.isdigit():
                return False
        try:
            ipaddress.ip_address(h)
            return True
        except ValueError:
            return h.rstrip(".") in self._names


def guarded_protocol(guard: HttpGuard) -> type:
    """A uvicorn protocol class bound to ``guard`` (``uvicorn.Config(http=...)``)."""

    class GuardedProtocol(HttpToolsProtocol):
        def connection_made(self, transport) -> None:
            peer = transport.get_extra_info("peername")
            self._ip = peer[0] if isinstance(peer, tuple) else str(peer)
            self._header_bytes = 0
            self._header_timer = None
            super().connection_made(transport)
            guard.opened(self)
            self._arm()
            victim = guard.victim(self)
            if victim is not None:
                # out of the books now: its connection_lost comes a loop turn later, and
                # the next newcomer must not pick it again
                guard.closed(victim)
                victim._disarm()
                guard.count("connection_refused_busy" if victim is self
                            else "connection_evicted")   # self: all others mid-request
                victim.transport.abort()

        def _arm(self) -> None:
            self._header_timer = self.loop.call_later(guard.header_timeout_s, self._timeout)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _timeout(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            if self._header_bytes:               # a request begun and never finished
                guard.count("header_timeout")
                self._refuse(408, b"request headers not received in time")
            else:                                # idle: nothing was asked, nothing refused
                self.transport.close()

        def _between_requests(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def data_received(self, data: bytes) -> None:
            if self._between_requests() or self.scope is None or "method" not in self.scope:
                self._header_bytes += len(data)
                if self._header_bytes > guard.max_header_bytes:
                    guard.count("header_too_large")
                    self._refuse(431, b"request headers too large")
                    return
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._disarm()
            self._header_bytes = 0
            guard.busy(self)
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                guard.idle(self)
                if self._header_timer is None:
                    self._arm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            guard.closed(self)
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            guard.count("malformed_http")
            self._refuse(400, msg.encode("ascii", "replace"))

        def _refuse(self, status: int, msg: bytes) -> None:
            reason = {400: b"Bad Request", 408: b"Request Timeout",
                      431: b"Request Header Fields Too Large"}[status]
            head = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
            head += [b"%s: %s\r\n" % kv for kv in SECURITY_HEADERS]
            head.append(b"content-security-policy: %s\r\n" % DATA_CSP)
            head.append(b"content-type: text/plain; charset=utf-8\r\n"
                        b"content-length: %d\r\nconnection: close\r\n\r\n" % len(msg))
            self.transport.write(b"".join(head) + msg)
            self.transport.close()

    return GuardedProtocol


class RequestGuard:
    """Plain ASGI (no BaseHTTPMiddleware: it would double the CPU of every poll)."""

    def __init__(self, app, guard: HttpGuard):
        self.app, self.guard = app, guard
        self.inflight = self.streams = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        g = self.guard
        page = scope["path"] == "/"

        async def send_secure(msg):
            if msg["type"] == "http.response.start":
                headers = [h for h in msg.get("headers", [])
                           if h[0].lower() != b"content-security-policy"]
                headers += SECURITY_HEADERS
                headers.append((b"content-security-policy", PAGE_CSP if page else DATA_CSP))
                if not page:
                    headers.append((b"cache-control", b"no-store"))
                msg = dict(msg, headers=headers)
            await send(msg)

        host = next((v for k, v in scope["headers"] if k == b"host"), None)
        if not g.host_ok(host):
            g.count("bad_host")
            return await _reply(send_secure, 421, b'{"detail":"unknown Host header"}')
        estop = scope["path"] == ESTOP_PATH and scope["method"] == "POST"
        stream = scope["path"] == STREAM_PATH
        if (self.inflight >= g.max_inflight and not estop) or \
                (stream and self.streams >= g.max_streams):
            g.count("busy")
            return await _reply(send_secure, 503, b'{"detail":"busy, retry"}',
                                [(b"retry-after", b"1")])

        if scope["method"] in ("POST", "PUT", "PATCH", "DELETE") or any(
                k in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"]):
            body = await self._read_body(scope, receive, send_secure)
            if body is None:
                return
            receive = _replay(body, receive)
        self.inflight += 1
        self.streams += stream
        try:
            return await self.app(scope, receive, send_secure)
        finally:
            self.inflight -= 1
            self.streams -= stream

    async def _read_body(self, scope, receive, send) -> bytes | None:
        """The whole body, at most ``max_body`` bytes within ``body_timeout_s`` (else the
        refusal is sent and None returned): the app never waits on a slow client."""
        g = self.guard
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > g.max_body):
            g.count("body_too_large")
            await _reply(send, 413, b'{"detail":"request body too large"}')
            return None
        chunks, size = [], 0
        deadline = time.monotonic() + g.body_timeout_s
        while True:
            try:
                msg = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                g.count("body_timeout")
                await _reply(send, 408, b'{"detail":"request body not received in time"}')
                return None
            if msg["type"] == "http.disconnect":
                return None
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            if size > g.max_body:
                g.count("body_too_large")
                await _reply(send, 413, b'{"detail":"request body too large"}')
                return None
            if not msg.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive):
    """An ASGI receive that gives the buffered body once, then waits on the client."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay


async def _reply(send, status: int, body: bytes, extra=()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})


def server_config(app, host: str, port: int, guard: HttpGuard):
    """uvicorn's config for the dashboard: the guarded protocol, no global concurrency
    limit (the guard's per-request limit spares the e-stop), no access log (it would hold
    the request line, and a token put in a URL by mistake)."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                          http=guarded_protocol(guard), limit_concurrency=None,
                          timeout_keep_alive=5, lifespan="off")


class ServerThread:
    """uvicorn in a daemon thread (the dashboard node's rclpy executor owns the main one)."""

    def __init__(self, config, start_timeout_s: float = 10.0):
        import uvicorn

        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None       # rclpy owns the signals
        self.thread = threading.Thread(target=self.server.run, daemon=True,
                                       name="dashboard-http")
        self.thread.start()
        t_end = time.monotonic() + start_timeout_s
        while not self.server.started and self.thread.is_alive() and \
                time.monotonic() < t_end:
            time.sleep(0.02)
        if not self.server.started:
            raise RuntimeError(f"dashboard could not listen on {config.host}:{config.port}")
        self.port = self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self, timeout_s: float = 3.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=timeout_s)

"""The dashboard's HTTP surface under hostile clients, over real sockets (uvicorn with the
guarded protocol, as the dashboard node serves it):

* property-based requests generated from its OpenAPI schema (schemathesis: valid and
  invalid bodies, headers, methods; no 5xx, only documented status codes and bodies);
* oversized headers, slow clients (slowloris, slow body), many connections;
* the e-stop answers through all of it, and concurrent e-stop requests leave the dashboard
  agreeing with the controller;
* the token never appears in a log line or a response.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from snn4_ros.dashboard import DashboardState, create_app
from snn4_ros.dashboard.server import HttpGuard, ServerThread, server_config

TOKEN = "fuzz-Tok3n-must-never-leak-9f2c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Controller:
    """Stands in for the controller's ~/estop service (its own tests use the real one):
    applies requests in arrival order after a random delay, as a service call would."""

    def __init__(self):
        self.lock = threading.Lock()
        self.applied: list[bool] = []

    def __call__(self, engage: bool) -> bool:
        time.sleep(random.uniform(0, 0.01))
        with self.lock:
            self.applied.append(engage)
        return True


class Server:
    def __init__(self, **guard_kw):
        self.state = DashboardState(freshness_s=5.0, model={"preset": "hybridnet-s"})
        self.state.set_totals(events=1000, packets=10, dropped=0, gaps=0)
        self.state.on_decision("arm_roll", 0.9, 0.004, 0.009)
        self.controller = Controller()
        self.guard = HttpGuard(**guard_kw)
        self.app = create_app(self.state, TOKEN, on_estop=self.controller, guard=self.guard)
        self.thread = ServerThread(server_config(self.app, "127.0.0.1", 0, self.guard))
        self.port = self.thread.port
        self.url = f"http://127.0.0.1:{self.port}"
        self.seen: list[str] = []          # every response, headers and body, as text
        self.calls = 0                     # schema-generated requests sent
        self.stop = threading.Event()
        threading.Thread(target=self._graph, daemon=True).start()

    def _graph(self):
        """A live graph's reports, so that /readyz is 200 (its 503 is no server error)."""
        k = 0
        while not self.stop.wait(0.1):
            k += 1
            self.state.set_totals(events=1000 + 100 * k, packets=10 + k, dropped=0, gaps=0)
            with self.controller.lock:             # the controller reports its own truth
                estop = self.controller.applied[-1] if self.controller.applied else False
            self.state.on_controller("estop" if estop else "idle", None, estop)


@pytest.fixture(scope="module")
def logs():
    """Every log record of the server side while this module runs (the test's own HTTP
    clients log the URLs they are told to send, tokens in queries included)."""
    records: list[str] = []
    clients = ("httpx", "httpcore", "urllib3", "hpack", "hypothesis", "schemathesis")

    class Keep(logging.Handler):
        def emit(self, record):
            if not record.name.startswith(clients):
                records.append(self.format(record))
    h = Keep(level=logging.DEBUG)
    # uvicorn's loggers do not propagate to the root: each gets the handler too
    loggers = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.error",
                                              "uvicorn.access", "fastapi", "starlette")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(h)
        lg.setLevel(logging.DEBUG)
    yield records
    for lg, lv in zip(loggers, old):
        lg.removeHandler(h)
        lg.setLevel(lv)


@pytest.fixture(scope="module")
def server(logs):
    # 2 s timeouts (5 s in the node): short enough for a quick test, long enough for 40
    # client threads sharing the interpreter with the server on a busy machine
    s = Server(header_timeout_s=2.0, body_timeout_s=2.0, max_connections=64,
               max_inflight=16)
    yield s
    s.stop.set()
    s.thread.stop()
    print(f"\nschema fuzz: {s.calls} generated requests; refusals by cause "
          f"{s.guard.counts()}; {len(logs)} server log records")
    blob = "\n".join(logs) + "\n".join(s.seen)
    assert TOKEN not in blob, "the token leaked into a log line or a response"


def _raw(port: int, data: bytes, timeout: float = 3.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.sendall(data)
        out = b""
        try:
            while chunk := c.recv(65536):
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return out


def _estop(s: Server, engage: bool, client: httpx.Client | None = None) -> httpx.Response:
    c = client or httpx
    r = c.post(f"{s.url}/api/estop", json={"engage": engage}, headers=AUTH, timeout=5)
    s.seen.append(str(r.headers) + r.text)
    return r


# ---------------------------------------------------------------- schema-driven fuzzing
schema = schemathesis.openapi.from_dict(
    create_app(DashboardState(), TOKEN, guard=HttpGuard()).openapi()
).exclude(path="/api/stream")                  # an endless response: tested on its own


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_schema_fuzz(case, server):
    """Generated requests (positive and negative) with and without the token: never a 5xx,
    only documented status codes, bodies as declared; e-stop only with the token."""
    for headers in (AUTH, {}):
        r = case.call(base_url=server.url, headers=headers, timeout=5)
        server.calls += 1
        server.seen.append(str(r.headers) + r.text)
        case.validate_response(r, headers=headers)
        assert r.status_code < 500 or r.status_code == 503 and "busy" in r.text
        h = {k.lower(): v[0] if isinstance(v, list) else v for k, v in r.headers.items()}
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        if case.path == "/api/estop" and not headers:
            assert r.status_code in (401, 405)             # nothing gets past without it
            assert not server.state.estop or server.controller.applied


# ---------------------------------------------------------------- by hand: hostile shapes
def test_nested_json_is_a_4xx_not_a_500(server, logs):
    deep = b"[" * 2000 + b"]" * 2000                     # 4 KB, depth 2000
    r = httpx.post(f"{server.url}/api/estop", content=deep, headers=AUTH | {
        "content-type": "application/json"})
    server.seen.append(r.text)
    assert r.status_code == 400 and "nested" in r.json()["detail"]
    deep = b'{"engage": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    assert httpx.post(f"{server.url}/api/estop", content=deep, headers=AUTH).status_code == 400
    assert not any("RecursionError" in line for line in logs)


def test_oversized_headers_get_431_and_the_server_goes_on(server):
    big = _raw(server.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
               + b"a" * 100_000 + b"\r\n\r\n")
    assert big.startswith(b"HTTP/1.1 431")
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(300))
    assert _raw(server.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + many
                + b"\r\n").startswith(b"HTTP/1.1 431")
    # a 100 KB Authorization header: refused before any token comparison
    r = _raw(server.port, b"POST /api/estop HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
             b"Bearer " + b"x" * 100_000 + b"\r\nContent-Length: 2\r\n\r\n{}")
    assert r.startswith(b"HTTP/1.1 431")
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert server.guard.counts()["header_too_large"] >= 3


def test_bad_host_headers_are_refused(server):
    for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example", "",
                 "localhost:notaport"):
        r = httpx.get(f"{server.url}/api/status", headers={"Host": host})
        assert r.status_code in (400, 421), (host, r.status_code)
    for host in ("127.0.0.1", f"127.0.0.1:{server.port}", f"localhost:{server.port}",
                 "[::1]:8080", "192.168.1.20:8080"):
        assert httpx.get(f"{server.url}/api/status", headers={"Host": host}).status_code \
            == 200, host
    assert server.guard.counts()["bad_host"] >= 4


def test_slow_clients_are_cut_off(server):
    t0 = time.monotonic()
    loris = _raw(server.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: b", 10.0)
    assert loris.startswith(b"HTTP/1.1 408") and time.monotonic() - t0 < 8.0
    t0 = time.monotonic()
    slow = _raw(server.port, b"POST /api/estop HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
                b"Bearer " + TOKEN.encode() + b"\r\nContent-Length: 20\r\n\r\n{\"eng", 10.0)
    assert b" 408 " in slow.split(b"\r\n")[0] and time.monotonic() - t0 < 8.0
    server.seen.append(slow.decode("latin-1"))
    # an idle connection is closed quietly (nothing was asked, nothing refused)
    assert _raw(server.port, b"", 10.0) == b""
    c = server.guard.counts()
    assert c["header_timeout"] >= 1 and c["body_timeout"] >= 1


def test_estop_gets_through_a_connection_flood(server):
    """Far more idle and half-sent connections than the server keeps: the oldest idle ones
    are closed to make room, the e-stop (and the status) answer every time."""
    socks = []
    try:
        for i in range(300):
            s = socket.create_connection(("127.0.0.1", server.port))
            if i % 3 == 0:
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")       # never finished
            socks.append(s)
        for k in range(10):
            r = _estop(server, k % 2 == 0)
            assert r.status_code == 200, r.text
            assert httpx.get(f"{server.url}/api/status").status_code == 200
        assert server.guard.counts()["connection_evicted"] >= 300 - 64
    finally:
        for s in socks:
            s.close()
    _estop(server, False)


def test_concurrent_estops_leave_dashboard_and_controller_agreeing(server):
    """40 clients at once, engaging and releasing: every request is answered 200, the
    controller sees them one at a time, and the dashboard's state is the controller's
    last applied value (never a stale one overtaking a newer)."""
    n = 40
    # a fresh connection per request: a pooled one can meet the server's idle timeout
    # half-way (any keep-alive server has that race; browsers retry, a POST is not retried)
    client = httpx.Client(limits=httpx.Limits(max_connections=n, max_keepalive_connections=0))

    def one(engage, out):
        try:
            out.append(_estop(server, engage, client).status_code)
        except httpx.HTTPError as exc:
            out.append(repr(exc))
    for _round in range(3):
        n0 = len(server.controller.applied)
        codes: list = []
        threads = [threading.Thread(target=one, args=(random.random() < 0.5, codes))
                   for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert codes == [200] * n, codes
        assert len(server.controller.applied) - n0 == n
        assert server.state.estop is server.controller.applied[-1]
        st = httpx.get(f"{server.url}/api/status").json()
        assert st["estop"] is server.controller.applied[-1]
    client.close()
    _estop(server, False)


def test_the_token_is_never_echoed(server):
    """A wrong token that contains the real one, tokens in the query and in cookies: 401,
    and nothing of them in the answer."""
    for h, params in (({"Authorization": f"Bearer {TOKEN}x"}, None),
                      ({"Authorization": f"Basic {TOKEN}"}, None),
                      ({}, {"token": TOKEN}),
                      ({"Cookie": f"token={TOKEN}"}, None)):
        r = httpx.post(f"{server.url}/api/estop", json={"engage": True}, headers=h,
                       params=params)
        server.seen.append(str(r.headers) + r.text)
        assert r.status_code == 401 and TOKEN not in r.text
    assert json.loads(httpx.get(f"{server.url}/api/status").text)["estop"] is False

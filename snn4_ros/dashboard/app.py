"""HTTP health, metrics and control for a running snn4_ros graph (FastAPI; no rclpy here).

``DashboardState`` is the one place the graph reports to (thread-safe); ``create_app`` serves
it:

* ``GET /healthz``   the process is alive
* ``GET /readyz``    200 only when the model is loaded, events arrived within the freshness
                     window and the controller is not stale; 503 with the reasons otherwise
* ``GET /metrics``   Prometheus text format (``snn4_`` prefix, base units, ``_total``)
* ``GET /api/status`` JSON: rates, latency percentiles, backend, model card, last decision,
                     controller and e-stop state
* ``POST /api/estop`` ``{"engage": true|false}`` with ``Authorization: Bearer TOKEN``
* ``GET /api/stream`` server-sent events for the live page
* ``GET /``          the live page (no external resources: the robot has no internet)

Security: mutating endpoints need the bearer token (compared in constant time); no CORS
headers; request bodies over 4 KiB are refused; ``check_bind`` refuses a non-loopback bind
without a token.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

MAX_BODY = 4096


class DashboardSecurityError(RuntimeError):
    """A configuration that would expose the robot's controls."""


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not token:
        raise DashboardSecurityError(
            f"refusing to bind {host} without a token: set SNN4_DASHBOARD_TOKEN or "
            "--dashboard-token-file, or bind 127.0.0.1")


@dataclass
class DashboardState:
    """What the graph reports; every update is cheap and thread-safe."""

    freshness_s: float = 1.0
    model: dict = field(default_factory=dict)          # the model card's headline fields
    backend: str = "torch:cpu"
    events_total: int = 0
    packets_total: int = 0
    packets_dropped_total: int = 0
    sequence_gaps_total: int = 0
    decisions: dict = field(default_factory=dict)      # class -> count
    cmd_vel_nonzero_total: int = 0
    estop: bool = False
    controller_state: str = "starting"
    last_decision: dict | None = None
    last_event_wall: float | None = None
    last_controller_wall: float | None = None
    spike_rate: dict = field(default_factory=dict)     # layer -> spikes per neuron and bin
    nodes: dict = field(default_factory=dict)          # node -> {level, message, values}
    probs: dict = field(default_factory=dict)          # class -> probability, last decision
    target: dict | None = None                         # tracked target: x, y, visibility
    command: dict = field(default_factory=lambda: {"linear": 0.0, "angular": 0.0})
    frame: dict | None = None                          # last event frame: w, h, base64 mono8

    def __post_init__(self):
        self._lock = threading.Lock()
        self._lat = deque(maxlen=2000)
        self._e2e = deque(maxlen=2000)
        self._rate = deque(maxlen=120)                 # (wall, events_total)

    def set_totals(self, events: int, packets: int, dropped: int, gaps: int) -> None:
        """Absolute counters, as a node's diagnostics report them."""
        with self._lock:
            if events > self.events_total:
                self.last_event_wall = time.monotonic()
            self.events_total, self.packets_total = events, packets
            self.packets_dropped_total, self.sequence_gaps_total = dropped, gaps
            self._rate.append((time.monotonic(), self.events_total))

    def on_scores(self, probs: dict, target: dict | None = None) -> None:
        with self._lock:
            self.probs = probs
            if target is not None:
                self.target = target

    def on_frame(self, width: int, height: int, data: bytes) -> None:
        import base64
        with self._lock:
            self.frame = {"w": width, "h": height, "data": base64.b64encode(data).decode()}

    def on_node(self, name: str, level: str, message: str, values: dict) -> None:
        with self._lock:
            self.nodes[name] = {"level": level, "message": message, "values": values,
                                "age_s": 0.0, "_t": time.monotonic()}

    def on_decision(self, cls: str, confidence: float, latency_s: float | None = None,
                    e2e_s: float | None = None) -> None:
        with self._lock:
            self.decisions[cls] = self.decisions.get(cls, 0) + 1
            self.last_decision = {"class": cls, "confidence": confidence, "time": time.time()}
            if latency_s is not None:
                self._lat.append(latency_s)
            if e2e_s is not None:
                self._e2e.append(e2e_s)

    def add_latencies(self, seconds: list[float]) -> None:
        """Inference latencies reported in bulk (the inference node's diagnostics)."""
        with self._lock:
            self._lat.extend(seconds)

    def on_command(self, linear: float, angular: float, state: str | None = None,
                   action: str | None = None) -> None:
        with self._lock:
            self.cmd_vel_nonzero_total += int(linear != 0 or angular != 0)
            if state is not None:
                self.controller_state = state
            self.command = {"linear": linear, "angular": angular, "action": action}
            self.last_controller_wall = time.monotonic()

    def readiness(self) -> list[str]:
        """Reasons the graph is not ready (empty when it is)."""
        now = time.monotonic()
        why = []
        if not self.model:
            why.append("model not loaded")
        if self.last_event_wall is None or now - self.last_event_wall > self.freshness_s:
            why.append(f"no events within {self.freshness_s:g} s")
        if self.last_controller_wall is None or now - self.last_controller_wall > self.freshness_s:
            why.append("controller silent")
        elif self.controller_state == "stale":
            why.append("controller stale")
        return why

    def event_rate(self) -> float:
        with self._lock:
            if len(self._rate) < 2:
                return 0.0
            (t0, e0), (t1, e1) = self._rate[0], self._rate[-1]
        return (e1 - e0) / (t1 - t0) if t1 > t0 else 0.0

    def latencies(self) -> tuple[list[float], list[float]]:
        with self._lock:
            return list(self._lat), list(self._e2e)

    def status(self) -> dict:
        """The status, computed at most every 50 ms however many clients ask (a dashboard
        must not take CPU from the inference it reports on)."""
        now = time.monotonic()
        cached = getattr(self, "_status_cache", None)
        if cached is not None and now - cached[0] < 0.05:
            return cached[1]
        out = self._status()
        self._status_cache = (now, out)
        return out

    def _status(self) -> dict:
        import numpy as np

        lat, e2e = self.latencies()
        why = self.readiness()
        rate = self.event_rate()

        def pct(v):
            return {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99))} \
                if v else None
        with self._lock:
            now = time.monotonic()
            nodes = {k: {kk: vv for kk, vv in v.items() if kk != "_t"} | {
                "age_s": now - v["_t"]} for k, v in self.nodes.items()}
            return {
                "ready": not why, "not_ready_because": why, "nodes": nodes,
                "command": dict(self.command),
                "backend": self.backend, "model": dict(self.model),
                "events_total": self.events_total, "packets_total": self.packets_total,
                "packets_dropped_total": self.packets_dropped_total,
                "sequence_gaps_total": self.sequence_gaps_total,
                "decisions_total": dict(self.decisions),
                "cmd_vel_nonzero_total": self.cmd_vel_nonzero_total,
                "estop": self.estop, "controller_state": self.controller_state,
                "last_decision": self.last_decision, "spike_rate": dict(self.spike_rate),
                "event_rate_hz": rate,
                "inference_latency_s": pct(lat), "end_to_end_latency_s": pct(e2e),
            }

    def live(self) -> dict:
        """What the live page draws: the status plus scores, target and the event frame."""
        out = dict(self.status())
        with self._lock:
            out.update(probs=dict(self.probs), target=self.target, frame=self.frame)
        return out

    def status_json(self) -> bytes:
        """The status, encoded once per cache period (serialising per request would cost
        the CPU that the cache saves)."""
        st = self.status()
        cached = getattr(self, "_json_cache", None)
        if cached is None or cached[0] is not st:
            cached = (st, json.dumps(st, default=float).encode())
            self._json_cache = cached
        return cached[1]

    def invalidate(self) -> None:
        self._status_cache = None


def metrics_text(state: DashboardState) -> bytes:
    """The Prometheus exposition of the state (a fresh registry per scrape: no globals)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

    reg = CollectorRegistry()
    s = state.status()
    for name, doc, value in (
            ("snn4_events_received", "Change-detection events received", s["events_total"]),
            ("snn4_packets_received", "EventPackets received", s["packets_total"]),
            ("snn4_packets_dropped", "EventPackets shed by the bounded queue",
             s["packets_dropped_total"]),
            ("snn4_sequence_gaps", "EventPacket sequence gaps", s["sequence_gaps_total"]),
            ("snn4_cmd_vel_nonzero", "Non-zero velocity commands", s["cmd_vel_nonzero_total"])):
        Counter(name, doc, registry=reg).inc(value)
    dec = Counter("snn4_decisions", "Gesture decisions", ["class"], registry=reg)
    for cls, n in s["decisions_total"].items():
        dec.labels(cls).inc(n)
    Gauge("snn4_estop_active", "1 while the e-stop is engaged", registry=reg).set(int(s["estop"]))
    Gauge("snn4_event_rate_hz", "Events per second", registry=reg).set(s["event_rate_hz"])
    info = Gauge("snn4_model_info", "The running model", ["preset", "backend"], registry=reg)
    info.labels(str(s["model"].get("preset", "")), s["backend"]).set(1)
    rate = Gauge("snn4_spike_rate", "Spikes per neuron and time bin", ["layer"], registry=reg)
    for layer, v in s["spike_rate"].items():
        rate.labels(str(layer)).set(v)
    lat, e2e = state.latencies()
    buckets = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
    for name, doc, values in (("snn4_inference_latency_seconds", "Packet to decision", lat),
                              ("snn4_end_to_end_latency_seconds", "Packet to command", e2e)):
        h = Histogram(name, doc, buckets=buckets, registry=reg)
        for v in values:
            h.observe(v)
    return generate_latest(reg)


class BodyLimit:
    """Refuses request bodies over MAX_BODY (declared or streamed) with 413. Plain ASGI:
    Starlette's BaseHTTPMiddleware would double the per-request CPU of every poll."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return await _reply_413(send)
        seen = 0

        async def limited():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > MAX_BODY:
                    raise _TooLarge
            return msg
        try:
            return await self.app(scope, limited, send)
        except _TooLarge:
            return await _reply_413(send)


class StatusFastPath:
    """``GET /api/status`` straight from the cached JSON bytes, below FastAPI's routing:
    the endpoint fleets poll, answered for a fraction of the CPU (bench/dashboard_load.py)."""

    def __init__(self, app, state: DashboardState):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET" \
                and scope["path"] == "/api/status":
            body = self.state.status_json()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


async def _reply_413(send) -> None:
    body = b'{"detail":"request body too large"}'
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(state: DashboardState, token: str | None = None, on_estop=None,
               stream_period_s: float = 0.2):
    """The FastAPI app. ``on_estop(engaged: bool) -> bool`` forwards the e-stop to the
    controller (blocking is fine: it runs in a worker thread; False means not confirmed)."""

    app = FastAPI(title="snn4_ros", docs_url=None, redoc_url=None, openapi_url=None)

    app.add_middleware(BodyLimit)
    app.add_middleware(StatusFastPath, state=state)

    @app.get("/healthz")
    def healthz():
        return {"status": "alive"}

    @app.get("/readyz")
    def readyz():
        why = state.readiness()
        return JSONResponse({"ready": not why, "reasons": why}, status_code=503 if why else 200)

    @app.get("/metrics")
    def metrics():
        return Response(metrics_text(state), media_type="text/plain; version=0.0.4")

    @app.get("/api/status")
    def status():
        return Response(state.status_json(), media_type="application/json")

    @app.post("/api/estop")
    async def estop(request: Request):
        auth = request.headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not token or not hmac.compare_digest(given.encode(), token.encode()):
            return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"detail": "body must be JSON"}, status_code=400)
        if not isinstance(body, dict) or not isinstance(body.get("engage"), bool):
            return JSONResponse({"detail": 'body must be {"engage": true|false}'},
                                status_code=422)
        if on_estop is not None:
            ok = await asyncio.get_running_loop().run_in_executor(None, on_estop,
                                                                  body["engage"])
            if ok is False:
                return JSONResponse({"detail": "the controller did not confirm the e-stop"},
                                    status_code=503)
        state.estop = body["engage"]
        state.invalidate()
        return {"estop": state.estop}

    @app.get("/api/stream")
    async def stream(request: Request):
        """Server-sent events: the live snapshot every ``stream_period_s``."""
        async def events():
            while not await request.is_disconnected():
                yield f"data: {json.dumps(state.live(), default=float)}\n\n"
                await asyncio.sleep(stream_period_s)
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @app.get("/")
    def index():
        return HTMLResponse(_page(), headers={
            "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline' 'self'; "
                                       "style-src 'unsafe-inline'; img-src 'self' data:"})

    return app


def _page() -> str:
    from importlib.resources import files
    return (files("snn4_ros.dashboard") / "static" / "index.html").read_text()

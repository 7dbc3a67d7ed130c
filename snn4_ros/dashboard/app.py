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

Security: mutating endpoints need the bearer token (compared in constant time); no CORS
headers; request bodies over 4 KiB are refused; ``check_bind`` refuses a non-loopback bind
without a token.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

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

    def __post_init__(self):
        self._lock = threading.Lock()
        self._lat = deque(maxlen=2000)
        self._e2e = deque(maxlen=2000)
        self._rate = deque(maxlen=120)                 # (wall, events_total)

    def on_packet(self, events: int, dropped: int = 0, gaps: int = 0) -> None:
        with self._lock:
            self.events_total += events
            self.packets_total += 1
            self.packets_dropped_total += dropped
            self.sequence_gaps_total += gaps
            self.last_event_wall = time.monotonic()
            self._rate.append((self.last_event_wall, self.events_total))

    def on_decision(self, cls: str, confidence: float, latency_s: float,
                    e2e_s: float | None = None) -> None:
        with self._lock:
            self.decisions[cls] = self.decisions.get(cls, 0) + 1
            self.last_decision = {"class": cls, "confidence": confidence, "time": time.time()}
            self._lat.append(latency_s)
            if e2e_s is not None:
                self._e2e.append(e2e_s)

    def on_command(self, linear: float, angular: float, state: str) -> None:
        with self._lock:
            self.cmd_vel_nonzero_total += int(linear != 0 or angular != 0)
            self.controller_state = state
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
        import numpy as np

        lat, e2e = self.latencies()
        why = self.readiness()
        rate = self.event_rate()

        def pct(v):
            return {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99))} \
                if v else None
        with self._lock:
            return {
                "ready": not why, "not_ready_because": why,
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


def create_app(state: DashboardState, token: str | None = None, on_estop=None):
    """The FastAPI app. ``on_estop(engaged: bool)`` forwards the e-stop to the controller."""

    app = FastAPI(title="snn4_ros", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return JSONResponse({"detail": "request body too large"}, status_code=413)
        if request.method == "POST" and length is None:
            body = await request.body()
            if len(body) > MAX_BODY:
                return JSONResponse({"detail": "request body too large"}, status_code=413)
        return await call_next(request)

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
        return state.status()

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
        state.estop = body["engage"]
        if on_estop is not None:
            on_estop(body["engage"])
        return {"estop": state.estop}

    @app.get("/")
    def index():
        return PlainTextResponse("snn4_ros: /healthz /readyz /metrics /api/status "
                                 "(the live page comes with the dashboard issue)")

    return app

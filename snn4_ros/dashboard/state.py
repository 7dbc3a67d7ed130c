"""What the dashboard knows of the running graph: ``DashboardState``, the one place the
graph reports to (thread-safe, cheap updates), with the readiness rules and the status
snapshot every endpoint reads (computed at most every 50 ms however many clients ask).
Rates and latency percentiles are over a recent window, start-up left out and marked."""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field

LAT_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


class _Hist:
    """A cumulative latency histogram (Prometheus semantics: counts only grow) plus the
    recent samples with their wall time, for percentiles over a window."""

    def __init__(self):
        self.counts = [0] * (len(LAT_BUCKETS) + 1)
        self.total = 0.0
        self.n = 0
        self.recent: deque = deque(maxlen=5000)         # (monotonic, seconds)

    def add(self, t: float, v: float) -> None:
        self.counts[bisect.bisect_left(LAT_BUCKETS, v)] += 1
        self.total += v
        self.n += 1
        self.recent.append((t, v))

    def window(self, t0: float) -> list[float]:
        return [v for t, v in self.recent if t >= t0]


@dataclass
class DashboardState:
    """What the graph reports; every update is cheap and thread-safe.

    Rates and latency percentiles are over the last ``window_s`` seconds (what the robot
    does now, not since boot), and latencies from the first ``warmup_s`` seconds after the
    first events are left out of the percentiles (model warm-up and DDS discovery would
    dominate a p99 for minutes); the status says while that is the case."""

    freshness_s: float = 1.0
    window_s: float = 20.0
    warmup_s: float = 10.0
    model: dict = field(default_factory=dict)          # the model card's headline fields
    backend: str = "torch:cpu"
    events_total: int = 0
    packets_total: int = 0
    packets_dropped_total: int = 0
    sequence_gaps_total: int = 0
    shed_fraction: float = 0.0                         # events shed (behind real time), total
    shed_fraction_recent: float = 0.0                  # ... over the last diagnostics period
    decisions: dict = field(default_factory=dict)      # class -> count
    cmd_vel_nonzero_total: int = 0
    estop: bool = False
    estop_available: bool = True                       # a token is configured
    controller_state: str = "starting"
    last_decision: dict | None = None
    last_event_wall: float | None = None
    last_controller_wall: float | None = None
    last_decision_wall: float | None = None
    spike_rate: dict = field(default_factory=dict)     # layer -> spikes per neuron and bin
    nodes: dict = field(default_factory=dict)          # node -> {level, message, values}
    probs: dict = field(default_factory=dict)          # class -> probability, last decision
    target: dict | None = None                         # tracked target: x, y, visibility
    command: dict = field(default_factory=lambda: {"linear": 0.0, "angular": 0.0,
                                                   "action": None})
    frame: dict | None = None                          # last event frame: w, h, base64 mono8
    rejected: dict = field(default_factory=dict)       # HTTP refusals by cause (HttpGuard's)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._lat = _Hist()
        self._e2e = _Hist()
        self._rate = deque(maxlen=600)                 # (monotonic, events_total)
        self._t_start = time.monotonic()
        self._t_first_event: float | None = None

    def set_totals(self, events: int, packets: int, dropped: int, gaps: int) -> None:
        """Absolute counters, as a node's diagnostics report them."""
        with self._lock:
            now = time.monotonic()
            if events > self.events_total:
                self.last_event_wall = now
                if self._t_first_event is None:
                    self._t_first_event = now
            self.events_total, self.packets_total = events, packets
            self.packets_dropped_total, self.sequence_gaps_total = dropped, gaps
            self._rate.append((now, self.events_total))

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
            now = time.monotonic()
            self.decisions[cls] = self.decisions.get(cls, 0) + 1
            self.last_decision = {"class": cls, "confidence": confidence, "time": time.time()}
            self.last_decision_wall = now
            if self._t_first_event is None:            # a decision means events came
                self._t_first_event = now
            if latency_s is not None:
                self._lat.add(now, latency_s)
            if e2e_s is not None:
                self._e2e.add(now, e2e_s)

    def add_latencies(self, seconds: list[float]) -> None:
        """Inference latencies reported in bulk (the inference node's diagnostics)."""
        with self._lock:
            now = time.monotonic()
            for v in seconds:
                self._lat.add(now, v)

    def on_command(self, linear: float, angular: float, state: str | None = None,
                   action: str | None = None) -> None:
        """A command seen on cmd_vel; the action it carries out comes from the controller
        (its diagnostics) and is kept until the controller reports another."""
        with self._lock:
            self.cmd_vel_nonzero_total += int(linear != 0 or angular != 0)
            if state is not None:
                self.controller_state = state
            if action is not None:
                self.command["action"] = action
            self.command.update(linear=linear, angular=angular)
            self.last_controller_wall = time.monotonic()

    def on_controller(self, state: str, action: str | None, estop: bool) -> None:
        """The controller's own report (its diagnostics): state, current action, e-stop."""
        with self._lock:
            self.controller_state = state
            self.command["action"] = action
            self.estop = estop
            self.last_controller_wall = time.monotonic()

    def readiness(self) -> list[str]:
        """Reasons the graph is not ready (empty when it is). Decisions count as evidence
        of a loaded model and of events, so /readyz follows what the graph does even when
        its diagnostics (1 Hz, possibly late) have not said so yet."""
        now = time.monotonic()

        def fresh(t):
            return t is not None and now - t <= self.freshness_s
        deciding = fresh(self.last_decision_wall)
        why = []
        if not self.model and not deciding:
            why.append("model not loaded")
        if not (fresh(self.last_event_wall) or deciding):
            why.append(f"no events within {self.freshness_s:g} s")
        if not fresh(self.last_controller_wall):
            why.append("controller silent")
        elif self.controller_state in ("stale", "fault"):
            why.append(f"controller {self.controller_state}")
        return why

    def _rate_over(self, seconds: float) -> float:
        """Events per second over (about) the last ``seconds``: from the newest total back
        to the oldest one at most that old (totals arrive once a second)."""
        if len(self._rate) < 2:
            return 0.0
        t1, e1 = self._rate[-1]
        t0, e0 = t1, e1
        for t, e in reversed(self._rate):
            if t1 - t > seconds + 0.5:
                break
            t0, e0 = t, e
        if time.monotonic() - t1 > max(2.5, self.freshness_s) or t1 - t0 < 0.5:
            # nothing reported lately, or two reports close together (a start-up burst:
            # a second's events over milliseconds read as 10^7 ev/s)
            return 0.0
        return (e1 - e0) / (t1 - t0)

    def event_rate(self) -> float:
        with self._lock:
            return self._rate_over(2.0)

    def warming_up(self) -> bool:
        t = self._t_first_event
        return t is None or time.monotonic() - t < self.warmup_s

    def latencies(self) -> tuple[list[float], list[float]]:
        """Inference and end-to-end latencies (s) of the recent window, warm-up excluded."""
        now = time.monotonic()
        t0 = now - self.window_s
        if self._t_first_event is not None:
            t0 = max(t0, self._t_first_event + self.warmup_s)
        with self._lock:
            return self._lat.window(t0), self._e2e.window(t0)

    def histograms(self) -> dict:
        with self._lock:
            return {k: (list(h.counts), h.total, h.n) for k, h in
                    (("inference", self._lat), ("end_to_end", self._e2e))}

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

        def pct(v):
            return {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99)),
                    "n": len(v)} if v else None
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
                "shed_fraction": self.shed_fraction,
                "shed_fraction_recent": self.shed_fraction_recent,
                "decisions_total": dict(self.decisions),
                "cmd_vel_nonzero_total": self.cmd_vel_nonzero_total,
                "estop": self.estop, "estop_available": self.estop_available,
                "controller_state": self.controller_state,
                "last_decision": self.last_decision, "spike_rate": dict(self.spike_rate),
                "event_rate_hz": self._rate_over(2.0),
                "event_rate_window_hz": self._rate_over(self.window_s),
                "window_s": self.window_s, "warmup_s": self.warmup_s,
                "warming_up": self.warming_up(), "uptime_s": now - self._t_start,
                "inference_latency_s": pct(lat), "end_to_end_latency_s": pct(e2e),
                "http_rejected_total": dict(self.rejected),
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

"""What the dashboard knows of the running graph: ``DashboardState``, the one place the
graph reports to (thread-safe, cheap updates), with the readiness rules and the status
snapshot every endpoint reads (computed at most every 50 ms however many clients ask)."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field


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

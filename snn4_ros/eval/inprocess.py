"""Replay a recording through the live code path, in process (no rclpy here).

Every event message of a bag (EventPacket in any encoding, dvs_msgs / dv_ros2_msgs
EventArray) or every 2 ms of an event file goes through ``PerceptionPipeline`` -- the inference
node's decoder, windowing and streaming HybridNet -- and every decision into
``GestureController`` -- the controller node's state machine -- with the node's order of
calls: decision, immediate command, then the track; plus the node's periodic command tick.
The controller runs on the bag's clock (the packets' header stamps), so the commands do not
depend on how fast the replay runs. The result is a ``ReplayTrace``: plain arrays that the
metrics and the report read, and that ``--via-ros`` fills in the same shape from real topics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..events.errors import EventDataError
from ..events.labels import Interval
from ..events.messages import MessageLog, iter_messages
from ..events.stream import Pacer
from ..models.hybridnet import HybridNet
from ..runtime.control import ControllerConfig, GestureController
from ..runtime.pipeline import Decision, GeometryError, PerceptionPipeline

STAGES = ("decode", "windowing", "snn", "bridge_head", "controller", "total")


@dataclass
class ReplayOptions:
    topic: str | None = None             # event topic (default: the only one)
    rate: float | None = None            # x real time; None: as fast as possible
    strict: bool = False                 # stop at the first bad message instead of counting
    controller: dict = field(default_factory=dict)   # ControllerConfig fields
    tick_hz: float = 50.0                # the controller node's command rate
    device: str = "cpu"
    packet_us: int = 2000                # packet length for event files (the source node's)
    window: int = 0                      # bins the bridge and heads read (0: the model's)


@dataclass
class ReplayTrace:
    """What happened during one replay, as arrays on the bag's clock (ns)."""

    source: str
    classes: list[str]
    mode: str = "in-process"
    # what reading the recording met (format, topic, encoding, messages, skipped, errors);
    # a replay's own problems (geometry, lost records) are added to its errors
    log: MessageLog = field(default_factory=MessageLog)
    decode: dict = field(default_factory=dict)         # DecodeStats fields
    geometry_errors: int = 0
    time_jumps: int = 0
    events: int = 0
    t_first_ns: int = 0
    t_last_ns: int = 0
    wall_s: float = 0.0
    packet_t: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    packet_events: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dec_t: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dec_probs: np.ndarray | None = None                # [N, classes]
    dec_pos: np.ndarray | None = None                  # [N, 2] (nan: no tracking head)
    dec_vis: np.ndarray | None = None                  # [N]
    dec_synops: np.ndarray | None = None               # [N] synaptic ops of the bin
    cmd_t: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cmd_lin: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cmd_ang: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cmd_state: list[str] = field(default_factory=list)
    cmd_action: list[str | None] = field(default_factory=list)
    stage_ms: dict[str, np.ndarray] = field(default_factory=dict)
    labels: list[Interval] = field(default_factory=list)
    labels_skipped: int = 0
    model: dict = field(default_factory=dict)          # preset, macs_per_step, bin_us, ...

    @property
    def duration_s(self) -> float:
        return max(0, self.t_last_ns - self.t_first_ns) / 1e9

    @property
    def dec_top(self) -> np.ndarray:
        return np.zeros(0, np.int64) if self.dec_probs is None else self.dec_probs.argmax(1)


class TraceRecorder:
    """Collects decisions, commands and timings into a ReplayTrace (one place for both the
    in-process replay and the ROS one)."""

    def __init__(self, trace: ReplayTrace):
        self.trace = trace
        self.dec_t, self.probs, self.pos, self.vis, self.synops = [], [], [], [], []
        self.cmd = []
        self.packets = []
        self.stages: dict[str, list[float]] = {s: [] for s in STAGES}

    def packet(self, stamp_ns: int, events: int) -> None:
        self.packets.append((stamp_ns, events))

    def decision(self, stamp_ns: int, d: Decision, synops: float = float("nan")) -> None:
        self.dec_t.append(stamp_ns)
        self.probs.append(d.probs)
        self.pos.append(d.position or (np.nan, np.nan))
        self.vis.append(np.nan if d.visibility is None else d.visibility)
        self.synops.append(synops)

    def command(self, stamp_ns: int, linear: float, angular: float, state: str,
                action: str | None) -> None:
        self.cmd.append((stamp_ns, linear, angular, state, action))

    def finish(self) -> ReplayTrace:
        tr = self.trace
        C = len(tr.classes)
        tr.dec_t = np.asarray(self.dec_t, np.int64)
        tr.dec_probs = np.asarray(self.probs, np.float32).reshape(-1, C)
        tr.dec_pos = np.asarray(self.pos, np.float32).reshape(-1, 2)
        tr.dec_vis = np.asarray(self.vis, np.float32)
        tr.dec_synops = np.asarray(self.synops, np.float64)
        tr.cmd_t = np.asarray([c[0] for c in self.cmd], np.int64)
        tr.cmd_lin = np.asarray([c[1] for c in self.cmd], np.float64)
        tr.cmd_ang = np.asarray([c[2] for c in self.cmd], np.float64)
        tr.cmd_state = [c[3] for c in self.cmd]
        tr.cmd_action = [c[4] for c in self.cmd]
        tr.packet_t = np.asarray([p[0] for p in self.packets], np.int64)
        tr.packet_events = np.asarray([p[1] for p in self.packets], np.int64)
        if len(tr.packet_t):
            tr.t_first_ns, tr.t_last_ns = int(tr.packet_t.min()), int(tr.packet_t.max())
        tr.stage_ms = {k: np.asarray(v) * 1e3 for k, v in self.stages.items() if v}
        return tr


def model_facts(net: HybridNet, card: dict | None = None) -> dict:
    from ..models.energy import loihi_mappable
    mappable, why = loihi_mappable(net)
    return {"preset": net.cfg.preset, "bin_us": net.cfg.bin_us, "window": net.cfg.window,
            "macs_per_step": int(net.macs_per_step()), "neurons": int(net.neuron_count()),
            "name": (card or {}).get("name"), "loihi_mappable": mappable,
            "loihi_why_not": why,
            # the controller settings the model was validated with (real-world models)
            "controller": (card or {}).get("controller")}


def bin_synops(net: HybridNet, frame: np.ndarray, spikes: list) -> float:
    """Synaptic operations of one bin: input events and spikes times their fan-out."""
    x = torch.from_numpy(np.ascontiguousarray(frame))[None, None].float()
    return float(net.synops(x, [c.float().cpu() for c in spikes])[0])


def replay(path: str | Path, net: HybridNet, opts: ReplayOptions | None = None,
           card: dict | None = None, progress: Callable[[int], None] | None = None
           ) -> ReplayTrace:
    """Replay one recording in process; ``progress(n)`` is told of every n messages done."""
    opts = opts or ReplayOptions()
    classes = list(net.cfg.classes)
    trace = ReplayTrace(str(path), classes, model=model_facts(net, card))
    pipe = PerceptionPipeline(net, opts.device, rescale=True, strict=opts.strict,
                              window=opts.window or None)
    trace.model["window"] = pipe.runner.window
    pipe.warm_up()
    ctrl = GestureController(ControllerConfig.from_dict(
        opts.controller or (card or {}).get("controller") or {}))
    rec = TraceRecorder(trace)
    period_ns = int(1e9 / opts.tick_hz)
    next_tick = None
    t_wall0 = time.perf_counter()
    pacer = Pacer(opts.rate)
    done = 0
    for stamp, pkt in iter_messages(path, opts.topic, opts.strict, opts.packet_us, trace.log):
        pacer.pace(stamp)
        if next_tick is None:
            next_tick = stamp
        while next_tick <= stamp:              # the node's timer, on the bag's clock
            c = ctrl.command(next_tick * 1e-9)
            rec.command(next_tick, c.linear, c.angular, c.state, c.action)
            next_tick += period_ns
        t0 = time.perf_counter()
        events_before = pipe.decoder.stats.events
        try:
            results = pipe.process(pkt)
        except GeometryError as exc:
            if opts.strict:
                raise EventDataError(str(exc), where=str(path)) from None
            trace.log.errors.append(str(exc))
            results = []
        rec.packet(stamp, pipe.decoder.stats.events - events_before)
        if results:
            rec.stages["decode"].append(pipe.timing[0])
            rec.stages["windowing"].append(pipe.timing[1])
        for r in results:
            d = Decision.of(r.output)
            rec.decision(stamp, d, bin_synops(net, r.frame, r.output.spikes))
            tc = time.perf_counter()
            ctrl.on_decision(stamp * 1e-9, classes[d.top], d.confidence, list(map(float, d.probs)))
            c = ctrl.command(stamp * 1e-9)
            rec.command(stamp, c.linear, c.angular, c.state, c.action)
            if d.position is not None:
                ctrl.on_track(stamp * 1e-9, d.position[0], d.position[1], d.visibility)
            rec.stages["snn"].append(r.snn_s)
            rec.stages["bridge_head"].append(r.head_s)
            rec.stages["controller"].append(time.perf_counter() - tc)
        if results:
            rec.stages["total"].append(time.perf_counter() - t0)
        done += 1
        if progress is not None and done % 50 == 0:
            progress(50)
    if progress is not None:
        progress(done % 50)
    trace.wall_s = time.perf_counter() - t_wall0
    trace.decode = pipe.decoder.stats.as_dict()
    trace.events = int(pipe.decoder.stats.events)
    trace.geometry_errors, trace.time_jumps = pipe.geometry_errors, pipe.time_jumps
    return rec.finish()

"""``snn4 replay --via-ros``: a recording through the real nodes over real DDS topics.

A player node publishes the recording's EventPackets on ``/event_camera/events`` and its
clock on ``/clock``; the real ``snn4_inference`` and ``gesture_controller`` nodes run with
``use_sim_time`` (the controller's deadman, debounce and hold then follow the recording's
clock, as with ``ros2 bag play --clock``); a recorder subscribes to what the graph
publishes (in the namespace /snn4_replay): ``gesture`` (the decisions),
``snn4_inference/progress`` (one record per packet handled: the bins it closed and their
synaptic operations, the decoder's counters), ``gesture_controller/command`` (every command
with the controller's state and action) and ``cmd_vel`` (which must agree with those). The
player keeps at most ``window`` packets in flight, counted by the node's published
progress, so nothing is dropped at any replay speed and the decisions equal the in-process
replay's. Nothing is read from the nodes' objects: the figures come from the topics alone.
The result is the same ``ReplayTrace``, with the publish -> Classification time
(``end_to_end``, transport included) as its latency stage; tracks are not recorded.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from ..events import PacketDecoder
from ..events.codecs import DecodeStats
from ..events.stream import Pacer
from ..eval.inprocess import ReplayOptions, ReplayTrace, TraceRecorder, model_facts
from ..events.messages import iter_messages
from ..runtime.pipeline import Decision
from .common import (CMD_VEL_TOPIC, EVENTS_PUB_QOS, EVENTS_TOPIC, GESTURE_TOPIC, RESULT_QOS,
                     packet_to_msg, record_values, twist_of, twist_type)
from .topics import COMMAND_RECORD_TOPIC, PROGRESS_TOPIC, RECORD_QOS

# The replay's nodes live in their own namespace: its commands (on /snn4_replay/cmd_vel) are
# recorded for the report and can never reach a robot's /cmd_vel or a running pipeline.
REPLAY_NS = "snn4_replay"


class _Recorder(Node):
    """Everything the replay scores, from public topics alone: the decisions
    (``gesture``), the inference node's record of every packet handled (``~/progress``:
    how many, the bins each closed and their synaptic operations, the decoder's counters),
    and every command (``~/command``: linear, angular, state and action on the node clock;
    ``cmd_vel`` itself is recorded too and must agree)."""

    def __init__(self, classes: list[str], sent: dict, stamped: bool = True, **kw):
        super().__init__("snn4_replay_recorder", **kw)
        from diagnostic_msgs.msg import DiagnosticArray
        from vision_msgs.msg import Classification

        self.classes, self.sent = classes, sent
        self.lock = threading.Lock()
        self.decisions: list[tuple[int, Decision, float | None]] = []   # (t, d, e2e s)
        self.synops: dict[int, float] = {}            # decision index -> synaptic operations
        self.handled = 0                              # packets the inference node is done with
        self.expected = 0                             # decisions it has published
        self.counters: dict[str, int] = {}            # its latest counters
        self.commands: list[tuple[int, float, float, str, str | None]] = []
        self.command_gaps = 0                         # records lost (seq gaps)
        self._seq = 0
        self.cmd_vel: list[tuple[float, float]] = []
        progress = PROGRESS_TOPIC.replace("~", "snn4_inference")
        command = COMMAND_RECORD_TOPIC.replace("~", "gesture_controller")
        self.topics = (GESTURE_TOPIC, progress, command, CMD_VEL_TOPIC)
        self.create_subscription(Classification, GESTURE_TOPIC, self._on_cls, RESULT_QOS)
        self.create_subscription(DiagnosticArray, progress, self._on_progress, RECORD_QOS)
        self.create_subscription(DiagnosticArray, command, self._on_command, RECORD_QOS)
        self.create_subscription(twist_type(stamped), CMD_VEL_TOPIC, self._on_cmd_vel,
                                 RECORD_QOS)

    def _on_cls(self, msg) -> None:
        t = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        probs = np.zeros(len(self.classes), np.float32)
        for r in msg.results:
            if r.class_id in self.classes:
                probs[self.classes.index(r.class_id)] = r.score
        top = int(probs.argmax())
        e2e = time.perf_counter() - self.sent[t] if t in self.sent else None
        with self.lock:
            self.decisions.append((t, Decision(probs, top, float(probs[top]), None, None), e2e))

    def _on_progress(self, msg) -> None:
        v = record_values(msg)
        first = int(v["first_decision"])
        with self.lock:
            for i, syn in enumerate(x for x in v["synops"].split(";") if x):
                self.synops[first + i] = float(syn)
            self.handled = max(self.handled, int(v["handled"]))
            self.expected = max(self.expected, int(v["decisions"]))
            self.counters = {k: int(x) for k, x in v.items() if x.lstrip("-").isdigit()}

    def _on_command(self, msg) -> None:
        v = record_values(msg)
        t = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        seq = int(v["seq"])
        with self.lock:
            self.command_gaps += max(0, seq - self._seq - 1)
            self._seq = seq
            self.commands.append((t, float(v["linear"]), float(v["angular"]), v["state"],
                                  v["action"] or None))

    def _on_cmd_vel(self, msg) -> None:
        tw = twist_of(msg)                         # TwistStamped or Twist
        with self.lock:
            self.cmd_vel.append((tw.linear.x, tw.angular.z))

    def fill(self, rec: TraceRecorder, trace: ReplayTrace) -> None:
        """The recorded topics into the trace (after the graph has settled)."""
        with self.lock:
            for k, (t, d, e2e) in enumerate(self.decisions):
                rec.decision(t, d, self.synops.get(k, float("nan")))
                if e2e is not None:
                    rec.stages["end_to_end"].append(e2e)
            for c in self.commands:
                rec.command(*c)
            missing = sum(k not in self.synops for k in range(len(self.decisions)))
            if missing:
                trace.log.errors.append(f"{missing} decisions without their synaptic operations "
                                    "(progress records lost)")
            if self.command_gaps:
                trace.log.errors.append(f"{self.command_gaps} command records lost")
            # the non-zero commands must agree one for one (the zeros are left out: the two
            # subscriptions may match the controller at different moments before the first
            # packet, when every command is zero)
            sent = [(c[1], c[2]) for c in self.commands if c[1] or c[2]]
            if not self.command_gaps and sent != [c for c in self.cmd_vel if c[0] or c[1]]:
                trace.log.errors.append("cmd_vel and the controller's command records disagree")

    def settled(self, published: int) -> bool:
        """Every packet handled, every decision and command record in."""
        with self.lock:
            moving = sum(1 for c in self.commands if c[1] or c[2])
            return (self.handled >= published and len(self.decisions) >= self.expected
                    and len(self.synops) >= self.expected
                    and sum(1 for c in self.cmd_vel if c[0] or c[1]) >= moving)


def replay_via_ros(path: str | Path, model: str, opts: ReplayOptions | None = None,
                   window: int = 16, progress=None) -> ReplayTrace:
    from event_camera_msgs.msg import EventPacket
    from rosgraph_msgs.msg import Clock

    from .controller_node import ControllerNode
    from .inference_node import InferenceNode

    opts = opts or ReplayOptions()
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    sim = [Parameter("use_sim_time", value=True)]
    inf = InferenceNode(context=ctx, namespace=REPLAY_NS, parameter_overrides=sim + [
        Parameter("model", value=model), Parameter("device", value=opts.device),
        Parameter("queue_size", value=max(4 * window, 64)),
        Parameter("deadline_s", value=0.0)])          # lossless: every bin decided
    # explicit settings, else the controller the model card was validated with
    ctrl_params = {k: v for k, v in (opts.controller or inf.card.get("controller") or {}).items()
                   if k in ("min_confidence", "deadman_s", "hold_s", "max_linear",
                            "max_angular", "debounce", "agree_window")}
    ctrl = ControllerNode(context=ctx, namespace=REPLAY_NS, parameter_overrides=sim + [
        Parameter(k, value=float(v) if k not in ("debounce", "agree_window") else int(v))
        for k, v in ctrl_params.items()] + [Parameter("rate_hz", value=float(opts.tick_hz)),
                                            # offline: nothing moves; the replay's clock rules
                                            Parameter("steady_deadman_s", value=1e6)])
    classes = list(inf.net.cfg.classes)
    trace = ReplayTrace(str(path), classes, mode="via-ros", model=model_facts(inf.net, inf.card))
    rec = TraceRecorder(trace)
    rec.stages["end_to_end"] = []
    sent: dict[int, float] = {}
    recorder = _Recorder(classes, sent, ctrl.stamped, context=ctx, namespace=REPLAY_NS)
    player = Node("snn4_replay_player", context=ctx, namespace=REPLAY_NS)
    pub = player.create_publisher(EventPacket, EVENTS_TOPIC, EVENTS_PUB_QOS)
    clock = player.create_publisher(Clock, "/clock", 10)
    ex = SingleThreadedExecutor(context=ctx)
    nodes = [inf, ctrl, recorder, player]
    for n in nodes:
        ex.add_node(n)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    try:
        # the graph is connected: the inference node hears the player, the recorder hears
        # every topic it scores (the records are published only while someone listens)
        _wait(lambda: pub.get_subscription_count() > 0
              and all(recorder.count_publishers(t) > 0 for t in recorder.topics), 10.0,
              "the inference node and the controller")
        published = 0
        counter = PacketDecoder(strict=False)
        t_wall0 = time.perf_counter()
        pacer = Pacer(opts.rate)
        for stamp, pkt in iter_messages(path, opts.topic, opts.strict, opts.packet_us, trace.log):
            # at most `window` packets in flight: the node's own record of packets handled
            _wait(lambda: published - recorder.handled < window, 30.0, "the inference node",
                  period=0.0002)
            pacer.pace(stamp)
            c = Clock()
            c.clock.sec, c.clock.nanosec = stamp // 1_000_000_000, stamp % 1_000_000_000
            clock.publish(c)
            pkt.stamp_ns = stamp
            sent[stamp] = time.perf_counter()
            pub.publish(packet_to_msg(pkt))
            published += 1
            try:                          # the player's own count, for the event-rate plot
                rec.packet(stamp, len(counter.decode(pkt).events))
            except Exception:
                rec.packet(stamp, 0)
            if progress is not None and published % 50 == 0:
                progress(50)
        _wait(lambda: recorder.settled(published), 30.0, "the inference node")
        if progress is not None:
            progress(published % 50)
        trace.wall_s = time.perf_counter() - t_wall0
        with recorder.lock:
            counters = dict(recorder.counters)
        trace.decode = {k: counters.get(k, 0) for k in DecodeStats().as_dict()
                        if k not in ("last_error", "skipped_by_cause")}
        trace.events = counters.get("events", 0)
        trace.geometry_errors = counters.get("geometry_errors", 0)
        trace.time_jumps = counters.get("time_jumps", 0)
        if counters.get("dropped"):
            trace.log.errors.append(f"{counters['dropped']} packets dropped by the inference node")
        recorder.fill(rec, trace)
    finally:
        ex.shutdown(timeout_sec=1.0)
        for n in nodes:
            n.destroy_node()
        rclpy.shutdown(context=ctx)
        spinner.join(timeout=2.0)
    return rec.finish()


def _wait(cond, timeout: float, what: str, period: float = 0.01) -> None:
    t_end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > t_end:
            raise TimeoutError(f"replay via ROS: no progress from {what} in {timeout:.0f} s")
        time.sleep(period)

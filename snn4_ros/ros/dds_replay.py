"""``snn4 replay --via-ros``: a recording through the real nodes over real DDS topics.

A player node publishes the recording's EventPackets on ``/event_camera/events`` and its
clock on ``/clock``; the real ``snn4_inference`` and ``gesture_controller`` nodes run with
``use_sim_time`` (the controller's deadman, debounce and hold then follow the recording's
clock, as with ``ros2 bag play --clock``); a recorder subscribes to ``gesture``,
``tracks`` and ``cmd_vel`` (in the namespace /snn4_replay). The player keeps at most ``window`` packets in flight
(it watches the inference node's queue), so nothing is dropped at any replay speed and
the decisions equal the in-process replay's. The result is the same ``ReplayTrace``, with
the publish -> Classification time (``end_to_end``, transport included) as its latency
stage; tracks and synops are not carried by the topics and stay out of this mode's trace.
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
from ..events.stream import Pacer
from ..eval.inprocess import ReplayOptions, ReplayTrace, TraceRecorder, model_facts
from ..events.messages import iter_messages
from ..runtime.pipeline import Decision
from .common import (CMD_VEL_TOPIC, EVENTS_PUB_QOS, EVENTS_TOPIC, GESTURE_TOPIC, RESULT_QOS,
                     packet_to_msg, twist_of, twist_type)

# The replay's nodes live in their own namespace: its commands (on /snn4_replay/cmd_vel) are
# recorded for the report and can never reach a robot's /cmd_vel or a running pipeline.
REPLAY_NS = "snn4_replay"


class _Recorder(Node):
    def __init__(self, rec: TraceRecorder, classes: list[str], sent: dict,
                 stamped: bool = True, **kw):
        super().__init__("snn4_replay_recorder", **kw)
        from vision_msgs.msg import Classification

        self.rec, self.classes, self.sent = rec, classes, sent
        self.lock = threading.Lock()
        self.decisions = 0
        self.sim_ns = 0
        self.create_subscription(Classification, GESTURE_TOPIC, self._on_cls, RESULT_QOS)
        self.create_subscription(twist_type(stamped), CMD_VEL_TOPIC, self._on_cmd, 100)

    def _on_cls(self, msg) -> None:
        t = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        probs = np.zeros(len(self.classes), np.float32)
        for r in msg.results:
            if r.class_id in self.classes:
                probs[self.classes.index(r.class_id)] = r.score
        top = int(probs.argmax())
        with self.lock:
            self.rec.decision(t, Decision(probs, top, float(probs[top]), None, None))
            if t in self.sent:
                self.rec.stages["end_to_end"].append(time.perf_counter() - self.sent[t])
            self.decisions += 1

    def _on_cmd(self, msg) -> None:
        tw = twist_of(msg)                         # TwistStamped or Twist
        with self.lock:
            self.rec.command(self.sim_ns, tw.linear.x, tw.angular.z,
                             "nonzero" if tw.linear.x or tw.angular.z else "zero", None)


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
    recorder = _Recorder(rec, classes, sent, ctrl.stamped, context=ctx, namespace=REPLAY_NS)
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
        _wait(lambda: pub.get_subscription_count() > 0
              and recorder.count_publishers(GESTURE_TOPIC) > 0, 10.0, "the inference node")
        published = 0
        counter = PacketDecoder(strict=False)
        t_wall0 = time.perf_counter()
        pacer = Pacer(opts.rate)
        for stamp, pkt in iter_messages(path, opts.topic, opts.strict, opts.packet_us, trace):
            _wait(lambda: published - inf.processed < window, 30.0, "the inference node",
                  period=0.0002)
            pacer.pace(stamp)
            c = Clock()
            c.clock.sec, c.clock.nanosec = stamp // 1_000_000_000, stamp % 1_000_000_000
            clock.publish(c)
            recorder.sim_ns = stamp
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
        _wait(lambda: inf.processed >= published, 30.0, "the inference node")
        _wait(lambda: recorder.decisions >= inf.bins, 10.0, "the last decisions")
        time.sleep(0.2)
        if progress is not None:
            progress(published % 50)
        trace.wall_s = time.perf_counter() - t_wall0
        st = inf.decoder.stats
        trace.decode, trace.events = st.as_dict(), int(st.events)
        trace.geometry_errors, trace.time_jumps = inf.geometry_errors, inf.time_jumps
        if inf.dropped:
            trace.errors.append(f"{inf.dropped} packets dropped by the inference node")
    finally:
        ex.shutdown(timeout_sec=1.0)
        for n in nodes:
            n.destroy_node()
        rclpy.shutdown(context=ctx)
        spinner.join(timeout=2.0)
    with recorder.lock:
        return rec.finish()


def _wait(cond, timeout: float, what: str, period: float = 0.01) -> None:
    t_end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > t_end:
            raise TimeoutError(f"replay via ROS: no progress from {what} in {timeout:.0f} s")
        time.sleep(period)

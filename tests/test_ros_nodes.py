"""Nodes with real rclpy and DDS: the real evt3 bag into inference, bad packets, safety."""

import time

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor

from snn4_ros.events import Packet, PacketEncoder, make_events
from snn4_ros.events.bags import iter_bag
from snn4_ros.ros.common import EVENTS_PUB_QOS, EVENTS_TOPIC, GESTURE_TOPIC, packet_to_msg


@pytest.fixture
def ros():
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    yield ctx, ex
    for n in list(ex.get_nodes()):
        ex.remove_node(n)
        n.destroy_node()               # the inference node also stops its worker thread
    ex.shutdown()
    rclpy.shutdown(context=ctx)


def spin_until(ex, cond, timeout=20.0):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end and not cond():
        ex.spin_once(timeout_sec=0.02)
    return cond()


def _publisher(ctx, ex):
    from event_camera_msgs.msg import EventPacket
    from vision_msgs.msg import Classification

    node = rclpy.create_node("test_io", context=ctx)
    pub = node.create_publisher(EventPacket, EVENTS_TOPIC, EVENTS_PUB_QOS)
    got = []
    node.create_subscription(Classification, GESTURE_TOPIC, got.append, 100)
    ex.add_node(node)
    return node, pub, got


def test_real_evt3_bag_through_the_inference_node(ros, shared_data):
    from snn4_ros.models.zoo import REAL_MODEL
    from snn4_ros.ros.inference_node import InferenceNode

    from rclpy.parameter import Parameter

    ctx, ex = ros
    # the whole bag arrives as one burst: processed losslessly (the default sheds late data)
    inf = InferenceNode(context=ctx, parameter_overrides=[Parameter("deadline_s", value=0.0)])
    ex.add_node(inf)
    node, pub, got = _publisher(ctx, ex)
    spin_until(ex, lambda: pub.get_subscription_count() > 0, 5)
    packets = [m.packet for m in iter_bag(shared_data / "rosbag2/evt3_trigger")]
    for p in packets:
        pub.publish(packet_to_msg(p))
        ex.spin_once(timeout_sec=0.001)
    assert spin_until(ex, lambda: inf.decoder.stats.packets == len(packets) and len(got) >= 15)
    assert inf.decoder.stats.events == 82_469 and inf.stream_geometry == (1280, 720)
    assert inf.dropped == 0
    assert not any(inf.rejections().values()), inf.rejections()   # a clean bag: none
    msg = got[-1]
    # a camera's bag: the node's default is the real-camera model (right-hand wave or none)
    assert inf.model_name == REAL_MODEL
    assert {r.class_id for r in msg.results} == {"right_hand_wave", "none"}
    assert abs(sum(r.score for r in msg.results) - 1) < 1e-3
    assert msg.header.stamp.sec > 0                # stamped from the packets' headers


def test_bad_packets_are_counted_and_the_node_keeps_running(ros):
    from snn4_ros.ros.inference_node import InferenceNode

    ctx, ex = ros
    inf = InferenceNode(context=ctx)
    ex.add_node(inf)
    node, pub, got = _publisher(ctx, ex)
    spin_until(ex, lambda: pub.get_subscription_count() > 0, 5)
    enc = PacketEncoder("mono", 128, 128)
    rng = np.random.default_rng(0)

    def events(t0_ms, n=300):
        t = np.sort(rng.integers(0, 20_000, n)) * 1000 + t0_ms * 1_000_000
        return make_events(t, rng.integers(0, 128, n), rng.integers(0, 128, n),
                           rng.integers(0, 2, n))
    good = [enc.encode(events(20 * k)) for k in range(10)]
    bad_enc = Packet("evt9", 128, 128, b"\0" * 16, seq=100)
    trunc = enc.encode(events(300))
    trunc.events = trunc.events[:-3]
    wrong_geom = PacketEncoder("mono", 64, 64).encode(
        make_events([1], [1], [1], [1]))
    back_in_time = enc.encode(events(0))
    for p in good[:5] + [bad_enc, trunc, wrong_geom, back_in_time] + good[5:]:
        pub.publish(packet_to_msg(p))
        ex.spin_once(timeout_sec=0.001)
    st = inf.decoder.stats
    assert spin_until(ex, lambda: st.packets + st.skipped_packets + inf.geometry_errors >= 14)
    assert st.skipped_packets == 1                     # the unknown encoding
    assert st.truncated_bytes == 5                     # 3 bytes short of a mono word
    assert inf.geometry_errors == 1
    assert inf.time_jumps + st.time_regressions >= 1
    assert spin_until(ex, lambda: len(got) > 0)        # still classifying


def test_controller_estop_and_deadman_over_ros(ros):
    from geometry_msgs.msg import TwistStamped
    from rclpy.parameter import Parameter
    from std_srvs.srv import SetBool
    from vision_msgs.msg import Classification, ObjectHypothesis

    from snn4_ros.ros.controller_node import ControllerNode

    ctx, ex = ros
    ctrl = ControllerNode(context=ctx, parameter_overrides=[
        Parameter("deadman_s", value=0.3), Parameter("rate_hz", value=50.0)])
    ex.add_node(ctrl)
    node = rclpy.create_node("test_ctl", context=ctx)
    pub = node.create_publisher(Classification, GESTURE_TOPIC, 10)
    cmds = []
    node.create_subscription(TwistStamped, "cmd_vel", lambda m: cmds.append(
        (m.twist.linear.x, m.twist.angular.z)), 100)
    cli = node.create_client(SetBool, "/gesture_controller/estop")
    ex.add_node(node)

    def decide(cls="arm_roll", score=0.99):
        m = Classification()
        m.results = [ObjectHypothesis(class_id=cls, score=score)]
        pub.publish(m)

    def drive(seconds, **kw):
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            decide(**kw)
            spin_until(ex, lambda: False, 0.04)

    spin_until(ex, lambda: pub.get_subscription_count() > 0, 5)
    drive(1.0)
    assert cmds[-1][0] > 0.1                             # confident, debounced: moving
    spin_until(ex, lambda: False, 0.45)                  # perception stops: deadman
    assert cmds[-1] == (0.0, 0.0)
    drive(0.5, score=0.3)                                # low confidence: no motion
    assert all(c == (0.0, 0.0) for c in cmds[-10:])
    drive(0.2, score=float("nan"))                       # NaN scores: zero
    assert cmds[-1] == (0.0, 0.0) and ctrl.ctrl.fault
    assert cli.wait_for_service(timeout_sec=5)
    fut = cli.call_async(SetBool.Request(data=True))
    spin_until(ex, fut.done, 5)
    drive(0.6)                                           # e-stop latched despite decisions
    assert all(c == (0.0, 0.0) for c in cmds[-10:]) and fut.result().success
    fut = cli.call_async(SetBool.Request(data=False))
    spin_until(ex, fut.done, 5)
    drive(1.0)
    assert cmds[-1][0] > 0.1
    ex.remove_node(ctrl)                                 # shutting down: timers stop,
    ctrl.stop_robot()                                    # then a final zero goes out
    spin_until(ex, lambda: False, 0.2)
    assert cmds[-1] == (0.0, 0.0)
    ctrl.destroy_node()


def test_cross_process_source_to_inference(ros):
    """event_source as its own process (its console script), inference here: real DDS."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from snn4_ros.ros.inference_node import InferenceNode

    ctx, ex = ros
    inf = InferenceNode(context=ctx)
    ex.add_node(inf)
    exe = Path(sys.executable).parent / "event_source"
    proc = subprocess.Popen([str(exe), "--ros-args", "-p", "source:=synthetic:seed=3"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert spin_until(ex, lambda: inf.bins >= 25, 40), proc.poll()
        assert inf.decoder.stats.seq_gaps <= inf.decoder.stats.packets // 20
        assert inf.last is not None and inf.last[1] > 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_burst_beyond_the_queue_drops_oldest_and_counts(ros):
    from rclpy.parameter import Parameter

    from snn4_ros.ros.inference_node import InferenceNode

    ctx, ex = ros
    inf = InferenceNode(context=ctx, parameter_overrides=[Parameter("queue_size", value=4)])
    ex.add_node(inf)
    node, pub, got = _publisher(ctx, ex)
    spin_until(ex, lambda: pub.get_subscription_count() > 0, 5)
    enc = PacketEncoder("mono", 128, 128)
    rng = np.random.default_rng(1)
    with inf.held():                       # hold the worker: the burst meets a full queue
        for k in range(40):
            t = np.sort(rng.integers(0, 2000, 2000)) * 1000 + k * 2_000_000
            ev = make_events(t, rng.integers(0, 128, 2000), rng.integers(0, 128, 2000),
                             rng.integers(0, 2, 2000))
            pub.publish(packet_to_msg(enc.encode(ev)))
        spin_until(ex, lambda: inf.backlog.stats.queue_full_packets + len(inf.backlog) >= 40,
                   10)
    assert inf.dropped >= 36 and len(inf.backlog) <= 4


@pytest.mark.parametrize("ingest", ["direct", "executor"])
def test_a_stale_backlog_is_shed_counted_and_reported(ros, ingest):
    """200 packets stamped over the last 400 ms arrive while the worker is held: the node
    answers with the newest 40 ms (one bin) and counts the rest as late, WARN in
    /diagnostics with the shed fraction -- whether the worker takes the packets from DDS
    itself (the default) or an executor callback hands them over one by one."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.parameter import Parameter

    from snn4_ros.ros.inference_node import InferenceNode

    ctx, ex = ros
    inf = InferenceNode(context=ctx, parameter_overrides=[Parameter("ingest", value=ingest)])
    assert (inf.sub is None) == (ingest == "direct")
    ex.add_node(inf)
    node, pub, got = _publisher(ctx, ex)
    diags = []
    node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 50)
    spin_until(ex, lambda: pub.get_subscription_count() > 0, 5)
    enc = PacketEncoder("evt3", 128, 128)
    rng = np.random.default_rng(2)
    now = node.get_clock().now().nanoseconds
    with inf.held():                       # hold the worker while the backlog builds
        for k in range(200):
            t = np.sort(rng.integers(0, 2000, 500)) * 1000 + k * 2_000_000
            ev = make_events(t, rng.integers(0, 128, 500), rng.integers(0, 128, 500),
                             rng.integers(0, 2, 500))
            pub.publish(packet_to_msg(enc.encode(ev, stamp_ns=now - (199 - k) * 2_000_000)))
        assert spin_until(ex, lambda: len(inf.backlog) >= 200, 10), len(inf.backlog)
    assert spin_until(ex, lambda: inf.processed >= 200, 20)
    st = inf.shed
    # born from the header stamps: all but the newest ~40 ms are late
    assert 170 <= st.late_packets <= 185 and st.late_events == st.late_packets * 500
    assert st.skipped_bins >= 6 and inf.decoder.stats.time_regressions == 0
    assert inf.dropped == st.late_packets
    assert spin_until(ex, lambda: any(
        "shedding" in s.message for d in diags for s in d.status
        if s.name.endswith("inference")), 5)
    warn = next(s for d in diags for s in d.status if "shedding" in s.message)
    assert warn.level == b"\x01"
    vals = {kv.key: kv.value for kv in warn.values}
    assert float(vals["shed_fraction"]) == pytest.approx(st.late_events / st.events, abs=1e-3)


def test_debug_images_only_for_subscribers(ros):
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from snn4_ros.ros.inference_node import InferenceNode

    ctx, ex = ros
    # lossless: the 30 packets arrive in a burst; with the default deadline a busy worker
    # may take them as one batch and decide only its newest bin (by design, not the point)
    inf = InferenceNode(context=ctx, parameter_overrides=[Parameter("deadline_s", value=0.0)])
    ex.add_node(inf)
    node, pub, got = _publisher(ctx, ex)
    images = []
    node.create_subscription(Image, "debug/attention", images.append, 10)
    spin_until(ex, lambda: pub.get_subscription_count() > 0
               and inf.pub_attn.get_subscription_count() > 0, 5)
    assert inf.pub_frame.get_subscription_count() == 0      # nobody watches the frames
    enc = PacketEncoder("mono", 128, 128)
    rng = np.random.default_rng(2)
    for k in range(30):
        t = np.sort(rng.integers(0, 10_000, 500)) * 1000 + k * 10_000_000
        pub.publish(packet_to_msg(enc.encode(make_events(
            t, rng.integers(0, 128, 500), rng.integers(0, 128, 500), rng.integers(0, 2, 500)))))
        ex.spin_once(timeout_sec=0.001)
    assert spin_until(ex, lambda: len(images) >= 3)
    assert images[0].encoding == "mono8" and images[0].width == 8 and images[0].height == 8


def test_diagnostics_report_faults_and_staleness(ros):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from vision_msgs.msg import Classification, ObjectHypothesis

    from snn4_ros.ros.controller_node import ControllerNode
    from snn4_ros.ros.inference_node import InferenceNode

    ctx, ex = ros
    ctrl = ControllerNode(context=ctx)
    inf = InferenceNode(context=ctx)
    ex.add_node(ctrl)
    ex.add_node(inf)
    node = rclpy.create_node("test_diag", context=ctx)
    pub = node.create_publisher(Classification, GESTURE_TOPIC, 10)
    seen = {}

    def on_diag(arr):
        for st in arr.status:
            seen[st.name] = (st.level, st.message, {kv.key: kv.value for kv in st.values})
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 50)
    ex.add_node(node)
    spin_until(ex, lambda: pub.get_subscription_count() > 0, 5)
    m = Classification()
    m.results = [ObjectHypothesis(class_id="arm_roll", score=float("nan"))]
    pub.publish(m)
    key_c = "gesture_controller: controller"
    key_i = "snn4_inference: inference"
    assert spin_until(ex, lambda: key_c in seen and seen[key_c][0] == DiagnosticStatus.ERROR
                      and key_i in seen, 5)
    assert "invalid scores" in seen[key_c][1]
    assert seen[key_i][0] == DiagnosticStatus.STALE            # no event packets yet
    assert seen[key_i][2]["model"] == "hybridnet-s" and "latency_p99_ms" in seen[key_i][2]


def test_a_stuck_worker_is_an_error_in_diagnostics_and_clears(ros):
    """The worker's liveness is in /diagnostics: a packet that keeps the worker busy past
    ``worker_stall_s`` -- a hung library call, made here by blocking the pipeline's batch
    step (the one stand-in in this test) -- is ERROR 'stuck' while the thread is alive and
    busy, not STALE 'no event packets'; the level clears once the call returns."""
    import threading

    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from rclpy.parameter import Parameter

    from snn4_ros.ros.inference_node import InferenceNode

    ctx, ex = ros
    inf = InferenceNode(context=ctx, parameter_overrides=[Parameter("worker_stall_s", value=0.3)])
    ex.add_node(inf)
    release = threading.Event()
    real = inf.pipeline.process_batch

    def hung(*a, **kw):
        release.wait(30)
        return real(*a, **kw)

    inf.pipeline.process_batch = hung
    node, pub, got = _publisher(ctx, ex)
    seen = []
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda arr: seen.extend(
        (st.level, st.message, {kv.key: kv.value for kv in st.values}) for st in arr.status
        if st.name.startswith("snn4_inference")), 50)
    try:
        assert spin_until(ex, lambda: pub.get_subscription_count() > 0, 5)
        enc = PacketEncoder("mono", 128, 128)
        rng = np.random.default_rng(4)
        for k in range(5):
            t = np.sort(rng.integers(0, 10_000, 300)) * 1000 + k * 10_000_000
            pub.publish(packet_to_msg(enc.encode(make_events(
                t, rng.integers(0, 128, 300), rng.integers(0, 128, 300),
                rng.integers(0, 2, 300)), stamp_ns=time.time_ns())))
            ex.spin_once(timeout_sec=0.01)
        assert spin_until(ex, lambda: any(lv == DiagnosticStatus.ERROR and "stuck" in m
                                          for lv, m, _ in seen), 15), seen[-3:]
        stuck = [v for lv, m, v in seen if "stuck" in m][-1]
        assert stuck["worker_alive"] == "True" and float(stuck["worker_busy_s"]) > 0.3
    finally:
        release.set()
    n = len(seen)
    assert spin_until(ex, lambda: any(lv != DiagnosticStatus.ERROR for lv, _, _ in seen[n:]),
                      10), seen[-3:]
    assert inf.worker_state()[0] and inf.errors == 0


def test_controller_process_publishes_zero_on_sigterm(ros):
    """A moving robot, then SIGTERM to the controller's own process (docker stop, systemd):
    the last command on cmd_vel is a zero, published on the way out."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from geometry_msgs.msg import TwistStamped
    from vision_msgs.msg import Classification, ObjectHypothesis

    ctx, ex = ros
    node = rclpy.create_node("sigterm_test", context=ctx)
    cmds = []
    node.create_subscription(TwistStamped, "cmd_vel", lambda m: cmds.append(
        (time.monotonic(), m.twist.linear.x, m.twist.angular.z)), 100)
    pub = node.create_publisher(Classification, GESTURE_TOPIC, 10)
    ex.add_node(node)
    exe = Path(sys.executable).parent / "gesture_controller"
    proc = subprocess.Popen([str(exe)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert spin_until(ex, lambda: pub.get_subscription_count() > 0 and cmds, 30)
        msg = Classification()
        msg.results = [ObjectHypothesis(class_id="left_hand_wave", score=0.97)]
        t_end = time.monotonic() + 10
        while not (cmds and cmds[-1][2] != 0.0):          # turning left
            pub.publish(msg)
            spin_until(ex, lambda: False, 0.04)
            assert time.monotonic() < t_end, "the robot never moved"
        for _ in range(5):
            pub.publish(msg)
            spin_until(ex, lambda: False, 0.04)
        assert cmds[-1][2] != 0.0
        t_kill = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        spin_until(ex, lambda: False, 0.5)
        after = [c for c in cmds if c[0] > t_kill]
        assert after and after[-1][1:] == (0.0, 0.0)
        assert proc.returncode in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()

"""A hostile publisher on the events topic, over real DDS, while a valid stream runs.

Random encodings, lying width/height/seq/time_base, one packet spanning an hour, random
bytes as evt3 and libcaer, truncated, oversized (24 MB) and empty messages, and a burst of
300 -- interleaved with a valid synthetic stream. The inference node keeps classifying,
counts every rejection by cause in /diagnostics, its memory stays bounded and nothing
lasting is left behind (counters stop rising when the attack stops).
"""

import threading
import time

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from snn4_ros.events import PacketEncoder
from snn4_ros.events.sources import iter_source
from snn4_ros.ros.common import EVENTS_PUB_QOS, EVENTS_TOPIC, GESTURE_TOPIC, packet_to_msg
from snn4_ros.ros.fault_injection import HOSTILE_KINDS, hostile_packet, record_result, rss_mb


def _valid_packets(seconds: float, packet_ms: int = 10):
    enc = PacketEncoder("evt3", 128, 128)
    out = []
    for chunk in iter_source("synthetic:seed=5", chunk_us=packet_ms * 1000, duration_s=None):
        if len(chunk.events):
            out.append(enc.encode(chunk.events))
        if len(out) * packet_ms >= seconds * 1000:
            return out
    return out


@pytest.mark.timeout(300)
def test_hostile_publisher_cannot_stop_the_classification():
    from diagnostic_msgs.msg import DiagnosticArray
    from event_camera_msgs.msg import EventPacket
    from vision_msgs.msg import Classification

    from snn4_ros.ros.inference_node import InferenceNode

    valid = _valid_packets(30.0)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    inf = InferenceNode(context=ctx, parameter_overrides=[
        Parameter("max_packet_bytes", value=4 << 20)])
    probe = rclpy.create_node("hostile_probe", context=ctx)
    good_pub = probe.create_publisher(EventPacket, EVENTS_TOPIC, EVENTS_PUB_QOS)
    bad_pub = probe.create_publisher(EventPacket, EVENTS_TOPIC, EVENTS_PUB_QOS)
    decisions, diags = [], []
    probe.create_subscription(Classification, GESTURE_TOPIC,
                              lambda m: decisions.append(time.monotonic()), 100)
    probe.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diags.extend(
        (time.monotonic(), {kv.key: kv.value for kv in s.values}, s.level[0], s.message)
        for s in m.status if "inference" in s.name), 50)
    ex.add_node(inf)
    ex.add_node(probe)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    sent = {k: 0 for k in HOSTILE_KINDS}
    stop = threading.Event()
    try:
        t_end = time.monotonic() + 10
        while good_pub.get_subscription_count() == 0 and time.monotonic() < t_end:
            time.sleep(0.05)

        def play():                    # the valid camera, paced at real time
            t0 = time.monotonic()
            for i, p in enumerate(valid):
                if stop.is_set():
                    return
                time.sleep(max(0.0, t0 + i * 0.01 - time.monotonic()))
                p.stamp_ns = time.time_ns()
                good_pub.publish(packet_to_msg(p))

        player = threading.Thread(target=play, daemon=True)
        player.start()
        t_end = time.monotonic() + 20  # warm: the stream classifies, memory settles
        while len(decisions) < 5 and time.monotonic() < t_end:
            time.sleep(0.1)
        t_base = time.monotonic()      # the decision rate without an attack, on this machine
        time.sleep(3.0)
        rate0 = sum(1 for t in decisions if t > t_base) / 3.0
        # the attack is prepared before memory is measured: its 4 x 24 MB payloads are the
        # attacker's memory, not the node's
        rng = np.random.default_rng(17)
        plan = [HOSTILE_KINDS[k % len(HOSTILE_KINDS)] for k in range(150)]
        plan = [k if k != "oversized" or i < 4 * len(HOSTILE_KINDS) else "empty"
                for i, k in enumerate(plan)]
        attack = [(k, hostile_packet(k, rng)) for k in plan]
        burst = [(k, hostile_packet(k, rng)) for k in [HOSTILE_KINDS[j % 6] for j in range(300)]]
        rss0, n0 = rss_mb(), len(decisions)
        t_attack = time.monotonic()
        for i, (kind, msg) in enumerate(attack):
            bad_pub.publish(msg)
            sent[kind] += 1
            if i == 60:                # a burst: 300 junk packets as fast as possible
                for kind, msg in burst:
                    bad_pub.publish(msg)
                    sent[kind] += 1
            time.sleep(max(0.0, t_attack + (i + 1) * 0.03 - time.monotonic()))
        t_stop = time.monotonic()
        during = sum(1 for t in decisions if t_attack <= t <= t_stop)
        time.sleep(3.0)                # after the attack: a clean stream again
        rss1 = rss_mb()
        after = sum(1 for t in decisions if t > t_stop + 0.5) / 2.5
        during = during / (t_stop - t_attack)
        stop.set()
        player.join(timeout=5)
    finally:
        stop.set()
        ex.shutdown(timeout_sec=1.0)
        inf.destroy_node()
        probe.destroy_node()
        rclpy.shutdown(context=ctx)
        spinner.join(timeout=5)
    last = diags[-1][1] if diags else {}
    print({"rate_before": rate0, "rate_during": during, "rate_after": after,
           "sent": sent, "diag": {k: v for k, v in last.items() if "latency_ms_recent" != k},
           "rss": (rss0, rss1)})
    assert n0 >= 5 and rate0 > 0, "the valid stream never classified before the attack"
    # kept classifying the valid stream during and after the attack (decisions per second
    # against the same machine's rate without an attack: a burst drops some packets)
    assert during >= 0.5 * rate0, (rate0, during, sent)
    assert after >= 0.6 * rate0, (rate0, after)
    # every rejection counted by cause, in /diagnostics
    rej = {k[len("rejected."):]: int(v) for k, v in last.items() if k.startswith("rejected.")}
    assert rej["oversized"] == sent["oversized"] == 4
    # the subscription is best effort (as the camera drivers publish): in the 300-packet
    # burst DDS itself may drop some before the node sees them, so the node can only count
    # what reached it -- at least 90 % of what was sent, every one of those by cause
    def reached(n: int) -> int:
        return int(0.9 * n) - 2

    assert rej["decode_unknown_encoding"] >= reached(sent["random_encoding"] + sent["empty"])
    assert rej["decode_invalid_geometry"] >= reached(sent["zero_geometry"])
    assert rej["time_span"] >= 1 and rej["geometry"] >= 1 and rej["time_jump"] >= 1
    assert rej["truncated_bytes"] >= 3 * (sent["truncated"] - 2)
    assert int(last["rejections_total"]) >= sum(sent.values()) // 2
    assert last["worker_alive"] == "True" and int(last["seq_resets"]) >= 1
    assert int(last["seq_gaps"]) < 100_000 * 5          # never 18e18 from one lying seq
    # bounded memory: 4 x 24 MB payloads and a 300-packet burst leave no lasting growth
    assert rss1 - rss0 < 250, (rss0, rss1)
    # nothing lasting: no rejection counted once the attack stopped
    late = [d for d in diags if d[0] > t_stop + 1.5]
    assert late, "no diagnostics after the attack"
    assert int(late[-1][1]["rejections_total"]) == int(last["rejections_total"])
    assert int(late[0][1]["time_regressions"]) >= int(late[-1][1]["time_regressions"]) - 2
    record_result("hostile publisher", packets_sent=sum(sent.values()), sent_by_kind=sent,
                  rejected_by_cause={k: v for k, v in rej.items() if v},
                  decisions_per_s_before=round(rate0, 2), during=round(during, 2),
                  after=round(after, 2), rss_growth_mb=round(rss1 - rss0, 1),
                  seq_gaps=int(last["seq_gaps"]), queue_full=rej["queue_full"])

"""End-to-end latency: EventPacket publication -> the resulting command on cmd_vel.

    python bench/latency.py [--seconds 6]

A publisher sends evt3 EventPackets every 2 ms (128x128 events at 1 M and 5 M events/s),
each stamped with its publication time. The inference node windows them into 40 ms bins and
classifies; the controller runs with ``stamped:=true`` and publishes TwistStamped carrying
the stamp of the packet that closed the bin, at once on each new decision. Latency = arrival
of the first command with a given stamp - that stamp. Measured with the nodes in this process
(one executor thread) and with the nodes as their own processes (real DDS between all
three). Drops are packets shed by the inference node's bounded queue. CPU is the process
CPU time of this process (in-process) or of the node processes (cross-process) per second.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _packets(rate_ev_s: float, seconds: float, seed: int = 0):
    """Pre-encoded evt3 packets of 2 ms each (encoding is not part of the measured path), one
    continuous sensor stream: the first 0.3 s are the warm-up."""
    from snn4_ros.events import PacketEncoder, make_events
    from snn4_ros.ros.common import packet_to_msg

    rng = np.random.default_rng(seed)
    n = int(rate_ev_s * 0.002)
    enc = PacketEncoder("evt3", 128, 128, "event_camera")
    msgs = []
    for k in range(int((seconds + 0.3) / 0.002)):
        t = np.sort(rng.integers(0, 2000, n)) * 1000 + k * 2_000_000
        ev = make_events(t, rng.integers(0, 128, n), rng.integers(0, 128, n),
                         rng.integers(0, 2, n))
        msgs.append(packet_to_msg(enc.encode(ev)))
    return msgs


def _drive(node, pub, msgs, sent):
    """Publish at the 2 ms cadence, stamping each packet with its publication time."""
    t0 = time.perf_counter()
    for k, m in enumerate(msgs):
        target = t0 + k * 0.002
        while time.perf_counter() < target:
            time.sleep(0.0002)
        m.header.stamp = node.get_clock().now().to_msg()
        sent.add((m.header.stamp.sec, m.header.stamp.nanosec))
        pub.publish(m)


def run(rate: float, seconds: float, cross: bool) -> dict:
    import rclpy
    from geometry_msgs.msg import TwistStamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from snn4_ros.ros.common import EVENTS_PUB_QOS, EVENTS_TOPIC

    msgs = _packets(rate, seconds)
    warm, msgs = msgs[:150], msgs[150:]
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    node = rclpy.create_node("latency_bench", context=ctx)
    from event_camera_msgs.msg import EventPacket
    pub = node.create_publisher(EventPacket, EVENTS_TOPIC, EVENTS_PUB_QOS)
    lat, seen, sent = [], set(), set()

    def on_cmd(m):
        key = (m.header.stamp.sec, m.header.stamp.nanosec)
        if key in seen or key not in sent:      # only the first command per packet stamp
            return
        seen.add(key)
        now = node.get_clock().now().nanoseconds
        lat.append((now - (key[0] * 10**9 + key[1])) / 1e6)
    node.create_subscription(TwistStamped, "cmd_vel", on_cmd, 100)
    ex.add_node(node)
    procs, inf = [], None
    if cross:
        bin_dir = Path(sys.executable).parent
        procs = [subprocess.Popen([str(bin_dir / "snn4_inference")], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.STDOUT),
                 subprocess.Popen([str(bin_dir / "gesture_controller"), "--ros-args", "-p",
                                   "stamped:=true"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.STDOUT)]
    else:
        from snn4_ros.ros.controller_node import ControllerNode
        from snn4_ros.ros.inference_node import InferenceNode
        inf = InferenceNode(context=ctx)
        ctrl = ControllerNode(context=ctx, parameter_overrides=[Parameter("stamped", value=True)])
        ex.add_node(inf)
        ex.add_node(ctrl)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    t_wait = time.monotonic() + 30
    while pub.get_subscription_count() == 0 or node.count_subscribers("cmd_vel") == 0 or \
            node.count_publishers("cmd_vel") == 0:
        if time.monotonic() > t_wait:
            raise RuntimeError("the graph did not come up")
        time.sleep(0.1)
    # warm-up (model, compiled decoders, first bins), then a clean slate
    _drive(node, pub, warm, set())
    time.sleep(1.5)
    lat.clear()
    if inf is not None:
        inf.dropped = 0
    cpu0 = _cpu(procs)
    w0 = time.monotonic()
    _drive(node, pub, msgs, sent)
    time.sleep(0.5)
    wall = time.monotonic() - w0
    cpu = (_cpu(procs) - cpu0) / wall
    drops = inf.dropped if inf is not None else None
    if cross:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
    ex.shutdown()
    for n in ([inf, ctrl] if inf is not None else []) + [node]:
        n.destroy_node()
    rclpy.shutdown(context=ctx)
    lat = np.array(lat)
    expected = int(seconds / 0.04)
    return {"p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 2) if len(lat) else None,
            "decisions": int(len(lat)), "expected_decisions": expected,
            "drops": drops, "cpu_cores": round(cpu, 2)}


def _cpu(procs) -> float:
    if not procs:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    total = 0.0
    for p in procs:
        try:
            with open(f"/proc/{p.pid}/stat") as f:
                fields = f.read().split(")")[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args()
    out = {}
    for label, rate in (("1mev", 1e6), ("5mev", 5e6)):
        for mode, cross in (("", False), ("_xproc", True)):
            r = run(rate, args.seconds, cross)
            print(f"{label}{mode:7s} {r}", flush=True)
            out[f"p50_ms_{label}{mode}"] = r["p50_ms"]
            out[f"p99_ms_{label}{mode}"] = r["p99_ms"]
            out[f"decisions_{label}{mode}"] = f"{r['decisions']}/{r['expected_decisions']}"
            out[f"cpu_cores_{label}{mode}"] = r["cpu_cores"]
            if r["drops"] is not None:
                out[f"drops_{label}"] = r["drops"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()

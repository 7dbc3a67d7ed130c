"""End-to-end latency over a rate sweep: EventPacket publication -> the command on cmd_vel.

    python bench/latency.py [--seconds 4] [--rates 0.25,1,2,5,10,20] [--modes inproc,default,xproc,starved]

A publisher sends evt3 EventPackets every 2 ms (128x128, uniform random events at 0.25 to
20 M events/s), each stamped with its publication time. The inference node windows them
into 40 ms bins and classifies; the controller runs with ``stamped:=true`` and publishes a
TwistStamped carrying the stamp of the packet that closed the bin, at once on each new
decision. Latency = arrival of the first command with a given stamp - that stamp.

Topologies: ``inproc`` -- the nodes in this process, one executor thread (the publisher
shares the interpreter too); ``default`` -- ``snn4 up``'s default (``source_process``):
inference and controller together in one process of their own, one executor, the events
arriving from another process; ``xproc`` -- inference and controller as their own processes,
real DDS between all three; ``starved`` -- as xproc, with both node processes pinned to one
CPU that a busy process pinned there competes for (about half a core for the nodes), at
1 and 5 M events/s. Every case reports p50/p99, decisions delivered of expected (one per
40 ms bin sent), what was shed by cause -- late events, capped events, queue-full packets,
skipped and coalesced bins, and packets lost on the way (sequence gaps: DDS best-effort
drops between processes) -- read from the inference node (in process) or from its
/diagnostics (across processes), and the CPU of the same processes (in process: this whole
process, publisher included). The last line printed is one JSON object, also written to
bench/results/latency.json; the keys ``p50_ms_1mev``, ``p99_ms_1mev``, ``drops_1mev``,
``p99_ms_5mev``, ``drops_5mev`` are in-process, ``*_default``, ``*_xproc`` and
``*_starved`` the others.

Packets are pre-built before each timed run (encoding is not part of the measured path): a
cycle of 256 packets (512 ms = 125 evt3 TIME_HIGH steps of 4.096 ms) is encoded once per
rate and repeated with its TIME_HIGH words shifted, one continuous sensor stream.
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
sys.path.insert(0, str(ROOT / "bench"))

from _common import Run, proc_sample  # noqa: E402

# a DDS domain of its own: on a shared machine other ROS graphs (tests, demos) on the default
# domain would publish into this bench's topics and /diagnostics (counters from another
# node, packets not ours); ROS_DOMAIN_ID set by the caller is kept
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))

PACKET_S = 0.002
BIN_S = 0.04
# warm-up streamed before each case: across processes the shed counters come from the
# last once-a-second /diagnostics, so the warm-up must outlast a cold start by a second
WARM_S = 2.5
CYCLE = 256                      # packets; 256 * 2000 us = 125 * 4096 us
HIGH_STEPS_PER_CYCLE = 125
SHED_KEYS = ("late_packets", "late_events", "capped_events", "thinned_events",
             "regressed_events",
             "queue_full_packets", "skipped_bins",
             "coalesced_bins", "seq_gaps", "time_regressions", "time_jumps", "events",
             "bins", "prewarms", "prewarms_skipped_busy")
_templates: dict = {}
# snn4 up's default topology without its source: inference and controller in one process,
# one single-threaded executor (as snn4_ros.ros.graph runs them)
_DEFAULT_TOPOLOGY = """
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
rclpy.init()
from snn4_ros.ros.controller_node import ControllerNode
from snn4_ros.ros.inference_node import InferenceNode
import json, sys
ex = SingleThreadedExecutor()
extra = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
ex.add_node(InferenceNode(parameter_overrides=[
    Parameter("model", value="hybridnet_gesture_synth")]   # synthetic input (default_model)
    + [Parameter(k, value=v) for k, v in extra.items()]))
ex.add_node(ControllerNode(parameter_overrides=[Parameter("stamped", value=True)]))
ex.spin()
"""


def _template(rate: float) -> list[bytes]:
    """evt3 payloads of one 512 ms cycle at ``rate`` events/s (cached per rate)."""
    if rate not in _templates:
        from snn4_ros.events import PacketEncoder, make_events

        rng = np.random.default_rng(0)
        n = max(int(rate * PACKET_S), 1)
        enc = PacketEncoder("evt3", 128, 128, "event_camera")
        out = []
        for k in range(CYCLE):
            t = np.sort(rng.integers(0, 2000, n)) * 1000 + k * 2_000_000
            ev = make_events(t, rng.integers(0, 128, n), rng.integers(0, 128, n),
                             rng.integers(0, 2, n))
            out.append(bytes(enc.encode(ev).payload()))
        _templates[rate] = out
    return _templates[rate]


def _messages(rate: float, n_packets: int, first: int = 0) -> list:
    """EventPacket messages ``first .. first + n_packets`` of the continuous stream."""
    from event_camera_msgs.msg import EventPacket
    import array

    tpl = _template(rate)
    msgs = []
    for k in range(first, first + n_packets):
        c, j = divmod(k, CYCLE)
        w = np.frombuffer(tpl[j], "<u2").copy()
        if c:
            hi = (w >> 12) == 8                                   # TIME_HIGH words
            w[hi] = (8 << 12) | ((w[hi] & 0xFFF) + HIGH_STEPS_PER_CYCLE * c) & 0xFFF
        m = EventPacket()
        m.header.frame_id = "event_camera"
        m.height, m.width, m.seq, m.encoding = 128, 128, k, "evt3"
        m.events = array.array("B", w.tobytes())
        msgs.append(m)
    return msgs


def _drive(node, pub, msgs, sent, switch_at: int | None = None, on_switch=None):
    """Publish at the 2 ms cadence, stamping each packet with its publication time; a
    publisher that falls behind sends at once (the stamps keep the latency honest).
    ``on_switch()``, called just before packet ``switch_at``, returns the set the stamps
    from then on go into (a warm-up and the measured run as one unbroken stream). Returns
    the late sends after the switch (all, without one)."""
    t0 = time.perf_counter()
    late = 0
    for k, m in enumerate(msgs):
        if k == switch_at:
            sent, late = on_switch(), 0
        target = t0 + k * PACKET_S
        if time.perf_counter() > target + PACKET_S:
            late += 1
        while time.perf_counter() < target:
            time.sleep(0.0002)
        m.header.stamp = node.get_clock().now().to_msg()
        if sent is not None:
            sent.add((m.header.stamp.sec, m.header.stamp.nanosec))
        pub.publish(m)
    return late


def _ros_arg(v) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


class Graph:
    """The bench's own node (publisher, cmd_vel and /diagnostics subscriber) and the nodes
    under test, in one of the three topologies."""

    def __init__(self, mode: str, inference_params: dict | None = None):
        """``inference_params``: parameters of the inference node beyond its defaults (for
        side-by-side comparisons of its options, e.g. ``bench/ingest.py``)."""
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from event_camera_msgs.msg import EventPacket
        from geometry_msgs.msg import TwistStamped
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter

        from snn4_ros.ros.common import EVENTS_PUB_QOS, EVENTS_TOPIC

        self.mode = mode
        self.ctx = rclpy.context.Context()
        rclpy.init(context=self.ctx)
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.node = rclpy.create_node("latency_bench", context=self.ctx)
        self.pub = self.node.create_publisher(EventPacket, EVENTS_TOPIC, EVENTS_PUB_QOS)
        self.lat: list[float] = []
        self.seen: set = set()
        self.sent: set = set()
        self.diag: dict = {}
        self.node.create_subscription(TwistStamped, "cmd_vel", self._on_cmd, 100)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        self.ex.add_node(self.node)
        self.procs: list[subprocess.Popen] = []
        self.inf = self.ctrl = None
        if mode == "inproc":
            from snn4_ros.ros.controller_node import ControllerNode
            from snn4_ros.ros.inference_node import InferenceNode
            self.inf = InferenceNode(context=self.ctx, parameter_overrides=[
                Parameter(k, value=v) for k, v in (inference_params or {}).items()])
            self.ctrl = ControllerNode(context=self.ctx, parameter_overrides=[
                Parameter("stamped", value=True)])
            self.ex.add_node(self.inf)
            self.ex.add_node(self.ctrl)
        else:
            bin_dir = Path(sys.executable).parent
            pin = ["taskset", "-c", str((os.cpu_count() or 1) - 1)] if mode == "starved" else []
            if mode == "starved":
                self.procs.append(subprocess.Popen(pin + [sys.executable, "-c",
                                                          "while True: pass"]))
            if mode == "default":
                self.procs.append(subprocess.Popen([sys.executable, "-c", _DEFAULT_TOPOLOGY,
                                                    json.dumps(inference_params or {})],
                                                   stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.STDOUT))
            else:
                self.procs += [
                    # synthetic input: the simulator's model, as snn4 up picks it
                    subprocess.Popen(pin + [str(bin_dir / "snn4_inference"), "--ros-args",
                                            "-p", "model:=hybridnet_gesture_synth",
                                            *[a for k, v in (inference_params or {}).items()
                                              for a in ("-p", f"{k}:={_ros_arg(v)}")]],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT),
                    subprocess.Popen(pin + [str(bin_dir / "gesture_controller"), "--ros-args",
                                            "-p", "stamped:=true"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)]
        self.spinner = threading.Thread(target=self._spin, daemon=True)
        self.spinner.start()
        t_wait = time.monotonic() + 120
        while self.pub.get_subscription_count() == 0 or \
                self.node.count_publishers("cmd_vel") == 0:
            if time.monotonic() > t_wait:
                raise RuntimeError("the graph did not come up")
            time.sleep(0.1)

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException
        try:
            self.ex.spin()
        except (ExternalShutdownException, AttributeError, RuntimeError):
            pass                      # shutting down

    def _on_cmd(self, m) -> None:
        key = (m.header.stamp.sec, m.header.stamp.nanosec)
        if key in self.seen or key not in self.sent:      # the first command per stamp only
            return
        self.seen.add(key)
        now = self.node.get_clock().now().nanoseconds
        self.lat.append((now - (key[0] * 10**9 + key[1])) / 1e6)

    def _on_diag(self, msg) -> None:
        for st in msg.status:
            if st.name.endswith(": inference"):
                self.diag = {kv.key: kv.value for kv in st.values}
                self.diag["_t"] = time.monotonic()

    def counters(self) -> dict:
        """The inference node's cumulative counters (directly, or from /diagnostics)."""
        if self.inf is not None:
            sh, st = self.inf.shed, self.inf.decoder.stats
            return {"late_packets": sh.late_packets, "late_events": sh.late_events,
                    "capped_events": sh.capped_events, "thinned_events": sh.thinned_events,
                    "regressed_events": sh.regressed_events,
                    "queue_full_packets": self.inf.backlog.stats.queue_full_packets,
                    "skipped_bins": sh.skipped_bins, "coalesced_bins": sh.coalesced_bins,
                    "seq_gaps": st.seq_gaps, "time_regressions": st.time_regressions,
                    "time_jumps": self.inf.time_jumps, "events": st.events,
                    "bins": self.inf.bins, "prewarms": self.inf.pipeline.prewarms,
                    "prewarms_skipped_busy": self.inf.pipeline.prewarms_skipped_busy}
        t = time.monotonic()
        while time.monotonic() - self.diag.get("_t", 0) > 0.2 and time.monotonic() - t < 3:
            time.sleep(0.05)                                 # a fresh diagnostics message
        return {k: int(float(self.diag.get(k, 0))) for k in SHED_KEYS}

    def cpu(self) -> float:
        if self.inf is not None:
            r = resource.getrusage(resource.RUSAGE_SELF)
            return r.ru_utime + r.ru_stime
        # the node processes; one that has gone counts nothing (NaN from proc_sample)
        nodes = self.procs[-1:] if self.mode == "default" else self.procs[-2:]
        cpu = (proc_sample(p.pid)["cpu_s"] for p in nodes)
        return float(sum(c for c in cpu if c == c))

    def counters_now(self) -> dict:
        """``counters`` without waiting: across processes, the last /diagnostics message
        (up to 1 s old, so anything shed in that second is charged to what follows)."""
        if self.inf is not None:
            return self.counters()
        return {k: int(float(self.diag.get(k, 0))) for k in SHED_KEYS}

    def run(self, rate: float, seconds: float, stream_pos: int) -> tuple[dict, int]:
        """One case: ``WARM_S`` of warm-up at the rate, then ``seconds`` measured, as one
        unbroken stream -- a camera never pauses, and on a shared VM the first bins after
        an idle second run from cold caches (that first decision's latency is reported
        alone, as ``first_decision_ms``, not mixed into the steady state)."""
        n_warm, n_run = int(WARM_S / PACKET_S), int(seconds / PACKET_S)
        msgs = _messages(rate, n_warm + n_run, stream_pos)
        self.lat.clear()
        self.sent = warm_sent = set()
        at_switch: dict = {}

        def switch() -> set:
            at_switch.update(lat=list(self.lat), c0=self.counters_now(), cpu0=self.cpu(),
                             w0=time.monotonic())
            self.lat.clear()
            self.sent = set()
            return self.sent

        late_sends = _drive(self.node, self.pub, msgs, warm_sent, n_warm, switch)
        c0, cpu0, w0 = at_switch["c0"], at_switch["cpu0"], at_switch["w0"]
        time.sleep(0.5)
        wall = time.monotonic() - w0
        cpu = (self.cpu() - cpu0) / wall
        time.sleep(1.2 if self.inf is None else 0.0)   # the next diagnostics message
        c1 = self.counters()
        d = {k: c1[k] - c0[k] for k in SHED_KEYS}
        lat = np.array(self.lat)
        expected = int(seconds / BIN_S)
        ev = max(d["events"], 1)
        r = {"cpu_s": round(cpu * wall, 3), "packets_sent": len(msgs),
             "p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
             "p99_ms": round(float(np.percentile(lat, 99)), 2) if len(lat) else None,
             "max_ms": round(float(lat.max()), 2) if len(lat) else None,
             "first_decision_ms": (round(float(at_switch["lat"][0]), 2)
                                   if at_switch["lat"] else None),
             "decisions": int(len(lat)), "expected_decisions": expected,
             "bins_stepped": d["bins"], "events_sent": int(rate * seconds),
             "events_received": d["events"],
             "shed": {k: d[k] for k in ("late_events", "capped_events", "thinned_events",
                                        "regressed_events",
                                        "queue_full_packets",
                                        "skipped_bins", "coalesced_bins")},
             "shed_fraction": round((d["late_events"] + d["capped_events"] + d["thinned_events"]
                                     + d["regressed_events"]) / ev, 4),
             "transport_lost_packets": d["seq_gaps"],
             "time_regressions": d["time_regressions"], "time_jumps": d["time_jumps"],
             "publisher_late_sends": late_sends, "cpu_cores": round(cpu, 2),
             "prewarms": d["prewarms"], "prewarms_skipped_busy": d["prewarms_skipped_busy"]}
        # drops: packets whose events never reached a bin (late or queue-full) + lost on the
        # way; every shed event is in `shed`
        r["drops"] = d["late_packets"] + d["queue_full_packets"] + d["seq_gaps"]
        return r, stream_pos + n_warm + n_run

    def close(self) -> None:
        import rclpy
        self.ex.shutdown(timeout_sec=2.0)
        self.spinner.join(timeout=5.0)
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for n in [x for x in (self.inf, self.ctrl) if x is not None] + [self.node]:
            n.destroy_node()
        rclpy.shutdown(context=self.ctx)


def _label(rate: float) -> str:
    return f"{rate / 1e6:g}mev".replace(".", "p")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rates", default="0.25,1,2,5,10,20", help="M events/s")
    ap.add_argument("--modes", default="inproc,default,xproc,starved")
    ap.add_argument("--starved-rates", default="1,5", help="M events/s")
    args = ap.parse_args()
    rates = [float(r) * 1e6 for r in args.rates.split(",")]
    modes = args.modes.split(",")
    out: dict = {"seconds": args.seconds, "bin_ms": BIN_S * 1e3, "cases": {}}
    with Run("latency") as run:
        for mode in modes:
            mode_rates = rates if mode != "starved" else \
                [float(r) * 1e6 for r in args.starved_rates.split(",")]
            g = Graph(mode)
            pos = 0
            try:
                for rate in mode_rates:
                    r, pos = g.run(rate, args.seconds, pos)
                    name = f"{_label(rate)}_{mode}"
                    out["cases"][name] = r
                    print(f"{name:<18} p50 {r['p50_ms']} p99 {r['p99_ms']} ms  decisions "
                          f"{r['decisions']}/{r['expected_decisions']}  drops {r['drops']}  "
                          f"shed {r['shed']}  lost {r['transport_lost_packets']}  "
                          f"cpu {r['cpu_cores']}", flush=True)
            finally:
                g.close()
        for name, r in out["cases"].items():
            label, mode = name.rsplit("_", 1)
            sfx = "" if mode == "inproc" else f"_{mode}"
            out[f"p50_ms_{label}{sfx}"] = r["p50_ms"]
            out[f"p99_ms_{label}{sfx}"] = r["p99_ms"]
            out[f"drops_{label}{sfx}"] = r["drops"]
            out[f"decisions_{label}{sfx}"] = f"{r['decisions']}/{r['expected_decisions']}"
            out[f"cpu_cores_{label}{sfx}"] = r["cpu_cores"]
        run.emit(out)


if __name__ == "__main__":
    main()

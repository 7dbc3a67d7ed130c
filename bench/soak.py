"""Soak: the graph at 1 M events/s for a long time -- does anything grow or slow down?

    python bench/soak.py [--minutes 30] [--rate 1e6] [--sample-s 5] [--warmup-s 60]
                         [--plot out/soak.png] [--results]

The inference, controller and dashboard nodes run as their own processes (real DDS between
them, as under ``ros2 launch``). This process stands in for the camera driver: it publishes
evt3 EventPackets of 2 ms (2,000 events each at 1 M ev/s, random pixels, encoded as it
goes so the stream never repeats or jumps in time), stamped with their publication time,
and polls the dashboard's ``/api/status`` once a second as a browser would. Every
``--sample-s`` it samples, per node process, the resident memory (VmRSS) and the number of
open file descriptors; and for the interval, the packet -> command latency (the controller
runs with ``stamped:=true``: TwistStamped carries the stamp of the packet that closed the
bin), the packets the inference node dropped, the decisions published and the dashboard's
answers.

Memory growth is measured after the warm-up (allocator pools, compiled kernels and DDS
history fill in the first seconds): ``rss_growth_pct`` is the largest growth of any node
process between the mean of the first two samples after the warm-up and the mean of the
last two. The plot shows everything over time; the last line printed is one JSON object:
``rss_growth_pct``, ``p99_ms``, ``drops``, ``minutes`` and the details.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from _common import Run, proc_sample  # noqa: E402  (bench/ is the script's folder)

NODES = ("snn4_inference", "gesture_controller", "dashboard")


class Feeder:
    """The camera stand-in: evt3 packets of 2 ms at ``rate`` events/s, paced to the wall
    clock (a late publisher catches up in a burst, as a driver does after a hiccup)."""

    def __init__(self, node, rate: float, seed: int = 0):
        from event_camera_msgs.msg import EventPacket

        from snn4_ros.events import PacketEncoder, make_events
        from snn4_ros.ros.common import EVENTS_PUB_QOS, EVENTS_TOPIC

        self.node = node
        self.pub = node.create_publisher(EventPacket, EVENTS_TOPIC, EVENTS_PUB_QOS)
        rng = np.random.default_rng(seed)
        n = max(1, int(rate * 0.002))
        # 64 random 2 ms templates, shifted in time: no random draws on the hot path
        self.templates = [make_events(np.sort(rng.integers(0, 2000, n)) * 1000,
                                      rng.integers(0, 128, n), rng.integers(0, 128, n),
                                      rng.integers(0, 2, n)) for _ in range(64)]
        self.enc = PacketEncoder("evt3", 128, 128, "event_camera")
        self.sent = 0
        self.recent: deque = deque(maxlen=5000)      # the last 10 s of stamps (ns)
        self.recent_set: set = set()
        self.late = 0              # packets published more than 20 ms after their slot
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def was_sent(self, ns: int) -> bool:
        return ns in self.recent_set

    def _run(self) -> None:
        from snn4_ros.ros.common import packet_to_msg

        t0 = time.perf_counter()
        k = 0
        while not self.stop.is_set():
            target = t0 + k * 0.002
            now = time.perf_counter()
            if now < target:
                time.sleep(min(target - now, 0.002))
                continue
            self.late += now - target > 0.02
            ev = self.templates[k % len(self.templates)].copy()
            ev["t"] += k * 2_000_000
            msg = packet_to_msg(self.enc.encode(ev))
            msg.header.stamp = self.node.get_clock().now().to_msg()
            ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            if len(self.recent) == self.recent.maxlen:
                self.recent_set.discard(self.recent[0])
            self.recent.append(ns)
            self.recent_set.add(ns)
            self.pub.publish(msg)
            self.sent += 1
            k += 1


def _poll_dashboard(url: str, stats: dict, stop: threading.Event) -> None:
    """One GET /api/status a second, as an open browser tab polls."""
    import httpx

    with httpx.Client(timeout=5.0) as c:
        while not stop.wait(1.0):
            try:
                ok = c.get(url).status_code == 200
            except httpx.HTTPError:
                ok = False
            stats["ok" if ok else "failed"] += 1


def run(minutes: float, rate: float, sample_s: float, warmup_s: float,
        plot: str | None, progress: bool = True) -> dict:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import TwistStamped
    from rclpy.executors import SingleThreadedExecutor
    from vision_msgs.msg import Classification

    from snn4_ros.ros.common import GESTURE_TOPIC, RESULT_QOS

    domain = int(os.environ.get("ROS_DOMAIN_ID") or 100 + os.getpid() % 100)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
    env.pop("SNN4_DASHBOARD_TOKEN", None)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bin_dir = Path(sys.executable).parent
    # the synthetic source: the simulator's model, as snn4 up picks it (default_model)
    args = {"snn4_inference": ["--ros-args", "-p", "model:=hybridnet_gesture_synth"],
            "gesture_controller": ["--ros-args", "-p", "stamped:=true"],
            "dashboard": ["--ros-args", "-p", f"port:={port}", "-p", "nice:=0"]}
    # each node's output to a file: a pipe nobody reads fills after 64 KB of log lines and
    # then blocks the node mid-write (a stall of the bench's making, not the graph's)
    import tempfile
    logs = {name: tempfile.NamedTemporaryFile(prefix=f"soak-{name}-", suffix=".log",
                                              delete=False) for name in NODES}
    procs = {name: subprocess.Popen([str(bin_dir / name), *args[name]], env=env,
                                    stdout=logs[name], stderr=subprocess.STDOUT)
             for name in NODES}
    for f in logs.values():
        f.close()

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("soak_bench", context=ctx)
    lock = threading.Lock()
    lat_ms: list[float] = []            # since the last sample
    diag: dict = {}
    decisions = [0]
    last = [0]

    def on_cmd(m):
        ns = m.header.stamp.sec * 10**9 + m.header.stamp.nanosec
        now = node.get_clock().now().nanoseconds
        with lock:
            # the first command carrying a packet's stamp (the controller's timer repeats
            # the last stamp between decisions; stamps only grow)
            if ns > last[0] and feeder.was_sent(ns):
                last[0] = ns
                lat_ms.append((now - ns) / 1e6)

    def on_diag(msg):
        for st in msg.status:
            if st.name.startswith("snn4_inference"):
                with lock:
                    diag.update({kv.key: kv.value for kv in st.values})

    def on_cls(msg):
        with lock:
            decisions[0] += 1

    node.create_subscription(TwistStamped, "cmd_vel", on_cmd, 100)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 50)
    node.create_subscription(Classification, GESTURE_TOPIC, on_cls, RESULT_QOS)
    feeder = Feeder(node, rate)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()

    def fail(why: str):
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        errs = {n: Path(f.name).read_text(errors="replace")[-2000:] for n, f in logs.items()}
        raise RuntimeError(f"{why}; node output: {errs}")

    t_wait = time.monotonic() + 60
    while feeder.pub.get_subscription_count() == 0 or node.count_publishers("cmd_vel") == 0:
        if time.monotonic() > t_wait or any(p.poll() is not None for p in procs.values()):
            fail("the graph did not come up")
        time.sleep(0.2)

    stop = threading.Event()
    http = {"ok": 0, "failed": 0}
    poller = threading.Thread(target=_poll_dashboard, daemon=True, args=(
        f"http://127.0.0.1:{port}/api/status", http, stop))
    poller.start()
    feeder.thread.start()
    samples = []
    t0 = time.monotonic()
    duration = minutes * 60.0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=int(duration), unit="s", desc="soak", mininterval=sample_s,
                   file=sys.stderr)
    cpu_prev = {n: proc_sample(p.pid)["cpu_s"] for n, p in procs.items()}
    t_prev = t0
    while True:
        t_next = t0 + (len(samples) + 1) * sample_s
        time.sleep(max(0.0, t_next - time.monotonic()))
        now = time.monotonic()
        dead = [n for n, p in procs.items() if p.poll() is not None]
        if dead:
            stop.set()
            feeder.stop.set()
            fail(f"{dead} died during the soak")
        with lock:
            lat, lat_ms[:] = list(lat_ms), []
            d = dict(diag)
            n_dec = decisions[0]
        per = {}
        for n, p in procs.items():
            ps = proc_sample(p.pid)
            ps["cpu_cores"] = (ps["cpu_s"] - cpu_prev[n]) / max(now - t_prev, 1e-6)
            cpu_prev[n] = ps["cpu_s"]
            per[n] = ps
        t_prev = now
        samples.append({
            "t": now - t0, "procs": per, "lat_ms": lat,
            "dropped": int(d.get("dropped_packets", 0)), "decisions": n_dec,
            "published": feeder.sent, "late": feeder.late, "http_ok": http["ok"],
            "http_failed": http["failed"], "queue": int(d.get("queue", 0)),
            "processing_errors": int(d.get("processing_errors", 0)),
            "loadavg": os.getloadavg()[0]})
        if bar is not None:
            bar.update(int(now - t0) - bar.n)
            bar.set_postfix(rss=f"{per['snn4_inference']['rss_mb']:.0f}MB",
                            drops=samples[-1]["dropped"], dec=n_dec, refresh=False)
        if now - t0 >= duration:
            break
    if bar is not None:
        bar.close()
    stop.set()
    feeder.stop.set()
    feeder.thread.join(timeout=2)
    for p in procs.values():
        p.terminate()
    for p in procs.values():
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
    ex.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=ctx)
    log_bytes = {}
    for n, f in logs.items():
        log_bytes[n] = os.path.getsize(f.name)
        os.unlink(f.name)
    out = summarise(samples, warmup_s, minutes, rate)
    out["node_log_bytes"] = log_bytes
    if plot:
        draw(samples, warmup_s, out, plot)
        out["plot"] = plot
    return out


def summarise(samples: list[dict], warmup_s: float, minutes: float, rate: float) -> dict:
    after = [s for s in samples if s["t"] >= warmup_s]
    if len(after) < 4:
        raise ValueError(f"only {len(after)} samples after the {warmup_s:g} s warm-up: "
                         "run longer or sample more often")
    first = [s for s in samples if s["t"] < warmup_s]
    base = first[-1] if first else after[0]
    growth, rss = {}, {}
    for n in NODES:
        a = np.mean([s["procs"][n]["rss_mb"] for s in after[:2]])
        b = np.mean([s["procs"][n]["rss_mb"] for s in after[-2:]])
        growth[n] = round(float(100 * (b - a) / a), 2)
        rss[n] = {"after_warmup_mb": round(float(a), 1), "end_mb": round(float(b), 1),
                  "peak_mb": round(float(max(s["procs"][n]["rss_mb"] for s in samples)), 1)}
    # growth over the second half alone: a plateau (bounded queues filled under load)
    # reads ~0 here, a leak keeps growing
    half = [s for s in after if s["t"] >= (after[0]["t"] + after[-1]["t"]) / 2]
    growth_2nd = {n: round(float(100 * (np.mean([s["procs"][n]["rss_mb"] for s in half[-2:]])
                                        / np.mean([s["procs"][n]["rss_mb"] for s in half[:2]])
                                        - 1)), 2) for n in NODES}
    lat = np.array([v for s in after for v in s["lat_ms"]])
    span = after[-1]["t"] - base["t"]
    fds = {n: [after[0]["procs"][n]["fds"], after[-1]["procs"][n]["fds"]] for n in NODES}
    return {
        "rss_growth_pct": max(growth.values()),
        "p99_ms": round(float(np.percentile(lat, 99)), 2) if len(lat) else None,
        "drops": after[-1]["dropped"] - base["dropped"],
        "minutes": round(samples[-1]["t"] / 60, 2),
        "rss_growth_pct_by_node": growth, "rss_mb": rss,
        "rss_growth_second_half_pct_by_node": growth_2nd,
        "p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
        "latency_samples": int(len(lat)),
        "decisions": after[-1]["decisions"] - base["decisions"],
        # still deciding at the end (the last quarter of the run)
        "decisions_last_quarter": after[-1]["decisions"] - after[3 * len(after) // 4]["decisions"],
        "expected_decisions": int(span / 0.04),
        "packets_published": after[-1]["published"] - base["published"],
        "rate_ev_s": rate, "warmup_s": warmup_s, "samples": len(samples),
        "fds_after_warmup_and_end": fds,
        "dashboard_requests": {"ok": after[-1]["http_ok"], "failed": after[-1]["http_failed"]},
        "processing_errors": after[-1]["processing_errors"],
        "publisher_late_packets": after[-1]["late"],
        # the machine's 1-min load average (2 cores here, shared): drops follow the load
        "loadavg_mean": round(float(np.mean([s["loadavg"] for s in after])), 2),
        "cpu_cores_by_node": {n: round(float(np.mean([s["procs"][n]["cpu_cores"]
                                                      for s in after])), 2) for n in NODES},
        "requested_minutes": minutes,
    }


def draw(samples: list[dict], warmup_s: float, out: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array([s["t"] for s in samples]) / 60
    fig, ax = plt.subplots(2, 2, figsize=(12, 7), sharex=True)
    for a in ax.flat:
        a.axvspan(0, warmup_s / 60, color="0.9", label="warm-up")
        a.grid(alpha=0.3)
    for n in NODES:
        ax[0, 0].plot(t, [s["procs"][n]["rss_mb"] for s in samples], label=n)
        ax[1, 1].plot(t, [s["procs"][n]["fds"] for s in samples], label=n)
    ax[0, 0].set_ylabel("resident memory (MB)")
    ax[0, 0].set_title(f"RSS growth after warm-up: {out['rss_growth_pct']:+.2f} % (max node)")
    ax[0, 0].legend(fontsize=8)
    p50 = [np.percentile(s["lat_ms"], 50) if s["lat_ms"] else np.nan for s in samples]
    p99 = [np.percentile(s["lat_ms"], 99) if s["lat_ms"] else np.nan for s in samples]
    ax[0, 1].plot(t, p50, label="p50")
    ax[0, 1].plot(t, p99, label="p99")
    ax[0, 1].set_ylabel("packet -> command (ms)")
    ax[0, 1].set_title(f"latency per sample; overall p99 {out['p99_ms']} ms")
    ax[0, 1].legend(fontsize=8)
    dt = np.diff(np.concatenate([[0.0], t * 60]))
    dec = np.diff(np.concatenate([[0], [s["decisions"] for s in samples]])) / np.maximum(dt, 1e-6)
    ax[1, 0].plot(t, dec, label="decisions / s")
    ax2 = ax[1, 0].twinx()
    ax2.plot(t, [s["dropped"] for s in samples], color="C3", label="dropped packets (total)")
    ax2.set_ylabel("dropped packets (total)", color="C3")
    ax[1, 0].set_ylabel("decisions / s")
    ax[1, 0].set_xlabel("minutes")
    ax[1, 0].set_title(f"{out['rate_ev_s'] / 1e6:g} M ev/s in; drops after warm-up "
                       f"{out['drops']} of {out['packets_published']}; load avg "
                       f"{out['loadavg_mean']:.1f} on {os.cpu_count()} cores", fontsize=9)
    ax[1, 1].set_ylabel("open file descriptors")
    ax[1, 1].set_xlabel("minutes")
    ax[1, 1].legend(fontsize=8)
    fig.suptitle(f"snn4_ros soak: {out['minutes']:.1f} min, {len(samples)} samples")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="how long (default 30)")
    ap.add_argument("--rate", type=float, default=1e6, help="events/s (default 1e6)")
    ap.add_argument("--sample-s", type=float, default=5.0,
                    help="seconds between samples (default 5)")
    ap.add_argument("--warmup-s", type=float, default=None,
                    help="excluded from the growth figure (default: 60 s, or a third of "
                         "runs shorter than 3 min)")
    ap.add_argument("--plot", default=str(ROOT / "out" / "soak.png"),
                    help="where the plot goes (default out/soak.png; '' for none)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--results", action="store_true",
                    help="also write bench/results/soak.json (the README's soak figures, "
                         "python bench/readme.py): the README's run")
    a = ap.parse_args()
    warm = a.warmup_s if a.warmup_s is not None else min(60.0, a.minutes * 60 / 3)
    with Run("soak") as bench_run:
        out = run(a.minutes, a.rate, a.sample_s, warm, a.plot or None, not a.no_progress)
        print(f"soak {out['minutes']:.1f} min at {a.rate / 1e6:g} M ev/s: RSS growth after "
              f"warm-up {out['rss_growth_pct_by_node']} %, latency p50/p99 {out['p50_ms']}/"
              f"{out['p99_ms']} ms (n={out['latency_samples']}), drops {out['drops']} of "
              f"{out['packets_published']} packets, decisions {out['decisions']}/"
              f"{out['expected_decisions']}, fds {out['fds_after_warmup_and_end']}, dashboard "
              f"{out['dashboard_requests']}")
        if a.plot:
            out["plot"] = os.path.relpath(a.plot, ROOT)
        if a.results:
            bench_run.emit(out)
        else:
            print(json.dumps(out))


if __name__ == "__main__":
    main()

"""Dashboard under load: does polling the dashboard slow the inference down?

    python bench/dashboard_load.py [--phase-s 15] [--rounds 3] [--clients 50] [--hz 10]

`snn4 up --dashboard` runs the synthetic graph in real time (the dashboard node is its own
process). The inference node's own per-packet latencies (its ``latency_ms_recent``
diagnostics, every packet -> decision) are collected over alternating phases: idle, then
``--clients`` HTTP clients each polling ``/api/status`` at ``--hz`` (an asyncio client in a
separate, niced process: clients are remote in the field). The p99 with load over the p99
without is the figure (goal: <= 1.10). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from _common import emit  # noqa: E402


def _clients(url: str, n: int, hz: float, seconds: float) -> None:
    """Runs in the load process: n keep-alive HTTP/1.1 connections, each GET every 1/hz s.
    Plain asyncio streams: a full HTTP client library would spend more CPU than the server
    it measures (on a 2-core machine the clients share the cores with the robot's graph)."""
    from urllib.parse import urlparse

    u = urlparse(url)
    req = (f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}\r\n\r\n").encode()

    async def one(stats):
        reader, writer = await asyncio.open_connection(u.hostname, u.port)
        t_next = time.perf_counter()
        t_end = t_next + seconds
        while t_next < t_end:
            try:
                writer.write(req)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                await reader.readexactly(length)
                stats["ok" if head.startswith(b"HTTP/1.1 200") else "bad"] += 1
            except Exception as exc:
                stats["err"] += 1
                stats.setdefault("last_error", repr(exc))
                writer.close()
                reader, writer = await asyncio.open_connection(u.hostname, u.port)
            t_next += 1.0 / hz
            await asyncio.sleep(max(0.0, t_next - time.perf_counter()))
        writer.close()

    async def run():
        stats: dict = {"ok": 0, "bad": 0, "err": 0}
        await asyncio.gather(*(one(stats) for _ in range(n)))
        print(json.dumps(stats), flush=True)

    asyncio.run(run())


def _dashboard_pid(port: int) -> int | None:
    """The dashboard node's process (a child of `snn4 up`), found by its command line."""
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"snn4_ros.ros.dashboard_node" in cmd and f"port:={port}".encode() in cmd:
                return int(d.name)
    return None


def _cpu_s(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--phase-s", type=float, default=15.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--hz", type=float, default=10.0)
    ap.add_argument("--load-worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.load_worker:
        url, n, hz, s = args.load_worker
        _clients(url, int(n), float(hz), float(s))
        return

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    domain = 60 + os.getpid() % 30
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
    total = 40 + 2 * args.rounds * (args.phase_s + 4)
    up = subprocess.Popen([sys.executable, "-m", "snn4_ros.app.cli", "up", "--duration",
                           str(total), "--dashboard", f"127.0.0.1:{port}"], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("load_bench", context=ctx)
    samples: list[tuple[float, float]] = []

    def on_diag(msg):
        now = time.monotonic()
        for st in msg.status:
            for kv in st.values:
                if kv.key == "latency_ms_recent" and kv.value:
                    samples.extend((now, float(v)) for v in kv.value.split(";"))
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 50)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()
    url = f"http://127.0.0.1:{port}/api/status"
    import httpx

    t_end = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url.replace("api/status", "readyz"), timeout=1).status_code == 200:
                break
        except Exception:
            pass
        if time.monotonic() > t_end:
            raise RuntimeError("the graph did not become ready")
        time.sleep(0.5)
    time.sleep(3.0)                                    # past the warm-up
    dash_pid = _dashboard_pid(port)
    cpu = {"idle": 0.0, "load": 0.0}
    wall = {"idle": 0.0, "load": 0.0}
    phases = {"idle": [], "load": []}
    stats = []
    for _ in range(args.rounds):
        for kind in ("idle", "load"):
            t0 = time.monotonic()
            c0 = _cpu_s(dash_pid)
            if kind == "load":
                p = subprocess.run(["nice", "-n", "19", sys.executable, __file__,
                                    "--load-worker", url, str(args.clients), str(args.hz),
                                    str(args.phase_s)], capture_output=True, text=True)
                stats.append(json.loads(p.stdout.strip().splitlines()[-1]))
            else:
                time.sleep(args.phase_s)
            t1 = time.monotonic()
            cpu[kind] += _cpu_s(dash_pid) - c0
            wall[kind] += t1 - t0
            time.sleep(1.2)                            # the last diagnostics of the phase
            phases[kind].extend(v for t, v in samples if t0 + 1.0 < t <= t1 + 1.0)
    up.terminate()
    up.wait(timeout=20)
    ex.shutdown()
    rclpy.shutdown(context=ctx)
    out = {k: {"p50_ms": float(np.percentile(v, 50)), "p99_ms": float(np.percentile(v, 99)),
               "n": len(v)} for k, v in phases.items()}
    out["p99_ratio"] = out["load"]["p99_ms"] / out["idle"]["p99_ms"]
    out["p50_ratio"] = out["load"]["p50_ms"] / out["idle"]["p50_ms"]
    out["requests"] = {k: sum(s[k] for s in stats) for k in ("ok", "bad", "err")}
    out["requests_per_s"] = out["requests"]["ok"] / (args.rounds * args.phase_s)
    out["dashboard_cpu_cores"] = {k: cpu[k] / wall[k] for k in cpu}
    print(f"inference latency (packet -> decision), {args.clients} clients x {args.hz:g} Hz "
          f"on /api/status ({out['requests_per_s']:.0f} req/s served, "
          f"{out['requests']['bad'] + out['requests']['err']} failed):")
    for k in ("idle", "load"):
        print(f"  {k:<5} p50 {out[k]['p50_ms']:6.2f} ms  p99 {out[k]['p99_ms']:6.2f} ms  "
              f"(n={out[k]['n']})")
    print(f"  p99 ratio load/idle {out['p99_ratio']:.3f}, p50 ratio {out['p50_ratio']:.3f}; "
          f"dashboard process CPU {out['dashboard_cpu_cores']['idle']:.2f} cores idle, "
          f"{out['dashboard_cpu_cores']['load']:.2f} loaded")
    emit("dashboard_load", out)


if __name__ == "__main__":
    main()

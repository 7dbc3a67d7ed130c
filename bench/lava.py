"""The Loihi path: Lava's bit-accurate simulation per step vs the torch fixed-point emulation,
and the Lava bridge node's round trip over ROS.

    python bench/lava.py [--model models/hybridnet_gesture_loihi] [--frames 300]

1. per step: ``make lava-check``'s clips (written here) through Lava with Sparse and with
   Conv processes, and through the torch emulation (streaming, one bin at a time);
2. round trip: the bridge node (Lava venv, its own process) and the inference node's
   ``LavaClient`` in this process: frame published -> backbone spikes received, per frame,
   over real DDS, with synthetic frames at full speed (one in flight).
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from _common import emit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/hybridnet_gesture_loihi")
    ap.add_argument("--frames", type=int, default=300)
    args = ap.parse_args()

    import torch

    from snn4_ros.models import checkpoint
    from snn4_ros.models.loihi_tools import check_clips
    from snn4_ros.models.loihi import write_check_file
    from snn4_ros.ros.lava_env import bridge_command, clean_env, hw_dir, lava_python

    torch.set_num_threads(1)
    net, _ = checkpoint.load(args.model)
    tmp = Path(tempfile.mkdtemp())
    clips = check_clips(net, [], "synthetic:1:2")
    info = write_check_file(net, clips, tmp / "check.npz")
    out = {"torch_emulation_ms_per_step": info["torch_step_s"] * 1e3}
    for conn in ("sparse", "conv"):
        p = subprocess.run([str(lava_python()), str(hw_dir() / "lava_run.py"), "check",
                            str(tmp / "check.npz"), args.model, "--connection", conn],
                           capture_output=True, text=True, env=clean_env())
        line = next(x for x in p.stdout.splitlines() if x.startswith("per step"))
        out[f"lava_{conn}_ms_per_step"] = float(line.split(")")[1].split("ms")[0])
        out[f"lava_{conn}_bit_exact"] = p.stdout.strip().splitlines()[-1]
    print(f"per step ({len(clips)} clips): torch emulation "
          f"{out['torch_emulation_ms_per_step']:.2f} ms, Lava Sparse "
          f"{out['lava_sparse_ms_per_step']:.2f} ms ({out['lava_sparse_bit_exact']}), Lava Conv "
          f"{out['lava_conv_ms_per_step']:.2f} ms ({out['lava_conv_bit_exact']})")

    # round trip through the bridge node
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from snn4_ros.ros.lava_client import LavaClient

    domain = 70 + os.getpid() % 20
    cmd, env = bridge_command(Path(args.model).resolve())
    env["ROS_DOMAIN_ID"] = str(domain)
    bridge = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("lava_bench", context=ctx)
    client = LavaClient(node, net.feature_shape(), timeout_s=10.0)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    import threading
    threading.Thread(target=ex.spin, daemon=True).start()
    t_end = time.monotonic() + 60
    while client.pub.get_subscription_count() == 0:
        if time.monotonic() > t_end:
            raise RuntimeError("the bridge did not come up")
        time.sleep(0.1)
    frames = clips[0][1]
    lat = []
    for i in range(args.frames):
        x = frames[i % frames.shape[0]][None].float()
        t0 = time.perf_counter()
        client(x, i * 40_000_000)
        lat.append((time.perf_counter() - t0) * 1e3)
    bridge.terminate()
    bridge.wait(timeout=20)
    ex.shutdown()
    rclpy.shutdown(context=ctx)
    lat = np.array(lat[10:])
    out.update(bridge_round_trip_ms_p50=float(np.percentile(lat, 50)),
               bridge_round_trip_ms_p99=float(np.percentile(lat, 99)),
               bridge_frames=int(len(lat)))
    print(f"bridge round trip (frame -> spikes over DDS, Lava Sparse sim): p50 "
          f"{out['bridge_round_trip_ms_p50']:.2f} ms, p99 {out['bridge_round_trip_ms_p99']:.2f}"
          f" ms over {len(lat)} frames")
    emit("lava", out)


if __name__ == "__main__":
    main()

"""Replay throughput: events/s and real-time factor on the shared bags and a synthetic one.

    python bench/replay.py [--repeat 3]

Each recording is replayed by ``snn4 replay``'s code, in process and through the real ROS
nodes over DDS (``--via-ros``), as fast as the pipeline allows; the best of ``--repeat``
runs is kept (wall time includes reading the bag). The real bags are short (1.2 s and 2.0 s),
so a synthetic 22-gesture bag (44 s) is added for a sustained figure. The last line printed
is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import torch

    from snn4_ros.eval.replay import replay
    from snn4_ros.events.recording import record_synthetic
    from snn4_ros.models import checkpoint
    from snn4_ros.models.zoo import find_model
    from snn4_ros.nodes.replay import replay_via_ros

    torch.set_num_threads(1)
    shared = ROOT.parent / "shared" / "data" / "rosbag2"
    tmp = Path(tempfile.mkdtemp())
    syn = record_synthetic(tmp / "synthetic22", gestures=22, seed=3)["bag"]
    bags = [shared / "evt3_trigger", shared / "libcaer_rollover", Path(syn)]
    net, card = checkpoint.load(find_model("hybridnet_gesture_synth"))
    out = {}
    print(f"{'recording':<20}{'mode':<12}{'events':>10}{'rec. s':>8}{'wall s':>8}"
          f"{'ev/s':>12}{'RTF':>7}")
    for b in bags:
        for mode in ("in-process", "via-ros"):
            best = None
            for _ in range(args.repeat):
                tr = replay(b, net, card=card) if mode == "in-process" else \
                    replay_via_ros(b, "hybridnet_gesture_synth")
                if best is None or tr.wall_s < best.wall_s:
                    best = tr
            rtf = best.duration_s / best.wall_s
            out[f"{b.name}/{mode}"] = {"events": best.events, "duration_s": best.duration_s,
                                       "wall_s": best.wall_s, "events_per_s":
                                       best.events / best.wall_s, "real_time_factor": rtf,
                                       "decisions": int(len(best.dec_t))}
            print(f"{b.name:<20}{mode:<12}{best.events:>10,}{best.duration_s:>8.2f}"
                  f"{best.wall_s:>8.2f}{best.events / best.wall_s:>12,.0f}{rtf:>7.1f}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""Replay throughput: events/s and real-time factor on the shared bags and a synthetic one.

    python bench/replay_throughput.py [--repeat 3]

Each recording is replayed by ``snn4 replay``'s code, in process and through the real ROS
nodes over DDS (``--via-ros``), as fast as the pipeline allows; the best of ``--repeat``
runs is kept (wall time includes reading the bag). The real bags are short (1.2 s and 2.0 s),
so a synthetic 22-gesture bag (44 s) is added for a sustained figure; its labels also give the
accuracy figures of the README, next to ``snn4 eval`` on the same intervals as isolated clips
(dataset ``bag:``). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from _common import emit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import torch

    from snn4_ros.eval.inprocess import replay
    from snn4_ros.events.recording import record_synthetic
    from snn4_ros.models import checkpoint
    from snn4_ros.models.zoo import find_model
    from snn4_ros.ros.dds_replay import replay_via_ros

    torch.set_num_threads(1)
    shared = ROOT.parent / "shared" / "data" / "rosbag2"
    tmp = Path(tempfile.mkdtemp())
    rec = record_synthetic(tmp / "synthetic22", gestures=22, seed=3)
    syn = rec["bag"]
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
            if b.name == "synthetic22" and mode == "in-process":
                syn_trace = best
            out[f"{b.name}/{mode}"] = {"events": best.events, "duration_s": best.duration_s,
                                       "wall_s": best.wall_s, "events_per_s":
                                       best.events / best.wall_s, "real_time_factor": rtf,
                                       "decisions": int(len(best.dec_t))}
            print(f"{b.name:<20}{mode:<12}{best.events:>10,}{best.duration_s:>8.2f}"
                  f"{best.wall_s:>8.2f}{best.events / best.wall_s:>12,.0f}{rtf:>7.1f}")
    from snn4_ros.events.labels import check_labels, load_labels_csv
    from snn4_ros.eval.metrics import compute_metrics
    from snn4_ros.models.datasets import load_dataset
    from snn4_ros.models.evaluate import evaluate

    tr = syn_trace
    tr.labels, _ = check_labels(load_labels_csv(rec["labels"]), tr.classes, tr.t_first_ns,
                                tr.t_last_ns, syn)
    m = compute_metrics([tr])
    clips = evaluate(net, load_dataset(f"bag:{syn}", net.cfg, train=False))
    out["synthetic22/labelled"] = {k: m[k] for k in (
        "accuracy", "first_decision_accuracy", "bin_accuracy", "onset_latency_ms_p50",
        "false_commands_per_min", "wrong_commands_per_min", "intervals")} | {
        "eval_bag_clips_accuracy": clips["accuracy"]}
    lab = out["synthetic22/labelled"]
    print(f"synthetic22 with labels: accuracy {lab['accuracy']:.3f} (majority per interval, "
          f"n={lab['intervals']}), first decision {lab['first_decision_accuracy']:.3f}, per bin "
          f"{lab['bin_accuracy']:.3f}, onset -> correct p50 {lab['onset_latency_ms_p50']:.0f} ms, "
          f"false commands {lab['false_commands_per_min']:.2f}/min; snn4 eval on the same "
          f"intervals as clips: {lab['eval_bag_clips_accuracy']:.3f}")
    emit("replay_throughput", out)


if __name__ == "__main__":
    main()

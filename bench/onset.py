"""Gesture onset -> first command: the latency a person feels, against false commands.

    python bench/onset.py [--gestures 12] [--seed 3]

Records a labelled synthetic bag (``snn4 record-synthetic``'s code), replays it in process
through the live code (``snn4 replay``: the pipeline and the controller on the bag's clock)
once per controller setting, and prints for each: onset -> first command of the gesture's
action (p50), onset -> first confident correct decision, accuracy (majority per interval),
false and wrong command episodes per minute. The first row is the shipped configuration
(config/perception.yaml); TrueNorth's DVS-gesture system identified a gesture's onset in
105 ms (Amir et al., CVPR 2017). The last line is one JSON object, also written to
bench/results/onset.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from _common import Run  # noqa: E402

SETTINGS = [  # (label, controller parameters)
    ("shipped", {}),
    ("debounce 2", {"debounce": 2}),
    ("debounce 1", {"debounce": 1}),
    ("debounce 1, p >= 0.9", {"debounce": 1, "min_confidence": 0.9}),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gestures", type=int, default=12)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()

    import torch
    import yaml

    from snn4_ros.eval.inprocess import ReplayOptions, replay
    from snn4_ros.eval.metrics import compute_metrics
    from snn4_ros.events.labels import check_labels, load_labels_csv
    from snn4_ros.events.recording import record_synthetic
    from snn4_ros.models import checkpoint
    from snn4_ros.models.zoo import find_model

    torch.set_num_threads(1)
    shipped = yaml.safe_load((ROOT / "config" / "perception.yaml").read_text())
    base = {k: v for k, v in shipped["nodes"]["gesture_controller"]["parameters"].items()
            if k in ("min_confidence", "debounce", "hold_s", "deadman_s")}
    with Run("onset") as run:
        tmp = Path(tempfile.mkdtemp())
        rec = record_synthetic(tmp / "onset", gestures=args.gestures, seed=args.seed)
        net, card = checkpoint.load(find_model("hybridnet_gesture_synth"))
        rows = {}
        for label, ctrl in SETTINGS:
            c = dict(base, **ctrl)
            tr = replay(rec["bag"], net, ReplayOptions(controller=c), card=card)
            tr.labels, _ = check_labels(load_labels_csv(rec["labels"]), tr.classes,
                                        tr.t_first_ns, tr.t_last_ns, rec["bag"])
            m = compute_metrics([tr], controller=c)
            rows[label] = {"controller": c, **{k: m[k] for k in (
                "onset_to_command_ms_p50", "onset_latency_ms_p50", "accuracy",
                "false_commands_per_min", "wrong_commands_per_min",
                "intervals_without_command", "intervals")}}
            r = rows[label]
            print(f"{label:<24} onset->command p50 {r['onset_to_command_ms_p50']} ms, "
                  f"onset->decision p50 {r['onset_latency_ms_p50']} ms, accuracy "
                  f"{r['accuracy']:.3f}, false {r['false_commands_per_min']:.2f}/min, wrong "
                  f"{r['wrong_commands_per_min']:.2f}/min", flush=True)
        run.emit({"bag": {"gestures": args.gestures, "seed": args.seed},
                  "truenorth_onset_ms": 105, "rows": rows,
                  "onset_to_command_ms_p50": rows["shipped"]["onset_to_command_ms_p50"],
                  "accuracy": rows["shipped"]["accuracy"]})


if __name__ == "__main__":
    main()

"""Gesture onset -> first command: the latency a person feels, against false commands.

    python bench/onset.py [--gestures 22] [--seed 3] [--windows 16,8,4] [--no-real]

Records a labelled synthetic bag (``snn4 record-synthetic``'s code), replays it in process
through the live code (``snn4 replay``: the pipeline and the controller on the bag's clock)
once per decision window (``decision_window``: the latest bins the bridge and heads read;
the model's is 16) and controller setting, and prints for each: onset -> first command of
the gesture's action (p50), onset -> first confident correct decision, accuracy (majority
per interval), false and wrong command episodes per minute. Beside it, the real clips: the
12 labelled right-hand-wave DVS128 recordings (``../shared/data/aedat4_dvs128``) replayed
with the same window and controller by the model a recording gets (the real-camera model,
``models/zoo.default_model``; it was taught on these clips, so the real column is not a
held-out figure: bench/teach.py's cross-validation is) -- clips whose command was issued
inside the labelled span, and labelled start -> first command (p50 over those). The first row is the shipped
configuration (config/perception.yaml). TrueNorth's DVS-gesture system identified a
gesture's onset in 105 ms (Amir et al., CVPR 2017). The last line is one JSON object, also
written to bench/results/onset.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from _common import Run  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SETTINGS = [  # (label, controller parameters over the shipped ones)
    ("debounce 3", {}),
    ("debounce 2", {"debounce": 2}),
    ("debounce 1", {"debounce": 1}),
    ("debounce 2, p >= 0.95", {"debounce": 2, "min_confidence": 0.95}),
]
GOAL_MS, GOAL_ACC = 105.0, 0.95


def _real(window: int, settings: list) -> dict:
    """Per controller label: clips commanded and labelled start -> first command p50, by the
    model a recording gets."""
    from snn4_ros.eval.inprocess import ReplayOptions, replay
    from snn4_ros.eval.realworld import decision_log, positive_figures
    from snn4_ros.models import checkpoint
    from snn4_ros.models.realdata import read_labels_csv
    from snn4_ros.models.zoo import default_model, find_model

    net, card = checkpoint.load(find_model(default_model("recording")))
    clips = read_labels_csv(SHARED / "aedat4_dvs128")
    logs = [decision_log(replay(str(c.path), net, ReplayOptions(window=window), card=card))
            for c in clips]
    out = {}
    for label, c in settings:
        pf = [positive_figures(lg, clip, c) for lg, clip in zip(logs, clips)]
        lat = [1e3 * (p["first_command_s"] - (clip.start_s or 0.0))
               for p, clip in zip(pf, clips) if p["commanded"]]
        out[label] = {"clips": len(clips), "commanded": sum(p["commanded"] for p in pf),
                      "start_to_command_ms_p50": round(float(np.median(lat)), 1)
                      if lat else None,
                      "wrong_episodes": sum(p["wrong_episodes"] for p in pf)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gestures", type=int, default=22)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--windows", default="16,8,4", help="decision windows (bins) to compare")
    ap.add_argument("--no-real", action="store_true", help="skip the real DVS128 clips")
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
    nodes = shipped["nodes"]
    base = {k: v for k, v in nodes["gesture_controller"]["parameters"].items()
            if k in ("min_confidence", "debounce", "hold_s", "deadman_s", "agree_window")}
    # the labelled bag is synthetic: the simulator's model, as snn4 up picks it for that source
    # (models/zoo.default_model); the config's model is the real-camera one
    from snn4_ros.models.zoo import default_model

    model = default_model("synthetic")
    shipped_window = int(nodes["snn4_inference"]["parameters"].get("decision_window", 0))
    net, card = checkpoint.load(find_model(model))
    windows = [int(w) for w in args.windows.split(",")]
    shipped_window = shipped_window or net.cfg.window
    if shipped_window not in windows:
        windows.insert(0, shipped_window)
    settings = [(label, dict(base, **c)) for label, c in SETTINGS]
    real_ok = not args.no_real and (SHARED / "aedat4_dvs128" / "labels.csv").exists()
    with Run("onset") as run:
        tmp = Path(tempfile.mkdtemp())
        rec = record_synthetic(tmp / "onset", gestures=args.gestures, seed=args.seed)
        rows = {}
        for w in windows:
            real = _real(w, settings) if real_ok else {}
            for label, c in settings:
                tr = replay(rec["bag"], net, ReplayOptions(controller=c, window=w), card=card)
                tr.labels, _ = check_labels(load_labels_csv(rec["labels"]), tr.classes,
                                            tr.t_first_ns, tr.t_last_ns, rec["bag"])
                m = compute_metrics([tr], controller=c)
                key = f"window {w}, {label}"
                rows[key] = {"window": w, "controller": c, "shipped": w == shipped_window
                             and c == base, **{k: m[k] for k in (
                                 "onset_to_command_ms_p50", "onset_latency_ms_p50",
                                 "accuracy", "false_commands_per_min",
                                 "wrong_commands_per_min", "false_command_episodes",
                                 "wrong_command_episodes", "intervals_without_command",
                                 "intervals")}, "real": real.get(label)}
                r = rows[key]
                rr = r["real"] or {}
                print(f"{key:<34} onset->command p50 {r['onset_to_command_ms_p50']} ms, "
                      f"onset->decision p50 {r['onset_latency_ms_p50']} ms, accuracy "
                      f"{r['accuracy']:.3f}, false {r['false_commands_per_min']:.2f}/min, "
                      f"wrong {r['wrong_commands_per_min']:.2f}/min; real: "
                      f"{rr.get('commanded')}/{rr.get('clips')} commanded, p50 "
                      f"{rr.get('start_to_command_ms_p50')} ms", flush=True)
        ship = next(r for r in rows.values() if r["shipped"])
        ok = [(k, r) for k, r in rows.items() if r["accuracy"] >= GOAL_ACC
              and r["onset_to_command_ms_p50"] is not None]
        best_k, best = min(ok, key=lambda kr: kr[1]["onset_to_command_ms_p50"]) if ok \
            else (None, None)
        run.emit({"bag": {"gestures": args.gestures, "seed": args.seed,
                          "intervals": ship["intervals"]},
                  "model": model, "real_model": default_model("recording") if real_ok else None,
                  "truenorth_onset_ms": 105, "goal_ms": GOAL_MS,
                  "goal_accuracy": GOAL_ACC, "rows": rows,
                  "onset_to_command_ms_p50": ship["onset_to_command_ms_p50"],
                  "accuracy": ship["accuracy"],
                  "goal_met_shipped": ship["onset_to_command_ms_p50"] is not None
                  and ship["onset_to_command_ms_p50"] <= GOAL_MS
                  and ship["accuracy"] >= GOAL_ACC,
                  "fastest_at_goal_accuracy": best_k,
                  "fastest_onset_to_command_ms_p50": best and best["onset_to_command_ms_p50"],
                  "goal_met_any": bool(best and best["onset_to_command_ms_p50"] <= GOAL_MS)})


if __name__ == "__main__":
    main()

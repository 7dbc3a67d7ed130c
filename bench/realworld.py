"""Real-world figures of a gesture model: real positives, every real non-gesture recording,
synthetic accuracy -- and the cross-validated figures of its model card.

    python bench/realworld.py [--model M] [--nmnist N]

* positives: the 12 labelled right-hand-wave DVS128 clips (``../shared/data/aedat4_dvs128``):
  sliding-window majority per clip (``snn4 eval``'s figure) and whether the controller issued
  the clip's command in a replay (``snn4 replay``'s code path);
* negatives: every shared recording without a command gesture (5 AEDAT2 recordings, both
  rosbag2 bags, the Prophesee RAW file, the N-MNIST folder as one stream of saccades):
  command episodes per minute and the fraction of ticks moving, through the replay;
* synthetic accuracy on fresh clips from unseen simulated sensors (``synthetic:30:2``).

A model from ``snn4 finetune-real`` is trained on the 12 positives and the AEDAT2/bag
negatives: its figures on those are NOT evidence (printed as "trained on"); the evidence is
its card's cross-validated figures (every clip and recording scored by a model that never
saw it), printed first. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="hybridnet_gesture_synth",
                    help="shipped model name or checkpoint (e.g. one from snn4 finetune-real)")
    ap.add_argument("--nmnist", type=int, default=1000,
                    help="N-MNIST samples in the saccade stream (0: skip)")
    args = ap.parse_args()

    import torch

    from snn4_ros.eval.realworld import (SHIPPED_CONTROLLER, negative_figures,
                                         positive_figures, replay_logs)
    from snn4_ros.models import checkpoint
    from snn4_ros.models.datasets import load_dataset
    from snn4_ros.models.evaluate import evaluate
    from snn4_ros.models.finetune import summarize_windowed, windowed_scores
    from snn4_ros.models.realdata import read_labels_csv
    from snn4_ros.models.zoo import find_model

    torch.set_num_threads(2)
    net, card = checkpoint.load(find_model(args.model))
    ctrl = card.get("controller") or SHIPPED_CONTROLLER
    trained = card.get("real_training_recordings", {})
    trained_names = {Path(p).name for p in trained.get("positives", []) + trained.get(
        "negatives", [])}
    # a taught model (snn4 teach): its demonstrations, "nothing" included, are trained on
    trained_names |= {Path(d["source"]).name
                      for d in (card.get("teach") or {}).get("demonstrations", [])}
    out: dict = {"model": args.model, "controller": ctrl}

    cv = card.get("crossvalidated")
    if cv:
        print(f"cross-validated ({cv['how']}):")
        print(f"  positives: {cv['clips_majority_right']}/{cv['clips']} clips right by window "
              f"majority (one clip = {100 / cv['clips']:.1f} points), windows "
              f"{cv['windows_right']}/{cv['windows']}, commanded by the controller "
              f"{cv['clips_commanded']}/{cv['clips']}")
        for n in cv["negatives"]:
            print(f"  negative {Path(n['recording']).name:<34} {n['duration_s']:7.1f} s "
                  f"{n['episodes']:3d} episodes {n['episodes_per_min']:6.2f}/min "
                  f"{100 * n['moving_fraction']:5.1f} % moving")
        out["crossvalidated"] = cv
    cv = card.get("cross_validated")             # tools/train_models.sh real (bench/teach.py)
    if cv:
        print(f"cross-validated ({cv['how']}):")
        print(f"  positives: {cv['clips_recognised']} held-out clips commanded "
              f"(per fold {' '.join(cv['per_fold'])})")
        for n, r in cv["negatives_held_out_per_recording"].items():
            print(f"  negative {n:<34} held out in {r['held_out_in_folds']} folds "
                  f"{r['duration_s']:7.1f} s {r['episodes']:3d} episodes, worst fold "
                  f"{r['max_episodes_per_min']:.2f}/min")
        out["cross_validated"] = cv

    clips = read_labels_csv(SHARED / "aedat4_dvs128")
    recs = windowed_scores(net, clips)
    win = summarize_windowed(recs)
    pos = [positive_figures(lg, c, ctrl)
           for lg, c in zip(replay_logs(net, [str(c.path) for c in clips]), clips)]
    tag = " (trained on: not evidence)" if any(c.name in trained_names for c in clips) else ""
    print(f"shipped model on the 12 positives{tag}: {win['clips_right']}/{win['clips']} by "
          f"window majority, windows {win['windows_right']}/{win['windows']}, commanded "
          f"{sum(p['commanded'] for p in pos)}/{len(pos)}")
    out["positives"] = {**win, "commanded": sum(p["commanded"] for p in pos),
                        "trained_on": bool(tag)}

    negs = sorted(str(p) for p in (SHARED / "aedat2_dvs128").glob("*.aedat"))
    negs += [str(SHARED / "rosbag2" / "evt3_trigger"), str(SHARED / "rosbag2" /
                                                             "libcaer_rollover"),
             str(SHARED / "prophesee" / "evt3_sample.raw")]
    if args.nmnist:
        negs.append(str(SHARED / "nmnist_train1k"))
    rows = []
    for lg in replay_logs(net, negs):
        r = negative_figures(lg, ctrl)
        r["trained_on"] = Path(r["recording"]).name in trained_names
        rows.append(r)
        print(f"  negative {Path(r['recording']).name:<34} {r['duration_s']:7.1f} s "
              f"{r['episodes']:3d} episodes {r['episodes_per_min']:6.2f}/min "
              f"{100 * r['moving_fraction']:5.1f} % moving"
              + (" (trained on)" if r["trained_on"] else " (never trained on)"))
    out["negatives"] = rows
    out["negatives_worst_per_min"] = max(r["episodes_per_min"] for r in rows)

    from snn4_ros.models.datasets import DatasetSpecError

    try:
        res = evaluate(net, load_dataset("synthetic:30:2", net.cfg, train=False))
        print(f"synthetic (synthetic:30:2, unseen simulated sensors): accuracy "
              f"{res['accuracy']:.4f} (n={res['n']})")
        out["synthetic"] = {"accuracy": res["accuracy"], "n": res["n"]}
    except DatasetSpecError:             # e.g. the real-camera model: wave or none only
        print(f"synthetic: not applicable (the model's classes {list(net.cfg.classes)} are "
              "not the simulator's 11)")
        out["synthetic"] = None
    print(json.dumps(out, default=float))


if __name__ == "__main__":
    main()

"""`snn4 teach` on real DVS128 clips, cross-validated: R-STDP vs gradient (and baselines).

    python bench/teach.py [--folds 4] [--k 5] [--nmnist 100] [--rules rstdp,gradient,...]

The 12 labelled right-hand-wave clips of ../shared/data/aedat4_dvs128 are shuffled (seed) and
rotated into folds (by ``--step`` clips): each fold teaches the gesture "wave" from K clips (each clip one
demonstration, its labelled range) plus 4 s of "nothing" from one real walking recording
(alternating between two), and scores the other clips: a clip is recognised when the
controller starts a "wave" command episode inside its labelled range (through ``snn4 replay``'s
code). False commands: command episodes per minute on every real recording without a command
gesture (AEDAT2 walking/standing/clamp, both rosbag2 bags, the Prophesee RAW file, the first
N-MNIST samples); the recording that gave a fold its "nothing" counts only where it was not
shown (``held_out`` figures exclude it). Every rule sees the same folds and the same features:

* ``rstdp``    prototype readout, imprinted, then reward-modulated STDP (the default);
* ``gradient`` prototype readout, imprinted, then AdamW on cross-entropy;
* ``imprint``  prototype readout, the demonstrations' mean features only;
* ``linear``   a linear readout trained by gradient (the usual fine-tuning head).

With 12 clips, one clip is ~8 points of recognition rate (7 held-out clips per fold: ~14).
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
NOTHING = [("aedat2_dvs128/alex_walking_again.aedat", 0.0, 4.0),
           ("aedat2_dvs128/neal_walking.aedat", 0.0, 4.0)]
ACTIONS = {"gestures": {"wave": "turn_left"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--k", type=int, default=5, help="demonstrations per fold")
    ap.add_argument("--step", type=int, default=3,
                    help="clips the teaching set moves by from fold to fold (so --folds 3 "
                         "gives the first 3 of the 4 default folds)")
    ap.add_argument("--nmnist", type=int, default=100, help="N-MNIST samples as negatives")
    ap.add_argument("--rules", default="rstdp,gradient,imprint,linear")
    ap.add_argument("--base", default="hybridnet_gesture_synth")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import numpy as np
    import torch

    from snn4_ros.eval.recognition import (clip_recognised, false_commands, real_negatives,
                                         summarise_negatives)
    from snn4_ros.events.capture import read_session_csv, takes_from_file
    from snn4_ros.models import checkpoint
    from snn4_ros.models.teach import TeachConfig, teach
    from snn4_ros.models.zoo import find_model

    torch.set_num_threads(1)
    base, _ = checkpoint.load(find_model(args.base))
    clips = read_session_csv(DATA / "aedat4_dvs128" / "labels.csv")
    order = np.random.default_rng(args.seed).permutation(len(clips))
    negatives = real_negatives(DATA, args.nmnist)
    rules = args.rules.split(",")
    results: dict = {r: {"folds": []} for r in rules}
    step = args.step
    for f in range(args.folds):
        taught = [clips[i] for i in np.roll(order, -f * step)[:args.k]]
        held = [c for c in clips if c not in taught]
        npath, a, b = NOTHING[f % len(NOTHING)]
        demos = [t for p, _, s, e in taught for t in takes_from_file(p, "wave", s, e)]
        demos += takes_from_file(str(DATA / npath), "none", a, b)
        for rule in rules:
            cfg = TeachConfig(rule="gradient", readout="linear") if rule == "linear" \
                else TeachConfig(rule=rule)
            cfg.seed = args.seed
            cfg.loo = False
            t0 = time.perf_counter()
            res = teach(base, demos, cfg)
            secs = time.perf_counter() - t0
            rec = [clip_recognised(res.net, p, "wave", s, e, ACTIONS) for p, _, s, e in held]
            negs = {name: false_commands(res.net, paths, ACTIONS, name)
                    for name, paths in negatives.items()}
            nothing_name = Path(npath).stem
            held_out = [r for n, r in negs.items() if n != nothing_name]
            fold = {"taught": [Path(p).name for p, *_ in taught],
                    "nothing": f"{npath}@{a}-{b}",
                    "recognised": sum(r["recognised"] for r in rec), "held_out_clips": len(rec),
                    "clips": {Path(r["path"]).name: r["recognised"] for r in rec},
                    "teach_seconds": round(secs, 2),
                    "negatives": {n: r.as_dict() for n, r in negs.items()},
                    "negatives_held_out": summarise_negatives(held_out)}
            results[rule]["folds"].append(fold)
            worst = fold["negatives_held_out"]["max_episodes_per_min"]
            print(f"fold {f + 1}/{args.folds} {rule:<9} recognised {fold['recognised']}/"
                  f"{len(rec)}  teach {secs:5.1f} s  false commands: max "
                  f"{worst:.2f}/min over held-out negatives "
                  f"({fold['negatives_held_out']['total_duration_s']:.0f} s, "
                  f"{fold['negatives_held_out']['total_episodes']} episodes)", flush=True)
            for n, r in negs.items():
                mark = " (nothing source: partly seen)" if n == nothing_name else ""
                print(f"    {n:<32} {r.duration_s:6.1f} s {r.episodes:3d} episodes "
                      f"{r.per_min:6.2f}/min{mark}", flush=True)
    for rule in rules:
        fs = results[rule]["folds"]
        results[rule]["recognised"] = f"{sum(x['recognised'] for x in fs)}/" \
                                      f"{sum(x['held_out_clips'] for x in fs)}"
        results[rule]["recognised_per_fold"] = [f"{x['recognised']}/{x['held_out_clips']}"
                                                for x in fs]
        results[rule]["max_false_per_min_held_out"] = max(
            x["negatives_held_out"]["max_episodes_per_min"] for x in fs)
        results[rule]["teach_seconds_max"] = max(x["teach_seconds"] for x in fs)
    print("\nrule       recognised (per fold)              worst false cmd/min  teach s (max)")
    for rule in rules:
        r = results[rule]
        print(f"{rule:<10} {r['recognised']:<7} {' '.join(r['recognised_per_fold']):<28} "
              f"{r['max_false_per_min_held_out']:8.2f}           {r['teach_seconds_max']:.1f}")
    print(json.dumps({"bench": "teach", "base": args.base, "k": args.k, "folds": args.folds,
                      "seed": args.seed, "results": results}))


if __name__ == "__main__":
    main()

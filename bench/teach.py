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
    ap.add_argument("--nothing", action="append", metavar="REC@A-B[,REC@A-B...]",
                    help="a 'nothing' set (paths relative to ../shared/data); repeat it to run "
                         "every fold once per set, so that each recording is held out under "
                         "some set; default: 4 s of one walking recording, alternating between "
                         "two from fold to fold")
    ap.add_argument("--gesture", default="wave",
                    help="the taught name; a gesture of the base model (right_hand_wave) is "
                         "taught as a real-data version of it (--base-gestures), which is how "
                         "the shipped real-camera model is made: `--gesture right_hand_wave "
                         "--k 9 --step 3 --folds 4` cross-validates its recipe (every clip "
                         "held out once)")
    args = ap.parse_args()

    import torch

    from snn4_ros.eval.recognition import (NOTHING_PAIRS as NOTHING, clip_recognised,
                                           false_commands, real_negatives, summarise_negatives,
                                           teach_folds)
    from snn4_ros.events.capture import read_session_csv, takes_from_file
    from snn4_ros.models import checkpoint
    from snn4_ros.models.teach import TeachConfig, teach
    from snn4_ros.models.zoo import find_model

    torch.set_num_threads(1)
    base, _ = checkpoint.load(find_model(args.base))
    if args.nothing:
        from snn4_ros.events.capture import parse_range
        sets = [[parse_range(r.strip()) for r in spec.split(",")] for spec in args.nothing]
        runs = [(f, ns) for ns in sets for f in range(args.folds)]
    else:
        runs = [(f, [NOTHING[f % len(NOTHING)]]) for f in range(args.folds)]
    name = args.gesture
    as_base = name in base.cfg.classes
    # a new name turns left; a real version of a base gesture keeps its default action
    actions = {} if as_base else {"gestures": {name: "turn_left"}}
    clips = read_session_csv(DATA / "aedat4_dvs128" / "labels.csv")
    split = teach_folds(len(clips), args.k, args.step, args.folds, args.seed)
    negatives = real_negatives(DATA, args.nmnist)
    rules = args.rules.split(",")
    results: dict = {r: {"folds": []} for r in rules}
    step = args.step
    for f, nothing in runs:
        taught = [clips[i] for i in split[f][0]]
        held = [clips[i] for i in split[f][1]]
        demos = [t for p, _, s, e in taught for t in takes_from_file(p, name, s, e)]
        for npath, a, b in nothing:
            demos += takes_from_file(str(DATA / npath), "none", a, b)
        for rule in rules:
            cfg = TeachConfig(rule="gradient", readout="linear") if rule == "linear" \
                else TeachConfig(rule=rule)
            cfg.seed = args.seed
            cfg.loo = False
            cfg.base_gestures = as_base
            t0 = time.perf_counter()
            res = teach(base, demos, cfg)
            secs = time.perf_counter() - t0
            rec = [clip_recognised(res.net, p, name, s, e, actions) for p, _, s, e in held]
            negs = {n: false_commands(res.net, paths, actions, n)
                    for n, paths in negatives.items()}
            seen = {Path(p).stem for p, _, _ in nothing}
            held_out = [r for n, r in negs.items() if n not in seen]
            fold = {"taught": [Path(p).name for p, *_ in taught],
                    "nothing": [f"{p}@{a}-{b}" for p, a, b in nothing],
                    "recognised": sum(r["recognised"] for r in rec), "held_out_clips": len(rec),
                    "clips": {Path(r["path"]).name: r["recognised"] for r in rec},
                    "teach_seconds": round(secs, 2),
                    "negatives": {n: r.as_dict() for n, r in negs.items()},
                    "nothing_recordings": sorted(seen),
                    "negatives_held_out": summarise_negatives(held_out)}
            results[rule]["folds"].append(fold)
            worst = fold["negatives_held_out"]["max_episodes_per_min"]
            print(f"fold {f + 1}/{args.folds} {rule:<9} recognised {fold['recognised']}/"
                  f"{len(rec)}  teach {secs:5.1f} s  false commands: max "
                  f"{worst:.2f}/min over held-out negatives "
                  f"({fold['negatives_held_out']['total_duration_s']:.0f} s, "
                  f"{fold['negatives_held_out']['total_episodes']} episodes)", flush=True)
            for n, r in negs.items():
                mark = " (nothing source: partly seen)" if n in seen else ""
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
        # per recording, over the folds that held it out: episodes / minutes of recording
        per: dict = {}
        for x in fs:
            for n, r in x["negatives"].items():
                if n in x["nothing_recordings"]:
                    continue
                p = per.setdefault(n, {"held_out_in_folds": 0, "duration_s": 0.0,
                                       "episodes": 0, "max_episodes_per_min": 0.0})
                p["held_out_in_folds"] += 1
                p["duration_s"] = round(p["duration_s"] + r["duration_s"], 2)
                p["episodes"] += r["episodes"]
                p["max_episodes_per_min"] = max(p["max_episodes_per_min"],
                                                r["episodes_per_min"])
        results[rule]["negatives_held_out_per_recording"] = per
    print("\nrule       recognised (per fold)              worst false cmd/min  teach s (max)")
    for rule in rules:
        r = results[rule]
        print(f"{rule:<10} {r['recognised']:<7} {' '.join(r['recognised_per_fold']):<28} "
              f"{r['max_false_per_min_held_out']:8.2f}           {r['teach_seconds_max']:.1f}")
    for rule in rules:
        print(f"\n{rule}: each real recording without a gesture, over the folds that held it out")
        for n, p in results[rule]["negatives_held_out_per_recording"].items():
            print(f"    {n:<32} held out in {p['held_out_in_folds']} folds, {p['duration_s']:7.1f} s, "
                  f"{p['episodes']:3d} episodes, worst fold {p['max_episodes_per_min']:.2f}/min")
    print(json.dumps({"bench": "teach", "base": args.base, "gesture": name, "k": args.k,
                      "step": step, "folds": args.folds,
                      "seed": args.seed, "results": results}))


if __name__ == "__main__":
    main()

"""Calibrated confidence for the real-camera model: temperature scaling on held-out real data.

    python bench/calibration.py [--folds 4] [--k 9] [--step 3] [--nmnist 100] [--logs DIR]

The shipped real-camera recipe (``snn4 teach --base-gestures``, R-STDP, 9 of the 12 real
DVS128 waves + 4 s of each of two real recordings as "none", see tools/train_models.sh real)
is re-run as its cross-validation runs it: 4 folds (every clip held out once) x 2 "nothing"
pairs. Each run's model replays, through the in-process replay code, its 3 held-out wave
clips and every real recording without a gesture except the two it was shown. Every decision is kept (out-of-fold decisions):

* decisions inside a wave clip's labelled range are labelled ``right_hand_wave``;
* every decision on a recording without a gesture is labelled ``none``.

Then, with no new replay:

* **calibration, cross-fitted**: the folds split in two halves; a temperature fitted on one
  half (class-balanced NLL, models/calibration.py) is scored on the other, and the other way
  round: expected calibration error (10 bins) and NLL before/after, per half;
* **the temperature for the whole set** (what a shipped model would carry), and the
  reliability diagram before/after (docs/calibration.png);
* **the trade-off curve** the controller's confidence gate draws on these held-out decisions
  (``simulate_controller``: the replay's controller, re-run offline): waves commanded vs
  false command episodes per minute (worst recording and pooled), for raw thresholds and for
  the same thresholds read as calibrated confidence.

Writes bench/results/calibration.json; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
GESTURE = "right_hand_wave"
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def fold_logs(args, base, clips, negatives, log_dir: Path | None):
    """Out-of-fold decision logs: [(fold, positive pairs, negative logs)], one per fold and
    "nothing" pair."""
    from snn4_ros.eval.realworld import load_logs, replay_logs, save_logs
    from snn4_ros.eval.recognition import SHIPPED_NOTHING_SETS, teach_folds
    from snn4_ros.events.capture import takes_from_file
    from snn4_ros.models.teach import TeachConfig, teach

    out = []
    split = teach_folds(len(clips), args.k, args.step, args.folds, args.seed)
    runs = [(f, n) for n in range(len(SHIPPED_NOTHING_SETS)) for f in range(args.folds)]
    for f, n in runs:
        taught, held = split[f]
        nothing = SHIPPED_NOTHING_SETS[n]
        cache = log_dir / f"fold{f}_pair{n}" if log_dir else None
        if cache and Path(f"{cache}.json").exists():
            pos, neg = load_logs(cache)
            out.append((f, pos, neg))
            print(f"fold {f + 1}/{args.folds}, pair {n + 1}: decision logs from {cache}",
                  flush=True)
            continue
        t0 = time.perf_counter()
        demos = [t for i in taught for t in takes_from_file(str(clips[i].path), GESTURE,
                                                            clips[i].start_s, clips[i].end_s)]
        for npath, a, b in nothing:
            demos += takes_from_file(str(DATA / npath), "none", a, b)
        cfg = TeachConfig(rule="rstdp", seed=args.seed, loo=False, base_gestures=True)
        net = teach(base, demos, cfg).net
        held_clips = [clips[i] for i in held]
        pos = list(zip(replay_logs(net, [str(c.path) for c in held_clips]), held_clips))
        seen = {Path(p).stem for p, _, _ in nothing}
        neg = [lg for name, paths in negatives.items() if name not in seen
               for lg in replay_logs(net, [str(p) for p in paths])]
        if cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            save_logs(cache, pos, neg)
        out.append((f, pos, neg))
        print(f"fold {f + 1}/{args.folds}, pair {n + 1}: taught {len(taught)} clips + "
              f"{'/'.join(sorted(seen))}, replayed "
              f"{len(pos)} held-out clips and {len(neg)} negative recordings in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    return out


def labelled(pos, neg, classes):
    """(probs [N, C], labels [N]) of the decisions a label covers."""
    import numpy as np

    g, none = classes.index(GESTURE), classes.index("none")
    P, y = [], []
    for lg, c in pos:
        a = lg["t_first"] + int((c.start_s or 0.0) * 1e9)
        b = lg["t_last"] if c.end_s is None else lg["t_first"] + int(c.end_s * 1e9)
        m = (lg["dec_t"] >= a) & (lg["dec_t"] <= b)
        P.append(lg["probs"][m]), y.append(np.full(int(m.sum()), g))
    for lg in neg:
        if len(lg["dec_t"]):
            P.append(lg["probs"]), y.append(np.full(len(lg["dec_t"]), none))
    return np.concatenate(P), np.concatenate(y)


def scaled_logs(logs, temperature):
    from snn4_ros.models.calibration import apply_temperature
    return [dict(lg, probs=apply_temperature(lg["probs"], temperature)) if len(lg["dec_t"])
            else lg for lg in logs]


def curve(pos, neg, temperature: float) -> list[dict]:
    """The controller's trade-off over ``THRESHOLDS`` of (calibrated at ``temperature``)
    confidence: waves commanded, false command episodes per minute -- worst recording (the
    100 N-MNIST samples counted as one recording, as bench/teach.py does) and pooled."""
    from collections import defaultdict

    from snn4_ros.eval.realworld import negative_figures, positive_figures
    from snn4_ros.runtime.control import ControllerConfig

    d = ControllerConfig()
    sp = scaled_logs([lg for lg, _ in pos], temperature)
    sn = scaled_logs(neg, temperature)
    rows = []
    for c in THRESHOLDS:
        g = {"min_confidence": c, "debounce": d.debounce, "agree_window": d.agree_window}
        hits = sum(positive_figures(lg, clip, g)["commanded"] for lg, (_, clip) in zip(sp, pos))
        per = defaultdict(lambda: [0, 0.0])
        for lg in sn:
            r = negative_figures(lg, g)
            name = "nmnist_train1k" if "nmnist_train1k" in lg["source"] else lg["source"]
            per[name][0] += r["episodes"]
            per[name][1] += r["duration_s"]
        eps = sum(e for e, _ in per.values())
        mins = sum(t for _, t in per.values()) / 60
        rows.append({"min_confidence": c, "recognised": f"{hits}/{len(pos)}",
                     "false_episodes": eps,
                     "false_per_min_worst": round(max(e / t * 60 for e, t in per.values()
                                                      if t > 0), 2),
                     "false_per_min_pooled": round(eps / mins, 3) if mins else 0.0})
    return rows


def plot(path: Path, before: dict, after: dict, temperature: float, curves: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4.2))
    ax.plot([0, 1], [0, 1], color="0.7", lw=1, label="perfect")
    for rel, lab in ((before, "raw (T = 1)"), (after, f"calibrated (T = {temperature:.2f})")):
        xs = [b["confidence"] for b in rel["bins"]]
        ys = [b["accuracy"] for b in rel["bins"]]
        ax.plot(xs, ys, "o-", label=f"{lab}: ECE {rel['ece']:.3f}")
    ax.set(xlabel="confidence", ylabel="accuracy", xlim=(0.45, 1.01), ylim=(0, 1.02),
           title=f"held-out real decisions (n = {before['n']})")
    ax.legend(fontsize=8)
    for lab, rows in curves.items():
        rec = [int(r["recognised"].split("/")[0]) / int(r["recognised"].split("/")[1])
               for r in rows]
        bx.plot([r["false_per_min_pooled"] for r in rows], rec, "o-", label=lab)
        for r, v in zip(rows, rec):
            bx.annotate(f"{r['min_confidence']}", (r["false_per_min_pooled"], v), fontsize=6)
    bx.set(xlabel="false command episodes per minute (pooled, held-out real negatives)",
           ylabel="real waves commanded", title="controller gate: min_confidence")
    bx.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--k", type=int, default=9)
    ap.add_argument("--step", type=int, default=3)
    ap.add_argument("--nmnist", type=int, default=100, help="N-MNIST samples as negatives")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--base", default="hybridnet_gesture_synth")
    ap.add_argument("--logs", default="out/calibration_logs",
                    help="cache of the held-out decision logs (reused when present)")
    ap.add_argument("--plot", default="docs/calibration.png")
    args = ap.parse_args()

    import numpy as np
    import torch

    from _common import Run
    from snn4_ros.eval.recognition import real_negatives
    from snn4_ros.models import checkpoint
    from snn4_ros.models.calibration import (apply_temperature, fit_temperature, nll,
                                             reliability)
    from snn4_ros.models.realdata import read_labels_csv
    from snn4_ros.models.zoo import find_model

    torch.set_num_threads(1)
    run = Run("calibration").__enter__()
    base, _ = checkpoint.load(find_model(args.base))
    clips = read_labels_csv(DATA / "aedat4_dvs128")
    negatives = real_negatives(DATA, args.nmnist)
    folds = fold_logs(args, base, clips, negatives, Path(args.logs) if args.logs else None)
    classes = list(folds[0][2][0]["classes"])

    def pooled(fs):
        parts = [labelled(p, n, classes) for _, p, n in fs]
        return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])

    halves = [[x for x in folds if x[0] % 2 == h] for h in (0, 1)]
    cross = []
    for h in (0, 1):
        Pf, yf = pooled(halves[h])
        Pe, ye = pooled(halves[1 - h])
        T = fit_temperature(Pf, yf)
        cross.append({"fitted_on_folds": sorted({x[0] + 1 for x in halves[h]}),
                      "scored_on_folds": sorted({x[0] + 1 for x in halves[1 - h]}),
                      "temperature": round(T, 4), "decisions": int(len(ye)),
                      "ece_before": round(reliability(Pe, ye)["ece"], 4),
                      "ece_after": round(reliability(apply_temperature(Pe, T), ye)["ece"], 4),
                      "nll_before": round(nll(Pe, ye), 4),
                      "nll_after": round(nll(Pe, ye, T), 4)})
        print(f"fit on folds {cross[-1]['fitted_on_folds']} -> T {T:.3f}; on folds "
              f"{cross[-1]['scored_on_folds']} ({len(ye)} decisions): ECE "
              f"{cross[-1]['ece_before']:.3f} -> {cross[-1]['ece_after']:.3f}, balanced NLL "
              f"{cross[-1]['nll_before']:.3f} -> {cross[-1]['nll_after']:.3f}", flush=True)
    P, y = pooled(folds)
    T = fit_temperature(P, y)
    T_plain = fit_temperature(P, y, balanced=False)
    before, after = reliability(P, y), reliability(apply_temperature(P, T), y)
    pos = [pair for _, p, _ in folds for pair in p]
    neg = [lg for _, _, n in folds for lg in n]
    curves = {"raw confidence (T = 1)": curve(pos, neg, 1.0),
              f"calibrated (T = {T:.2f})": curve(pos, neg, T)}
    print(f"all folds ({len(y)} decisions: {int((y == classes.index(GESTURE)).sum())} in wave "
          f"ranges, {int((y == classes.index('none')).sum())} on real negatives): T {T:.3f}, "
          f"ECE {before['ece']:.3f} -> {after['ece']:.3f}; the plain (unbalanced) NLL fit: T "
          f"{T_plain:.3f}, ECE {reliability(apply_temperature(P, T_plain), y)['ece']:.3f}")
    print("\nmin_confidence  " + "  ".join(f"{k:<40}" for k in curves))
    for i, c in enumerate(THRESHOLDS):
        print(f"{c:<15} " + "  ".join(
            f"{rows[i]['recognised']:>5} waves, {rows[i]['false_per_min_worst']:5.2f}/min worst, "
            f"{rows[i]['false_per_min_pooled']:5.3f} pooled" for rows in curves.values()))
    if args.plot:
        plot(ROOT / args.plot, before, after, T, curves)
        print(f"plot: {args.plot}")
    res = {"bench": "calibration", "recipe": {"gesture": GESTURE, "k": args.k, "step": args.step,
                                                "folds": args.folds, "seed": args.seed,
                                                "base": args.base, "nmnist": args.nmnist},
           "decisions": int(len(y)),
           "decisions_wave": int((y == classes.index(GESTURE)).sum()),
           "decisions_none": int((y == classes.index("none")).sum()),
           "negative_seconds": round(sum(lg["duration_s"] for lg in neg), 1),
           "cross_fitted": cross, "temperature": round(T, 4),
           "temperature_unbalanced_nll": round(T_plain, 4),
           "ece_unbalanced_fit": round(reliability(apply_temperature(P, T_plain), y)["ece"], 4),
           "ece_before": round(before["ece"], 4), "ece_after": round(after["ece"], 4),
           "reliability_before": before, "reliability_after": after, "tradeoff": curves,
           "plot": args.plot}
    run.emit(res)


if __name__ == "__main__":
    main()

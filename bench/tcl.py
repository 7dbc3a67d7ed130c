"""Self-supervised adaptation (TCL) on unlabelled real recordings: with vs without.

    python bench/tcl.py [--steps 150] [--synthetic 20] [--teach-folds 2]

Three backbones, the same everything else:

* ``base``   the shipped model's backbone as it is (trained on synthetic clips only);
* ``adabn``  its batch-norm statistics re-estimated on the real streams (the cheap control);
* ``tcl``    adapted by temporal contrastive learning on the real streams (models/tcl.py).

Unlabelled real streams: every real recording in ../shared/data long enough for a pair of
windows (the 15 DVS128 AEDAT4 clips -- labels unused --, the 5 AEDAT2 recordings, both
rosbag2 bags; the Prophesee file is 9 ms and N-MNIST samples 0.3 s: too short). Adapting on
the clips that are scored later is transductive (unlabelled target data); the numbers say so.

Then, with the backbone frozen, the heads are trained on ``synthetic:N`` labelled clips
(``train_heads_frozen``, same seed and recipe for all three; fine-tuned from the shipped
heads, or from scratch with ``--fresh-heads``) and the result is measured:
synthetic accuracy (fresh clips, seed 3), the 12 real right-hand-wave clips (recognised:
the controller starts a right_hand_wave command in the labelled range; and the share of bins
whose top class is right_hand_wave), false command episodes per minute on the real negatives,
and -- as a second use of the features -- ``snn4 teach`` (R-STDP) cross-validated on top of
each backbone. Writes bench/results/tcl.json; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--synthetic", type=int, default=20, help="training clips per class")
    ap.add_argument("--synthetic-test", type=int, default=3, help="test clips per class")
    ap.add_argument("--head-epochs", type=int, default=8)
    ap.add_argument("--nmnist", type=int, default=50)
    ap.add_argument("--teach-folds", type=int, default=2)
    ap.add_argument("--arms", default="base,adabn,tcl")
    ap.add_argument("--fresh-heads", action="store_true",
                    help="train the heads from scratch (default: fine-tune the shipped heads)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import numpy as np
    import torch

    from snn4_ros.eval.recognition import (clip_recognised, false_commands, real_negatives,
                                         summarise_negatives)
    from snn4_ros.events import read_recording
    from snn4_ros.events.capture import read_session_csv, takes_from_file
    from snn4_ros.models import checkpoint
    from snn4_ros.models.datasets import synthetic_data
    from snn4_ros.models.evaluate import accuracy
    from snn4_ros.models.tcl import TCLConfig, adabn, reset_heads, tcl_adapt, \
        train_heads_frozen
    from snn4_ros.models.teach import TeachConfig, recording_frames, teach
    from snn4_ros.models.zoo import find_model

    from _common import Run

    torch.set_num_threads(1)
    run = Run("tcl").__enter__()
    base, _ = checkpoint.load(find_model("hybridnet_gesture_synth"))
    paths = sorted((DATA / "aedat4_dvs128").glob("*.aedat4")) + \
        sorted((DATA / "aedat2_dvs128").glob("*.aedat")) + \
        [DATA / "rosbag2" / "evt3_trigger", DATA / "rosbag2" / "libcaer_rollover"]
    streams = []
    for p in paths:
        ea, _, _ = read_recording(p)
        f, _ = recording_frames(base, ea)
        streams.append(f)
    print(f"{len(streams)} unlabelled real streams, {sum(len(s) for s in streams)} bins "
          f"({sum(len(s) for s in streams) * base.cfg.bin_us / 1e6:.0f} s)", flush=True)
    train = synthetic_data(args.synthetic, base.cfg, seed=0, workers=1)
    test = synthetic_data(args.synthetic_test, base.cfg, seed=3, workers=1)
    clips = read_session_csv(DATA / "aedat4_dvs128" / "labels.csv")
    negatives = real_negatives(DATA, args.nmnist)
    ctrl = {}                                   # the shipped action table
    out = {}
    for arm in args.arms.split(","):
        net = copy.deepcopy(base)
        t0 = time.perf_counter()
        info: dict = {}
        if arm == "adabn":
            adabn(net, streams, seed=args.seed)
        elif arm == "tcl":
            adabn(net, streams, seed=args.seed)
            hist = tcl_adapt(net, streams, TCLConfig(steps=args.steps, seed=args.seed))
            info["tcl_loss_first_last"] = [float(np.mean(hist["loss"][:10])),
                                           float(np.mean(hist["loss"][-10:]))]
        info["adapt_seconds"] = round(time.perf_counter() - t0, 1)
        if args.fresh_heads:
            reset_heads(net, args.seed)
        train_heads_frozen(net, train, epochs=args.head_epochs, seed=args.seed)
        info["synthetic_accuracy"] = accuracy(net, test)
        info["synthetic_n"] = len(test)
        rec = [clip_recognised(net, p, "right_hand_wave", s, e, ctrl) for p, _, s, e in clips]
        info["real_recognised"] = f"{sum(r['recognised'] for r in rec)}/{len(rec)}"
        info["real_bins_top_right_hand_wave"] = round(float(np.mean(
            [r["bins_top_gesture"] for r in rec])), 3)
        negs = [false_commands(net, ps, ctrl, n) for n, ps in negatives.items()]
        info["negatives"] = {r.name: r.as_dict() for r in negs}
        info["negatives_summary"] = summarise_negatives(negs)
        # teach on top of this backbone (+ its fresh heads' shared features)
        order = np.random.default_rng(args.seed).permutation(len(clips))
        tf = []
        for f in range(args.teach_folds):
            taught = [clips[i] for i in np.roll(order, -f * 3)[:5]]
            held = [c for c in clips if c not in taught]
            demos = [t for p, _, s, e in taught for t in takes_from_file(p, "wave", s, e)]
            demos += takes_from_file(str(DATA / "aedat2_dvs128/alex_walking_again.aedat"),
                                     "none", 0.0, 4.0)
            res = teach(net, demos, TeachConfig(rule="rstdp", loo=False, seed=args.seed))
            acts = {"gestures": {"wave": "turn_left"}}
            hit = sum(clip_recognised(res.net, p, "wave", s, e, acts)["recognised"]
                      for p, _, s, e in held)
            nn_ = [false_commands(res.net, ps, acts, n) for n, ps in negatives.items()
                   if n != "alex_walking_again"]
            tf.append({"recognised": f"{hit}/{len(held)}",
                       "max_false_per_min": summarise_negatives(nn_)["max_episodes_per_min"]})
        info["teach_folds"] = tf
        out[arm] = info
        print(f"{arm:<6} adapt {info['adapt_seconds']:6.1f} s  synthetic acc "
              f"{info['synthetic_accuracy']:.3f} (n={len(test)})  real right_hand_wave "
              f"recognised {info['real_recognised']} (bins top: "
              f"{info['real_bins_top_right_hand_wave']:.2f})  false cmd max "
              f"{info['negatives_summary']['max_episodes_per_min']:.1f}/min pooled "
              f"{info['negatives_summary']['pooled_episodes_per_min']:.1f}/min  teach: "
              + ", ".join(f"{t['recognised']} / {t['max_false_per_min']:.2f} per min"
                          for t in tf), flush=True)
    run.emit({"bench": "tcl", "steps": args.steps, "synthetic_per_class": args.synthetic,
              "seed": args.seed, "arms": out})


if __name__ == "__main__":
    main()

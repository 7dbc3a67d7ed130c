"""Spike-driven self-attention (SDSA) against the plain backbone: does it earn its place?

    python bench/sdsa.py [--sdsa hybridnet_gesture_sdsa] [--base out/hybridnet_gesture_s20]
                         [--shipped hybridnet_gesture_synth] [--rounds 5] [--bins 64]

The shipped SDSA model (``hybridnet-s-sdsa``, membrane shortcut) and ``hybridnet-s`` trained
by the same (reduced) recipe beside it -- both made by ``tools/train_models.sh sdsa`` -- and,
for reference, the shipped ``hybridnet-s`` of the full gesture recipe
(``hybridnet_gesture_synth``, 7.5x the clips), measured by the same code side by side:

* **synthetic**: accuracy and the early-exit decision bin (threshold 0.9) on
  ``synthetic:30:2`` (330 fresh clips on simulated sensors no model saw): ``snn4 eval``'s
  figures;
* **CPU per bin**: the streaming runner (what the inference node runs) over the same real
  DVS128 bins, one thread, this process's CPU time, the two like-for-like models alternated
  round by round so that the machine's load falls on both alike; the ratio is the figure, the
  ms are the load's;
* **spikes**: in every spiking layer (the backbone's and the SDSA block's: queries, keys,
  values, the key-value mask, the block's output spikes) the share of values that are 0 or 1
  (spike-driven: every one), spikes per bin, and synaptic operations per bin (an input spike
  times its fan-out; in the SDSA block also the AND-and-sum of keys and values and the
  membrane shortcut's addition) beside the dense network's multiply-accumulates, on the
  synthetic test clips and on the 12 real DVS128 waves;
* **real data** (the figure that decides): each like-for-like backbone under the real-camera
  recipe (``tools/train_models.sh real``: ``snn4 teach --base-gestures`` of the right-hand
  wave, an R-STDP prototype readout, cross-validated by ``bench/teach.py --gesture
  right_hand_wave --k 9 --step 3 --folds 4`` with two 'nothing' pairs: every clip held out
  twice, every real recording without a gesture scored where it was not shown), the two runs
  in parallel processes while this one measures the rest; the shipped reference's from the
  real-camera model's card (the same command); and the simulator heads' own false command
  episodes per minute on the real negatives (``bench/realworld.py``'s figure).

Writes bench/results/sdsa.json; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Run, bench_threads  # noqa: E402

sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
# the real-camera recipe of tools/train_models.sh real, as bench/teach.py runs it
NOTHING_SETS = ("aedat2_dvs128/alex_walking_again.aedat@0-4,aedat2_dvs128/neal_walking.aedat@0-4",
                "aedat2_dvs128/alex_walking_for_10secs.aedat@0-4,"
                "aedat2_dvs128/cam289_right_clamp_test1.aedat@0-4")
TEACH_ARGS = ["--gesture", "right_hand_wave", "--k", "9", "--step", "3", "--folds", "4",
              "--rules", "rstdp"] + [a for s in NOTHING_SETS for a in ("--nothing", s)]


# ---------------------------------------------------------------------------- spikes
class SpikeTap:
    """Forward hooks on every spiking neuron of a HybridNet: per layer, how many values were
    seen, how many were 0 or 1 and how many were 1 (spikes); the SDSA block's spikes of the
    last forward are kept for its operation count (``SDSA.synops``)."""

    def __init__(self, net):
        self.net = net
        self.mods = {f"backbone.{i}": layer.neuron for i, layer in enumerate(net.backbone)}
        a = net.attn
        if a is not None:
            self.mods |= {"sdsa.q": a.q.neuron, "sdsa.k": a.k.neuron, "sdsa.v": a.v.neuron,
                          "sdsa.kv_mask": a.kv_neuron, "sdsa.out": a.proj.neuron}
        self.stats = {n: [0, 0, 0] for n in self.mods}     # values, binary, ones
        self.last: dict = {}
        self.hooks = [m.register_forward_hook(self._hook(n)) for n, m in self.mods.items()]

    def _hook(self, name):
        def fn(_m, _i, out):
            s = self.stats[name]
            s[0] += out.numel()
            s[1] += int(((out == 0) | (out == 1)).sum())
            s[2] += int((out == 1).sum())
            self.last[name] = out
        return fn

    def close(self):
        for h in self.hooks:
            h.remove()


def spike_figures(net, frames_batches) -> dict:
    """Per layer: binary share, spikes per bin (per sample); synops and dense MACs per bin.
    ``frames_batches`` yields [T, B, C, H, W] tensors."""
    import torch

    tap = SpikeTap(net)
    _, h, w = net.feature_shape()
    bins = 0
    synops = {"backbone": 0.0, "sdsa": 0.0}
    try:
        with torch.no_grad():
            for x in frames_batches:
                out = net(x)
                bins += x.shape[0] * x.shape[1]
                synops["backbone"] += float(net.synops(x, out.spikes).sum())
                if net.attn is not None:
                    L = tap.last
                    synops["sdsa"] += float(net.attn.synops(
                        L[f"backbone.{len(net.backbone) - 1}"], L["sdsa.k"] * L["sdsa.v"],
                        L["sdsa.q"] * L["sdsa.kv_mask"]).sum())
    finally:
        tap.close()
    layers = {}
    for n, (vals, binary, ones) in tap.stats.items():
        layers[n] = {"binary_share": binary / vals if vals else None,
                     "spikes_per_bin": ones / bins if bins else None,
                     "firing_rate": ones / vals if vals else None}
    macs = net.macs_per_step()                                # the conv stages
    sdsa_macs = net.attn.macs_per_step(h, w) if net.attn is not None else 0
    return {"bins": bins, "layers": layers,
            "binary_share_all": min(v["binary_share"] for v in layers.values()),
            "synops_per_bin": {k: v / bins for k, v in synops.items()},
            "synops_per_bin_total": sum(synops.values()) / bins,
            "dense_macs_per_bin": {"backbone": macs, "sdsa": sdsa_macs},
            "dense_macs_per_bin_total": macs + sdsa_macs}


# ---------------------------------------------------------------------------- timing
def cpu_per_bin(nets: dict, frames, rounds: int) -> dict:
    """Streaming-runner CPU ms per bin, the models alternated round by round on ``frames``
    [T, 1, C, H, W]; per model the median over rounds of (CPU time / bins), and the
    backbone's (spiking part's) share of the wall time."""
    import numpy as np
    import torch

    from snn4_ros.models.hybridnet import StreamingRunner

    runners = {n: StreamingRunner(m) for n, m in nets.items()}
    per = {n: [] for n in nets}
    spiking = {n: [] for n in nets}
    for r in range(rounds + 1):
        for n, run in runners.items():
            run.reset()
            c0, sp = time.process_time(), 0.0
            with torch.no_grad():
                for f in frames:
                    run.step(f)
                    sp += run.timing[0]
            c = time.process_time() - c0
            if r:                                   # the first round warms up
                per[n].append(1e3 * c / len(frames))
                spiking[n].append(1e3 * sp / len(frames))
    return {n: {"cpu_ms_per_bin": float(np.median(per[n])),
                "cpu_ms_per_bin_rounds": [round(v, 3) for v in per[n]],
                "spiking_wall_ms_per_bin": float(np.median(spiking[n]))} for n in nets}


# ---------------------------------------------------------------------------- real data
def teach_args(pairs: int) -> list[str]:
    """The recipe's arguments with its first ``pairs`` 'nothing' pairs (2: all of it)."""
    return TEACH_ARGS[:TEACH_ARGS.index("--nothing")] + [
        a for s in NOTHING_SETS[:pairs] for a in ("--nothing", s)]


def start_teach_cv(base: str, log: Path, pairs: int) -> tuple:
    """bench/teach.py with the real-camera recipe on ``base``, started in the background (its
    output in ``log``); ``finish_teach_cv`` waits for it."""
    cmd = [sys.executable, str(ROOT / "bench" / "teach.py"), "--base", base] + teach_args(pairs)
    print(f"real: started {' '.join(cmd[1:])} (log: {log})", flush=True)
    f = open(log, "w")
    return subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT), f, cmd, \
        time.time(), log


def finish_teach_cv(job) -> dict:
    proc, f, cmd, t0, log = job
    rc = proc.wait()
    f.close()
    if rc:
        raise SystemExit(f"{' '.join(cmd)} failed ({rc}); see {log}")
    r = json.loads(log.read_text().strip().splitlines()[-1])["results"]["rstdp"]
    return {"source": "measured in this run", "command": "python " + " ".join(
                [str(Path(cmd[1]).relative_to(ROOT))] + cmd[2:]),
            "seconds": round(time.time() - t0, 1), **_cv(r)}


def card_cv(cv: dict, runs: int) -> dict:
    """The real-camera model card's cross-validation, its first ``runs`` folds (the card keeps
    per fold the clips and the held-out negatives' summary)."""
    if runs >= len(cv["folds"]):
        return _cv(cv)
    fs = cv["folds"][:runs]
    per_fold = [f"{sum(f['clips'].values())}/{len(f['clips'])}" for f in fs]
    eps = sum(f["negatives_held_out"]["total_episodes"] for f in fs)
    dur = sum(f["negatives_held_out"]["total_duration_s"] for f in fs)
    return {"recognised": f"{sum(int(p.split('/')[0]) for p in per_fold)}/"
                          f"{sum(int(p.split('/')[1]) for p in per_fold)}",
            "per_fold": per_fold,
            "max_false_per_min_held_out": max(f["negatives_held_out"]["max_episodes_per_min"]
                                              for f in fs),
            "pooled_false_per_min_held_out": eps / (dur / 60) if dur else None,
            "negatives_held_out_per_recording": None}


def _cv(r: dict) -> dict:
    per = r["negatives_held_out_per_recording"]
    eps = sum(p["episodes"] for p in per.values())
    dur = sum(p["duration_s"] for p in per.values())
    return {"recognised": r.get("recognised") or r.get("clips_recognised"),
            "per_fold": r.get("recognised_per_fold") or r.get("per_fold"),
            "max_false_per_min_held_out": r.get("max_false_per_min_held_out",
                                                r.get("max_false_commands_per_min_held_out")),
            "pooled_false_per_min_held_out": eps / (dur / 60) if dur else None,
            "negatives_held_out_per_recording": per}


def sim_heads_false_commands(net, nmnist: int) -> dict:
    """The model's own 11 simulator classes on every real negative (bench/realworld.py)."""
    from snn4_ros.eval.recognition import false_commands, real_negatives, summarise_negatives

    rows = [false_commands(net, ps, {}, n) for n, ps in real_negatives(DATA, nmnist).items()]
    return {"per_recording": {r.name: r.as_dict() for r in rows}, **summarise_negatives(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sdsa", default="hybridnet_gesture_sdsa")
    ap.add_argument("--base", default="out/hybridnet_gesture_s20",
                    help="hybridnet-s trained by the SDSA model's recipe (tools/train_models.sh "
                         "sdsa makes it)")
    ap.add_argument("--shipped", default="hybridnet_gesture_synth",
                    help="the reference: hybridnet-s of the full gesture recipe")
    ap.add_argument("--rounds", type=int, default=5, help="timing rounds (plus one warm-up)")
    ap.add_argument("--bins", type=int, default=64, help="real bins per timing round")
    ap.add_argument("--test", default="synthetic:30:2")
    ap.add_argument("--nmnist", type=int, default=100,
                    help="N-MNIST samples among the simulator heads' negatives")
    ap.add_argument("--pairs", type=int, choices=(1, 2), default=2,
                    help="'nothing' pairs of the recipe to cross-validate with (4 folds each; "
                         "1: every clip held out once, the first pair's recordings never)")
    ap.add_argument("--skip-real", action="store_true", help="no real-data cross-validation")
    args = ap.parse_args()
    threads = bench_threads()

    import numpy as np
    import torch

    from snn4_ros.events.capture import read_session_csv
    from snn4_ros.events.sources import read_recording
    from snn4_ros.models import checkpoint
    from snn4_ros.models.datasets import load_dataset
    from snn4_ros.models.evaluate import evaluate
    from snn4_ros.models.teach import recording_frames
    from snn4_ros.models.zoo import REAL_MODEL, find_model

    names = {"shipped": args.shipped, "base": args.base, "sdsa": args.sdsa}
    if not (ROOT / f"{args.base}.safetensors").exists() and args.base.startswith("out/"):
        sys.exit(f"bench/sdsa.py: {args.base} is not there: it is hybridnet-s trained by the "
                 "SDSA model's reduced recipe, made by `tools/train_models.sh sdsa` (not in "
                 "git); run that first")
    run = Run("sdsa").__enter__()
    nets, cards = {}, {}
    for k, n in names.items():
        nets[k], cards[k] = checkpoint.load(find_model(n))
        nets[k].eval()
    jobs = {}
    if not args.skip_real:                   # the slow part, in parallel with the rest
        (ROOT / "out").mkdir(exist_ok=True)
        jobs = {k: start_teach_cv(names[k], ROOT / "out" / f"sdsa_teach_{k}.log", args.pairs)
                for k in ("base", "sdsa")}
    out: dict = {"bench": "sdsa", "threads": threads, "models": names, "pairs": args.pairs,
                 "real_recipe_folds": 4 * args.pairs,
                 "presets": {k: c["preset"] for k, c in cards.items()},
                 "sdsa_shortcut": nets["sdsa"].cfg.sdsa_shortcut,
                 "parameters": {k: n.param_count() for k, n in nets.items()},
                 "training": {k: {"command": c.get("command"),
                                  "dataset": c["training"]["dataset"],
                                  "samples": c["training"]["samples"],
                                  "validation": c["training"]["validation"],
                                  "epochs": c["training"]["config"]["epochs"],
                                  "val_acc_last": c["training"]["history"]["val_acc"][-1],
                                  "epoch_seconds_median": float(np.median(
                                      c["training"]["history"]["seconds"]))}
                              for k, c in cards.items()}}

    # -- synthetic test set: accuracy, decision bin, spikes
    test = load_dataset(args.test, nets["base"].cfg, train=False)
    out["synthetic"] = {}
    for k, net in nets.items():
        ev = evaluate(net, test)
        batches = (test.frames[i:i + 32].float().transpose(0, 1) for i in range(0, len(test), 32))
        sp = spike_figures(net, batches)
        out["synthetic"][k] = {"dataset": args.test, "n": ev["n"], "accuracy": ev["accuracy"],
                               "mean_decision_bins": ev["mean_decision_bins"],
                               "early_exit_threshold": ev["early_exit_threshold"],
                               "window_bins": ev["window_bins"], "spikes": sp}
        print(f"{k:<8} synthetic {args.test}: accuracy {ev['accuracy']:.4f} (n={ev['n']}), "
              f"decision after {ev['mean_decision_bins']:.2f} bins; binary share "
              f"{sp['binary_share_all']:.4f}, synops/bin {sp['synops_per_bin_total']:,.0f} "
              f"vs dense MACs/bin {sp['dense_macs_per_bin_total']:,}", flush=True)

    # -- the 12 real waves: spikes over the whole clips; timing on their bins
    clips = read_session_csv(DATA / "aedat4_dvs128" / "labels.csv")
    real = []
    for path, _, _, _ in clips:
        ea, _, _ = read_recording(path)
        f, _ = recording_frames(nets["base"], ea)
        real.append(torch.from_numpy(np.ascontiguousarray(f))[:, None].float())
    out["real_waves_spikes"] = {}
    for k, net in nets.items():
        sp = spike_figures(net, iter(real))
        out["real_waves_spikes"][k] = sp
        print(f"{k:<8} 12 real DVS128 waves ({sp['bins']} bins): binary share "
              f"{sp['binary_share_all']:.4f}, synops/bin {sp['synops_per_bin_total']:,.0f}",
              flush=True)
    frames = torch.cat(real)[:args.bins]
    t = cpu_per_bin({k: nets[k] for k in ("base", "sdsa")}, frames, args.rounds)
    out["cpu_per_bin"] = {"bins": len(frames), "rounds": args.rounds, "models": t,
                          "ratio_sdsa_to_base": t["sdsa"]["cpu_ms_per_bin"]
                          / t["base"]["cpu_ms_per_bin"]}
    print(f"streaming CPU per bin: hybridnet-s {t['base']['cpu_ms_per_bin']:.2f} ms, "
          f"SDSA {t['sdsa']['cpu_ms_per_bin']:.2f} ms "
          f"(x{out['cpu_per_bin']['ratio_sdsa_to_base']:.2f})", flush=True)

    # -- real data
    out["sim_heads_real_negatives"] = {}
    for k in ("base", "sdsa"):
        r = sim_heads_false_commands(nets[k], args.nmnist)
        out["sim_heads_real_negatives"][k] = r
        print(f"{k:<8} simulator heads on {len(r['per_recording'])} real negatives "
              f"({r['total_duration_s']:.0f} s): worst {r['max_episodes_per_min']:.1f}, pooled "
              f"{r['pooled_episodes_per_min']:.1f} false command episodes/min", flush=True)
    if jobs:
        card = json.loads(find_model(REAL_MODEL).with_suffix(".json").read_text())
        cv = card["cross_validated"]
        real_cv = {"shipped": {"source": f"the card of {REAL_MODEL} (`{card['reproduce']}`, the "
                                         "same command on this backbone"
                                         + (f", its first {4 * args.pairs} folds" if args.pairs < 2
                                            else "") + ")", **card_cv(cv, 4 * args.pairs)}}
        real_cv |= {k: finish_teach_cv(j) for k, j in jobs.items()}
        out["real_teach_cv"] = real_cv
        for k, r in real_cv.items():
            print(f"{k:<8} real-camera recipe cross-validated: {r['recognised']} held-out "
                  f"waves commanded (per fold {' '.join(r['per_fold'])}), false command "
                  f"episodes/min on held-out real negatives: worst "
                  f"{r['max_false_per_min_held_out']:.2f}, pooled "
                  f"{r['pooled_false_per_min_held_out']:.2f}", flush=True)
    run.emit(out)


if __name__ == "__main__":
    main()

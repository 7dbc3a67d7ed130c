"""Online (SLTT-style) training against BPTT: peak memory and speed at T = 16, 64, 256 bins,
and accuracy on real N-MNIST beside them.

    python bench/online.py [--T 16 64 256] [--batch 8] [--epochs 8] [--seeds 0]
                           [--train-samples 800]

Memory and speed: for each mode and T, a fresh process builds ``hybridnet-nmnist`` (the
shipped N-MNIST network, bridge window 10 bins) and runs 3 training steps on a batch of
``--batch`` clips of T bins; input is random spikes at N-MNIST's event density (about 4,000
events per 300 ms): memory and speed do not depend on what the events show, so this part
uses no data. Peak memory is the growth of the process's peak resident set (ru_maxrss) over
its resident set before the first step; time is the mean of steps 2 and 3.

Accuracy: the same network and recipe (AdamW lr 3e-3, batch 16, per-step loss 0.5, shift
augmentation 2 px, ``--epochs``) trained by BPTT and by ``--online`` on the stratified 80 %
of the 1,000 real N-MNIST samples (seed 0 split, the one tools/train_models.sh holds out) and
scored on the other 200 real samples -- a small budget on a shared 2-core CPU, not the
shipped recipe's 60 epochs; the JSON says so. Last line: one JSON object (also in
bench/results/online.json).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import Run, bench_threads  # noqa: E402

THREADS = bench_threads()             # one thread for both modes alike, before torch loads

import torch  # noqa: E402

NMNIST = ROOT.parent / "shared" / "data" / "nmnist_train1k"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def worker(mode: str, T: int, batch: int) -> dict:
    """One fresh process: 3 training steps, peak memory growth and time per step."""
    from snn4_ros.models.allocator import tune_allocator
    from snn4_ros.models.hybridnet import HybridNet, preset_config
    from snn4_ros.models.train import TrainConfig, backward_step

    tune_allocator()
    torch.manual_seed(0)
    model = HybridNet(preset_config("hybridnet-nmnist")).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    density = 4000 / (10 * 2 * 34 * 34)          # N-MNIST: ~4,000 events in 10 bins
    x = (torch.rand(T, batch, 2, 34, 34) < density).float()
    y = torch.randint(0, 10, (batch,))
    cfg = TrainConfig(online=mode == "online")
    base = rss_mb()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        backward_step(model, x, y, None, cfg)
        opt.step()
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mode": mode, "T": T, "batch": batch, "peak_growth_mb": round(peak - base, 1),
            "s_per_step": round(sum(times[1:]) / 2, 3)}


def accuracy_runs(epochs: int, seeds: list[int], train_samples: int) -> list[dict]:
    from snn4_ros.models.datasets import nmnist_data
    from snn4_ros.models.evaluate import accuracy
    from snn4_ros.models.hybridnet import HybridNet, preset_config
    from snn4_ros.models.train import TrainConfig, train

    cfg = preset_config("hybridnet-nmnist")
    data = nmnist_data(NMNIST, cfg)
    tr, held = data.split(0.2, seed=0)
    if 0 < train_samples < len(tr):               # a stratified subset of the 800
        _, tr = tr.split(train_samples / len(tr), seed=0)
    out = []
    for seed in seeds:
        for mode in ("bptt", "online"):
            torch.manual_seed(seed)
            model = HybridNet(cfg)
            t0 = time.time()
            train(model, tr, TrainConfig(epochs=epochs, batch_size=16, lr=3e-3, seed=seed,
                                         per_step_loss=0.5, augment_shift=2,
                                         online=mode == "online"), progress=False)
            out.append({"mode": mode, "seed": seed, "epochs": epochs, "train_samples": len(tr),
                        "held_out_samples": len(held),
                        "held_out_accuracy": round(accuracy(model.eval(), held), 4),
                        "train_s": round(time.time() - t0, 1)})
            print(json.dumps(out[-1]), file=sys.stderr, flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--train-samples", type=int, default=800,
                    help="train on a stratified subset of the 800 (a smaller budget)")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--worker", nargs=3, metavar=("MODE", "T", "BATCH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), int(args.worker[2]))))
        return 0
    with Run("online") as run:
        mem = []
        for T in args.T:
            for mode in ("bptt", "online"):
                r = subprocess.run([sys.executable, __file__, "--worker", mode, str(T),
                                    str(args.batch)], capture_output=True, text=True,
                                   timeout=3600)
                if r.returncode:
                    raise SystemExit(f"worker {mode} T={T} failed:\n{r.stderr[-2000:]}")
                mem.append(json.loads(r.stdout.strip().splitlines()[-1]))
                print(json.dumps(mem[-1]), file=sys.stderr, flush=True)
        ratio = {str(T): {"memory_bptt_over_online": round(
            next(m["peak_growth_mb"] for m in mem if m["T"] == T and m["mode"] == "bptt") /
            max(next(m["peak_growth_mb"] for m in mem if m["T"] == T and m["mode"] == "online"),
                1e-9), 2),
            "time_online_over_bptt": round(
            next(m["s_per_step"] for m in mem if m["T"] == T and m["mode"] == "online") /
            next(m["s_per_step"] for m in mem if m["T"] == T and m["mode"] == "bptt"), 2)}
            for T in args.T}
        out = {"memory_speed": mem, "ratios": ratio,
               "memory_input": "random spikes at N-MNIST's event density (no data needed)",
               "network": "hybridnet-nmnist (100,593 parameters, bridge window 10 bins)",
               "threads": THREADS, "batch": args.batch}
        if not args.skip_accuracy:
            out["accuracy"] = accuracy_runs(args.epochs, args.seeds, args.train_samples)
            n = out["accuracy"][0]["train_samples"]
            out["accuracy_budget"] = (f"{args.epochs} epochs, seed(s) {args.seeds}, {n} real "
                                      "N-MNIST training samples (stratified, from the seed-0 "
                                      "80 % split), the other 20 % held out; a small budget on a shared "
                                      "CPU -- the shipped recipe trains 60 epochs on 800")
        run.emit(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Seconds per training epoch of the N-MNIST recipe: ``snn4 train`` as it ran before
(torch's default threads, one per core) against ``snn4 train --threads 1``, side by side.

    python bench/train_speed.py [--epochs 1] [--rounds 2] [--threads-old 0]

Each configuration runs the real command in a fresh process -- tools/train_models.sh's
N-MNIST recipe with ``--val-split 0.2`` (800 real samples, seed 0) for ``--epochs`` -- in
alternating order (A B, then B A, ...) so that a change in the machine's load hits both
alike; seconds per epoch are the card's own per-epoch training times. Same seed, same data:
the held-out accuracy and the final loss show whether the arithmetic is the same (thread
counts change only the order of float reductions). The machine's load average is recorded
with each run: on a shared CPU the ratio is the figure, not the seconds.

Why threads: a profile of one step (torch.profiler, 1 thread) puts ~90 % of it in the
convolutions, batch norms and the compiled LIF kernels -- the arithmetic itself; Python and
data handling are a few per cent, and decoding all 1,000 N-MNIST files takes 0.55 s per run.
What an oversubscribed machine adds is the thread barriers.
Last line: one JSON object (also bench/results/train_speed.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _common import Run  # noqa: E402

NMNIST = ROOT.parent / "shared" / "data" / "nmnist_train1k"


def one(threads: int, epochs: int, out: Path) -> dict:
    cmd = [sys.executable, "-c", "import sys; from snn4_ros.app.cli import main; "
           "sys.exit(main(sys.argv[1:]))", "train", "--dataset", f"nmnist:{NMNIST}",
           "--preset", "hybridnet-nmnist", "--val-split", "0.2", "--epochs", str(epochs),
           "--augment-shift", "2", "--seed", "0", "--out", str(out), "--quiet"]
    if threads:
        cmd += ["--threads", str(threads)]
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS")}
    load0 = os.getloadavg()[0]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=7200)
    if r.returncode:
        raise SystemExit(f"snn4 train failed:\n{r.stderr[-3000:]}")
    card = json.loads(out.with_suffix(".json").read_text())
    h = card["training"]["history"]
    return {"threads": threads or "default", "epochs": epochs,
            "s_per_epoch": round(sum(h["seconds"]) / len(h["seconds"]), 1),
            "final_loss": round(h["loss"][-1], 5), "held_out_accuracy": card["metrics"]["accuracy"],
            "held_out_n": card["metrics"]["n"], "load_1m_start": round(load0, 2),
            "load_1m_end": round(os.getloadavg()[0], 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads-old", type=int, default=0,
                    help="the old configuration's threads (0: torch's default)")
    args = ap.parse_args()
    import torch

    default_threads = torch.get_num_threads()
    runs = []
    with Run("train_speed") as run, tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            order = (args.threads_old, 1) if rnd % 2 == 0 else (1, args.threads_old)
            for th in order:
                runs.append({"round": rnd, **one(th, args.epochs, Path(tmp) / f"m{rnd}_{th}")})
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
        old = [r for r in runs if r["threads"] != 1]
        new = [r for r in runs if r["threads"] == 1]
        mean = lambda rs: sum(r["s_per_epoch"] for r in rs) / len(rs)  # noqa: E731
        run.emit({"runs": runs, "default_threads": default_threads,
                  "old_s_per_epoch": round(mean(old), 1), "new_s_per_epoch": round(mean(new), 1),
                  "speedup": round(mean(old) / mean(new), 2),
                  "same_accuracy": len({r["held_out_accuracy"] for r in runs}) == 1,
                  "command": "snn4 train --dataset nmnist:../shared/data/nmnist_train1k "
                             "--preset hybridnet-nmnist --val-split 0.2 --augment-shift 2 "
                             f"--seed 0 --epochs {args.epochs} [--threads 1]"})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How many epochs the N-MNIST recipe needs: held-out accuracy against the training budget,
the measurement that picks the budget of the cross-validated estimate and the ablation.

    python bench/nmnist_curve.py [--budgets 4 8 16] [--lrs 0.003] [--seed 0] [--fold 0]
                                 [--every 1] [--resume] [--plot docs/nmnist_curve.png]

Each run is the shipped recipe (bench/ablation.py's baseline arm: tools/train_models.sh's
N-MNIST recipe) on seed ``--seed``'s stratified 5-fold partition of the 1,000 real samples,
trained on the other folds (800 samples) and scored on fold ``--fold`` (200, never trained
on). The recipe's learning rate follows a cosine over the whole budget, so the accuracy after
epoch e of a 16-epoch run is not what an e-epoch run reaches (its rate is still high there):
every budget is a run of its own, and its final accuracy is the figure; the per-epoch curve of
each run (a batch-norm-recalibrated copy scored after every epoch, the run itself unchanged)
shows how it got there. The plateau is the longest budget's final accuracy; the chosen budget
is the smallest whose final accuracy is within ``--tolerance`` (1 point) of it. ``--lrs``
adds runs at another peak learning rate, the same model and method (a faster schedule measured
beside the recipe's, never instead of it).

Every finished run is written at once (``"partial": true`` until the end); ``--resume`` keeps
the runs of the same setting and joins those another process writes meanwhile (other budgets,
one process per core). Writes bench/results/nmnist_curve.json; last line: one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import ablation  # noqa: E402  (sets one torch/numba thread for this process)
from _common import RESULTS, Run  # noqa: E402


def choose_budget(runs: list[dict], lr: float, tolerance: float) -> dict:
    """Of the runs at peak rate ``lr``: the plateau (the longest budget's final held-out
    accuracy) and the smallest budget whose final accuracy is within ``tolerance`` of it."""
    rs = sorted((r for r in runs if r["lr"] == lr), key=lambda r: r["epochs"])
    if not rs:
        return {"lr": lr, "budgets": [], "plateau": None, "chosen_epochs": None}
    plateau = rs[-1]["accuracy"]
    ok = [r["epochs"] for r in rs if r["accuracy"] >= plateau - tolerance]
    return {"lr": lr, "budgets": [r["epochs"] for r in rs],
            "final_accuracy": [r["accuracy"] for r in rs], "plateau": plateau,
            "plateau_epochs": rs[-1]["epochs"], "chosen_epochs": ok[0],
            "single_budget": len(rs) == 1}


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in sorted(runs, key=lambda r: (r["lr"], r["epochs"])):
        xs = r["curve_epochs"]
        ax.plot(xs, [100 * a for a in r["curve"]], marker=".",
                label=f"{r['epochs']} epochs, lr {r['lr']:g} (final {100 * r['accuracy']:.1f})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"held-out accuracy, % ({runs[0]['n']} real samples)")
    ax.set_title("N-MNIST recipe: held-out accuracy per epoch, one run per budget")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", type=int, nargs="+", default=[4, 8, 16],
                    help="training budgets in epochs, one run each (shortest first)")
    ap.add_argument("--lrs", type=float, nargs="+", default=[ablation.RECIPE["lr"]],
                    help="peak learning rates (the recipe's first)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--tolerance", type=float, default=0.01,
                    help="within this of the plateau (a fraction: 0.01 = 1 point)")
    ap.add_argument("--data", default=str(ablation.NMNIST))
    ap.add_argument("--config", type=json.loads, default={}, metavar="JSON",
                    help="HybridNetConfig overrides (a smaller network, for tests)")
    ap.add_argument("--every", type=int, default=1,
                    help="score after every n-th epoch (and the last): each point costs a "
                         "forward pass over the training and held-out folds")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--plot-only", action="store_true",
                    help="redraw the figure from the results file; train nothing")
    ap.add_argument("--plot", default=str(ROOT / "docs" / "nmnist_curve.png"),
                    help="the figure ('' for none)")
    ap.add_argument("--out-dir", default=str(RESULTS), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    out_dir = Path(args.out_dir)
    path = out_dir / "nmnist_curve.json"
    if args.plot_only:
        plot(json.loads(path.read_text())["runs"], Path(args.plot))
        return 0
    setting = {"seed": args.seed, "fold": args.fold, "folds": args.folds,
               "recipe": ablation.RECIPE, "preset": ablation.PRESET, "config": args.config,
               "threads": ablation.THREADS, "tolerance": args.tolerance}
    runs: list[dict] = []
    if args.resume and path.exists():
        old = json.loads(path.read_text())
        if old.get("setting") != setting:
            ap.error(f"--resume: {path} holds runs of another setting ({old.get('setting')}); "
                     "move it away or run without --resume")
        runs = old["runs"]
    data = ablation.load_data(Path(args.data))
    budgets, lrs = list(args.budgets), list(args.lrs)
    with Run("nmnist_curve", out_dir) as run:
        def save(final: bool) -> dict:
            with ablation.locked(out_dir):
                if args.resume and path.exists():   # runs another process (other budgets) wrote
                    old = json.loads(path.read_text())
                    if old.get("setting") == setting:
                        have = {(r["lr"], r["epochs"]) for r in runs}
                        runs.extend(r for r in old["runs"] if (r["lr"], r["epochs"]) not in have)
                        budgets.extend(b for b in old["budgets_planned"] if b not in budgets)
                        lrs.extend(x for x in old["lrs_planned"] if x not in lrs)
                return _save(final)

        def _save(final: bool) -> dict:
            done = {(r["lr"], r["epochs"]) for r in runs}
            obj = {"setting": setting,
                   "partial": any((x, b) not in done for x in lrs for b in budgets),
                   "budgets_planned": sorted(budgets), "lrs_planned": lrs, "runs": runs,
                   "summary": [choose_budget(runs, lr, args.tolerance) for lr in lrs],
                   "data": f"{len(data)} real N-MNIST samples; seed {args.seed}'s stratified "
                           f"{args.folds}-fold partition, trained on the other folds, scored "
                           f"on fold {args.fold}",
                   "plot": os.path.relpath(args.plot, ROOT) if args.plot else None,
                   "meta": run.meta()}
            out_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(obj, indent=1) + "\n")
            return obj

        for lr in args.lrs:
            for epochs in args.budgets:
                if any(r["lr"] == lr and r["epochs"] == epochs for r in runs):
                    continue
                recipe = None if lr == ablation.RECIPE["lr"] else {"lr": lr}
                r = ablation.train_arm("baseline", data, args.seed, args.fold, args.folds,
                                       epochs, base_config=args.config, curve=args.every,
                                       recipe=recipe)
                r["lr"] = lr
                runs.append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)
                save(False)
                if args.plot:
                    plot(runs, Path(args.plot))
        out = save(True)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

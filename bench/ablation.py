"""An ablation of the SNN4 training methods on real N-MNIST, and the cross-validated estimate
of the shipped N-MNIST recipe: 3 seeds each, mean and standard deviation.

    python bench/ablation.py [--epochs 2] [--seeds 0 1 2] [--arms ...] [--folds 5]
                             [--order seed|arm] [--resume] [--no-cv | --cv-only]

Data: the 1,000 real N-MNIST training samples (``../shared/data/nmnist_train1k``), split for
seed s into 5 stratified folds (``FrameData.fold``: every class shuffled with seed s and
dealt round-robin): each seed has its own partition.

* **Ablation** (``bench/results/ablation_eE.json``, E the budget in epochs): every arm trains on folds 1-4 of seed s's
  partition (800 samples) and is scored on fold 0 (200 samples, never trained on), so the
  arms of one seed share data, split, initialisation seed and sample order, and differ only
  in the one method switched. Arms: the shipped recipe (``baseline``: LIF, arctan surrogate
  with a fixed width, BPTT, the ERS/SAT bridge, no temporal or firing-rate regularisation),
  and one change each -- a scheduled or a learnable surrogate, online (SLTT) training,
  temporal regularisation (TRT), firing-rate regularisation, PLIF or TC-LIF neurons, the
  bridge replaced by plain mean pooling over the window.
* **Cross-validation** (``bench/results/nmnist_cv_eE.json``): the shipped recipe (the baseline
  arm) on all 5 folds of each seed, so every one of the 1,000 samples is scored once per seed
  by a model that never saw it; a seed's estimate is its correct answers over 1,000, and the
  figure is their mean and standard deviation over the seeds. Fold 0 is the ablation's
  baseline run (the same run, trained once).

The recipe is tools/train_models.sh's N-MNIST recipe (AdamW lr 3e-3, batch 16, per-step loss
0.5, 2 px shift augmentation, cosine schedule, batch-norm recalibration) with one fixed budget
(``--epochs``) for every arm and fold; the shipped model trains 60 epochs, which a shared
2-core CPU cannot repeat 40 times, so the JSON states the budget and the figures are what the
recipe reaches in it. One torch/numba thread (bench/_common.bench_threads).

Every finished run is written to the JSON at once (``"partial": true`` until the end), and
``--resume`` skips the runs the JSON already holds for the same budget, so an interrupted run
still yields a table. Each budget has files of its own (``_eE``): a run at another budget
never joins or overwrites a table (``--resume`` refuses a file of another setting, and the
summaries refuse runs of mixed budgets). Processes started with ``--resume`` on the same budget
(one per core) share the plan: each claims a run before training it and adds the others'
finished runs to the files. Online training is measured (seconds per step beside BPTT's, on the
same real batch) even when its arm is not run, so its absence has a measured reason. Last
line: one JSON object, the ablation's (the cross-validation's is in its file; with
``--cv-only``, what ``python bench/nmnist_cv.py`` runs, the estimate's).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import RESULTS, Run, bench_threads  # noqa: E402

THREADS = bench_threads()

import torch  # noqa: E402

NMNIST = ROOT.parent / "shared" / "data" / "nmnist_train1k"
PRESET = "hybridnet-nmnist"
# tools/train_models.sh's N-MNIST recipe (less the epochs: the budget)
RECIPE = dict(batch_size=16, lr=3e-3, per_step_loss=0.5, augment_shift=2)

# arm -> (what it changes, HybridNetConfig overrides, TrainConfig overrides)
ARMS: dict[str, tuple[str, dict, dict]] = {
    "baseline": ("the shipped recipe: LIF, arctan surrogate alpha 2 (fixed), BPTT, ERS/SAT "
                 "bridge, no temporal or firing-rate regularisation", {}, {}),
    "surrogate_scheduled": ("surrogate alpha sharpened 1 -> 4 over training",
                            {}, {"surrogate_schedule": (1.0, 4.0)}),
    "surrogate_learnable": ("learnable surrogate width per layer (LSG), from alpha 2",
                            {"learnable_surrogate": True}, {}),
    "online": ("online training (SLTT: spatial gradients per bin)", {}, {"online": True}),
    "temporal_reg": ("temporal regularisation (TRT) lambda 1, decay 0.5",
                     {}, {"temporal_reg": 1.0, "temporal_reg_decay": 0.5}),
    "rate_reg": ("firing-rate regularisation 10 (rate - 0.1)^2", {},
                 {"rate_reg": 10.0, "rate_target": 0.1}),
    "plif": ("PLIF neurons (learnable decay)", {"neuron": "plif"}, {}),
    "tclif": ("TC-LIF neurons (two compartments)", {"neuron": "tclif", "neuron_kwargs": {}}, {}),
    "bridge_mean": ("bridge off: plain mean pooling over the window instead of ERS/SAT",
                    {"bridge": "mean"}, {}),
}


def load_data(path: Path = NMNIST):
    from snn4_ros.models.datasets import nmnist_data
    from snn4_ros.models.hybridnet import preset_config

    return nmnist_data(path, preset_config(PRESET))


@torch.no_grad()
def score(model, data, batch: int = 64) -> dict:
    """Held-out accuracy, correct count and mean firing rate of the backbone."""
    model.eval()
    correct, spikes = 0, 0.0
    T = data.frames.shape[1]
    for i in range(0, len(data), batch):
        x = data.frames[i:i + batch].float().transpose(0, 1)
        out = model(x)
        correct += int((out.logits.argmax(1) == data.labels[i:i + batch]).sum())
        spikes += float(sum(c.sum() for c in out.spikes))
    return {"correct": correct, "n": len(data), "accuracy": correct / max(len(data), 1),
            "firing_rate": spikes / max(len(data) * T * model.neuron_count(), 1)}


def train_arm(arm: str, data, seed: int, fold: int, k: int, epochs: int,
              train_samples: int = 0, base_config: dict | None = None,
              curve: int = 0, recipe: dict | None = None) -> dict:
    """One run: arm ``arm`` trained on the folds other than ``fold`` of seed ``seed``'s
    ``k``-fold partition, scored on ``fold``.

    ``curve`` (n > 0): also score the held-out fold after every n-th epoch and the last
    (``curve``: the accuracies, ``curve_epochs``: after which epochs), each time on a copy of
    the model whose batch-norm statistics are recalibrated on the training folds as at the end
    of training; the run itself trains exactly as without it.
    The extra cost, a forward pass over the training folds and the held-out fold per epoch,
    is in ``curve_s``. ``recipe``: overrides of RECIPE (a faster schedule measured beside it).
    """
    import copy

    from snn4_ros.models.hybridnet import HybridNet, preset_config
    from snn4_ros.models.train import TrainConfig, recalibrate_bn, train

    _, cfg_over, train_over = ARMS[arm]
    tr, held = data.fold(k, fold, seed=seed)
    if 0 < train_samples < len(tr):                  # a smaller budget: a stratified part
        _, tr = tr.split(train_samples / len(tr), seed=seed)
    cfg = preset_config(PRESET, **{**(base_config or {}), **cfg_over})
    torch.manual_seed(seed)
    model = HybridNet(cfg)
    tc = TrainConfig(epochs=epochs, seed=seed, **{**RECIPE, **(recipe or {})}, **train_over)
    points: list[float] = []
    at: list[int] = []
    curve_s = [0.0]

    def on_epoch(epoch: int, m) -> None:
        if epoch % curve and epoch != epochs:
            return
        t = time.time()
        at.append(epoch)
        twin = copy.deepcopy(m)
        recalibrate_bn(twin, tr)
        points.append(round(score(twin, held)["accuracy"], 4))
        curve_s[0] += time.time() - t
        print(json.dumps({"arm": arm, "seed": seed, "fold": fold, "epoch": epoch,
                          "held_out_accuracy": points[-1]}), file=sys.stderr, flush=True)

    t0 = time.time()
    hist = train(model, tr, tc, progress=False, on_epoch=on_epoch if curve else None)
    secs = time.time() - t0 - curve_s[0]
    out = {"arm": arm, "seed": seed, "fold": fold, "epochs": epochs,
           "train_samples": len(tr), "held_out": len(held), "train_s": round(secs, 1),
           "s_per_epoch": round(secs / max(epochs, 1), 1),
           "final_train_loss": round(hist["loss"][-1], 4),
           "final_train_acc": round(hist["train_acc"][-1], 4), **score(model, held)}
    out["accuracy"] = round(out["accuracy"], 4)
    out["firing_rate"] = round(out["firing_rate"], 4)
    if recipe:
        out["recipe"] = {**RECIPE, **recipe}
    if curve:
        out["curve"] = points
        out["curve_epochs"] = at
        out["curve_s"] = round(curve_s[0], 1)
        out["train_loss"] = [round(v, 4) for v in hist["loss"]]
    return out


def step_seconds(data, arms: list[str], steps: int = 3, seed: int = 0,
                 base_config: dict | None = None) -> dict:
    """Seconds per optimiser step of each arm on the same real batch of 16 (after one warm-up
    step): the cost that decides which arms fit a budget."""
    from snn4_ros.models.hybridnet import HybridNet, preset_config
    from snn4_ros.models.train import TrainConfig, backward_step

    x = data.frames[:RECIPE["batch_size"]].float().transpose(0, 1)
    y = data.labels[:RECIPE["batch_size"]]
    out = {}
    for arm in arms:
        _, cfg_over, train_over = ARMS[arm]
        torch.manual_seed(seed)
        model = HybridNet(preset_config(PRESET, **{**(base_config or {}), **cfg_over})).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        tc = TrainConfig(**RECIPE, **train_over)
        times = []
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            backward_step(model, x, y, None, tc)
            opt.step()
            times.append(time.perf_counter() - t0)
        out[arm] = round(statistics.median(times[1:]), 3)
    return out


def one_budget(runs: list[dict]) -> int | None:
    """The one training budget (epochs) of ``runs``; a ValueError if they mix budgets: a
    mean over runs of different lengths is no figure of either (runs written before the
    budget was recorded per run carry none and count as their file's)."""
    budgets = {r["epochs"] for r in runs if "epochs" in r}
    if len(budgets) > 1:
        raise ValueError(f"runs of different budgets ({sorted(budgets)} epochs) cannot make "
                         "one figure: each budget has a table of its own")
    return budgets.pop() if budgets else None


def result_name(kind: str, epochs: int) -> str:
    """The results file (and README section) of ``kind`` (ablation, nmnist_cv) at a budget
    of ``epochs``: one file per budget, so that a run at another budget never overwrites or
    joins a table."""
    return f"{kind}_e{epochs}"


def summarise(runs: list[dict], arms: list[str]) -> dict:
    """Per arm: accuracies by seed, mean, sample std, and the paired difference from the
    baseline of the same seed (same split, initialisation and order)."""
    one_budget(runs)
    base = {r["seed"]: r["accuracy"] for r in runs if r["arm"] == "baseline"}
    out = {}
    for arm in arms:
        rs = sorted((r for r in runs if r["arm"] == arm), key=lambda r: r["seed"])
        if not rs:
            continue
        acc = [r["accuracy"] for r in rs]
        diffs = [r["accuracy"] - base[r["seed"]] for r in rs if r["seed"] in base]
        out[arm] = {
            "what": ARMS[arm][0], "seeds": [r["seed"] for r in rs], "accuracy": acc,
            "mean": round(statistics.fmean(acc), 4),
            "std": round(statistics.stdev(acc), 4) if len(acc) > 1 else None,
            "firing_rate_mean": round(statistics.fmean(r["firing_rate"] for r in rs), 4),
            "s_per_epoch_mean": round(statistics.fmean(r["s_per_epoch"] for r in rs), 1),
            "paired_diff_mean": round(statistics.fmean(diffs), 4) if diffs else None,
            "paired_diff_std": round(statistics.stdev(diffs), 4) if len(diffs) > 1 else None}
    return out


def cv_summary(runs: list[dict], k: int) -> dict:
    """Per seed: correct answers over all folds (each sample scored once); over seeds: mean
    and sample std of the per-seed estimates (only seeds whose k folds all finished)."""
    one_budget(runs)
    per_seed = {}
    for seed in sorted({r["seed"] for r in runs}):
        rs = sorted((r for r in runs if r["seed"] == seed), key=lambda r: r["fold"])
        if len(rs) < k:
            continue
        c, n = sum(r["correct"] for r in rs), sum(r["n"] for r in rs)
        per_seed[str(seed)] = {"correct": c, "n": n, "accuracy": round(c / n, 4),
                               "fold_accuracy": [r["accuracy"] for r in rs]}
    accs = [v["accuracy"] for v in per_seed.values()]
    return {"per_seed": per_seed, "seeds_complete": len(accs),
            "mean": round(statistics.fmean(accs), 4) if accs else None,
            "std": round(statistics.stdev(accs), 4) if len(accs) > 1 else None,
            "goal": 0.995,
            "goal_met": (statistics.fmean(accs) >= 0.995) if len(accs) >= 3 else None}


def key(r: dict) -> tuple:
    return r["arm"], r["seed"], r["fold"]


def join(store: list[dict], runs: list[dict]) -> None:
    """Add to ``store`` the runs of ``runs`` it does not hold yet (by arm, seed, fold)."""
    have = {key(r) for r in store}
    store.extend(r for r in runs if key(r) not in have)


@contextlib.contextmanager
def locked(out_dir: Path):
    """An exclusive lock on the results folder's ablation files while one process reads
    and writes them: with ``--resume``, processes running other seeds of the same budget
    (one per core) write into the same files, each adding the others' finished runs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".ablation.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def claim(out_dir: Path, epochs: int, run_key: tuple) -> bool:
    """Claim run ``run_key`` of budget ``epochs`` for this process (False: a live process
    claimed it, or a finished run is already in the files), so that processes resuming the
    same plan in parallel share its runs instead of training any twice. A claim of a process
    that has ended is void (its run never finished or is in the files)."""
    path = out_dir / f".claims_e{epochs}.json"
    with locked(out_dir):
        claims = json.loads(path.read_text()) if path.exists() else {}
        name = "/".join(map(str, run_key))
        pid = claims.get(name)
        if pid is not None and pid != os.getpid():
            try:
                os.kill(pid, 0)
                return False                      # alive: its run
            except ProcessLookupError:
                pass
        for f in (result_name("ablation", epochs), result_name("nmnist_cv", epochs)):
            p = out_dir / f"{f}.json"
            if p.exists() and any(key(r) == tuple(run_key)
                                  for r in json.loads(p.read_text())["runs"]):
                return False                      # finished meanwhile by another process
        claims[name] = os.getpid()
        path.write_text(json.dumps(claims))
    return True


def _read(path: Path, budget: dict) -> dict | None:
    if not path.exists():
        return None
    old = json.loads(path.read_text())
    if old.get("budget") != budget:
        raise SystemExit(f"{path} holds runs of another setting ({old.get('budget')}, not "
                         f"{budget}): not joined, not overwritten")
    return old


def _write(name: str, obj: dict, run: Run, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps({**obj, "meta": run.meta()}, indent=1)
                                          + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2, help="the budget of every run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS),
                    help="ablation arms, in this order within each seed (baseline always "
                         "runs, first)")
    ap.add_argument("--folds", type=int, default=5, help="k of the stratified k-fold")
    ap.add_argument("--no-cv", action="store_true", help="skip folds 1..k-1 (the estimate)")
    ap.add_argument("--cv-only", action="store_true",
                    help="only the estimate (the baseline's k folds; bench/nmnist_cv.py); "
                         "bench/results/ablation_eE.json is left as it is")
    ap.add_argument("--train-samples", type=int, default=0,
                    help="train on a stratified part of the k-1 folds (0: all; the estimate "
                         "is then not the recipe's)")
    ap.add_argument("--data", default=str(NMNIST), help="the N-MNIST folder")
    ap.add_argument("--config", type=json.loads, default={}, metavar="JSON",
                    help="HybridNetConfig overrides for every arm (a smaller network)")
    ap.add_argument("--probe-steps", type=int, default=3,
                    help="timed steps per arm for the online/BPTT step cost (0: skip)")
    ap.add_argument("--order", choices=("seed", "arm"), default="seed",
                    help="seed: every run of a seed before the next seed; arm: the baseline "
                         "and the estimate's folds for all seeds first, then each arm for all "
                         "seeds (what a run cut short keeps complete)")
    ap.add_argument("--resume", action="store_true",
                    help="keep the runs already in the JSON files (same budget)")
    ap.add_argument("--out-dir", default=str(RESULTS), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.cv_only and args.no_cv:
        ap.error("--cv-only and --no-cv exclude each other")
    arms = ["baseline"] + ([] if args.cv_only else
                           [a for a in args.arms if a != "baseline"])
    out_dir = Path(args.out_dir)
    abl_name, cv_name = (result_name(k, args.epochs) for k in ("ablation", "nmnist_cv"))
    budget = {"epochs": args.epochs, "folds": args.folds, "train_samples": args.train_samples,
              "recipe": RECIPE, "preset": PRESET, "config": args.config, "threads": THREADS}
    abl_runs: list[dict] = []
    cv_runs: list[dict] = []
    if args.resume:
        for name, store in ((abl_name, abl_runs), (cv_name, cv_runs)):
            p = out_dir / f"{name}.json"
            if p.exists():
                old = json.loads(p.read_text())
                if old.get("budget") != budget:     # never mix, never overwrite: say so
                    ap.error(f"--resume: {p} holds runs of another setting "
                             f"({old.get('budget')}, not {budget}); move it away or run "
                             "without --resume")
                store.extend(old["runs"])
        join(abl_runs, [r for r in cv_runs if r["fold"] == 0])    # one run in both tables
        join(cv_runs, [r for r in abl_runs if r["arm"] == "baseline"])
    data = load_data(Path(args.data))
    shown = os.path.relpath(args.data, ROOT)
    with Run("ablation", out_dir) as run:
        steps = step_seconds(data, ["baseline", "online"], args.probe_steps,
                             base_config=args.config) if args.probe_steps > 0 else {}
        print(json.dumps({"s_per_step": steps}), file=sys.stderr, flush=True)

        seeds_planned = list(args.seeds)
        arms_planned = list(arms)

        def save(final: bool = False) -> dict:
            with locked(out_dir):
                if args.resume:                 # runs another process (other seeds) wrote
                    for name, store in ((abl_name, abl_runs), (cv_name, cv_runs)):
                        old = _read(out_dir / f"{name}.json", budget)
                        if old is not None:
                            join(store, old["runs"])
                            seeds_planned.extend(x for x in old.get("seeds_planned", [])
                                                 if x not in seeds_planned)
                            if name == abl_name:
                                arms_planned.extend(a for a in old.get("arms_planned", [])
                                                    if a not in arms_planned)
                # the baseline's fold-0 run is one run in both tables
                join(abl_runs, [r for r in cv_runs if r["fold"] == 0])
                join(cv_runs, [r for r in abl_runs if r["arm"] == "baseline"])
                done = {key(r) for r in abl_runs}
                abl = {"budget": budget, "partial": any(
                           (a, sd, 0) not in done for a in arms_planned for sd in seeds_planned),
                       "arms_planned": arms_planned, "seeds_planned": seeds_planned,
                       "runs": abl_runs, "summary": summarise(abl_runs, arms_planned),
                       "s_per_step_batch16": steps,
                       "data": f"{len(data)} real N-MNIST samples ({shown}); seed s: a "
                               f"stratified {args.folds}-fold partition of its own, trained on "
                               f"folds 1..{args.folds - 1}, scored on fold 0",
                       "threads": THREADS}
                if not args.cv_only:
                    _write(abl_name, abl, run, out_dir)
                if not args.no_cv:
                    summ = cv_summary(cv_runs, args.folds)
                    cv = {"budget": budget,
                          "partial": summ["seeds_complete"] < len(seeds_planned),
                          "seeds_planned": seeds_planned, "runs": cv_runs, "summary": summ,
                          "data": f"all {len(data)} real N-MNIST samples ({shown}), a "
                                  f"stratified {args.folds}-fold partition per seed",
                          "recipe_full": "tools/train_models.sh nmnist: 60 epochs",
                          "threads": THREADS}
                    _write(cv_name, cv, run, out_dir)
            return abl

        def have(store, arm, seed, fold):
            return any((r["arm"], r["seed"], r["fold"]) == (arm, seed, fold) for r in store)

        cv_folds = [] if args.no_cv else list(range(1, args.folds))
        if args.order == "seed":                  # each finished seed is a whole row
            todo = [(arm, seed, fold) for seed in args.seeds
                    for arm, fold in [("baseline", 0)] + [("baseline", f) for f in cv_folds]
                    + [(a, 0) for a in arms[1:]]]
        else:                                     # each finished arm has all its seeds
            todo = [("baseline", seed, 0) for seed in args.seeds] + \
                [("baseline", seed, f) for seed in args.seeds for f in cv_folds] + \
                [(a, seed, 0) for a in arms[1:] for seed in args.seeds]
        for arm, seed, fold in todo:
            if (fold == 0 and have(abl_runs, arm, seed, 0)) or \
                    (fold > 0 and have(cv_runs, arm, seed, fold)):
                continue
            if args.resume and not claim(out_dir, args.epochs, (arm, seed, fold)):
                continue                          # another live process trains it
            r = train_arm(arm, data, seed, fold, args.folds, args.epochs,
                          args.train_samples, args.config)
            print(json.dumps(r), file=sys.stderr, flush=True)
            if fold == 0:
                abl_runs.append(r)
            if arm == "baseline" and not args.no_cv:
                cv_runs.append(r)
            save()
        out = save(final=True)
        if args.cv_only:
            out = json.loads((out_dir / f"{cv_name}.json").read_text())
        out = {**out, "meta": run.meta()}
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

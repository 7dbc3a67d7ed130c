"""The ablation harness (bench/ablation.py) on a tiny budget, the bridge-off switch it
ablates, and the stratified k-fold partition the cross-validated estimate rests on."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from snn4_ros.models import checkpoint
from snn4_ros.models.datasets import FrameData
from snn4_ros.models.hybridnet import HybridNet, StreamingRunner, preset_config
from snn4_ros.models.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"channels": (4, 8, 8), "head_hidden": 16, "window": 6}


def _bench(name):
    """The bench module, loaded without leaking its one-thread setup (``bench_threads`` sets
    OMP/NUMBA_NUM_THREADS at import) into the tests that run after this one in the same
    process: numba refused a later kernel launch with 'Cannot set NUMBA_NUM_THREADS to a
    different value once the threads have been launched'."""
    sys.path.insert(0, str(ROOT / "bench"))
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    threads = torch.get_num_threads()
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}",
                                                      ROOT / "bench" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        torch.set_num_threads(threads)
    return mod


def _data(n=40, T=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = ((torch.rand(n, T, 2, 34, 34, generator=g) < 0.1) * 2).to(torch.uint8)
    return FrameData(frames, torch.arange(n) % 10, tuple(str(i) for i in range(10)))


def test_kfold_holds_every_sample_out_once_stratified():
    d = _data(50)
    seen = []
    for i in range(5):
        tr, held = d.fold(5, i, seed=3)
        assert len(tr) + len(held) == 50
        assert sorted(torch.bincount(held.labels, minlength=10).tolist()) == [1] * 10
        # the held-out fold and the training folds share no sample
        key = lambda f: {bytes(x.numpy().tobytes()) for x in f.frames}  # noqa: E731
        assert not key(tr) & key(held)
        seen.extend(bytes(x.numpy().tobytes()) for x in held.frames)
    assert len(seen) == 50 and len(set(seen)) == len({bytes(x.numpy().tobytes())
                                                       for x in d.frames})
    a, b = d.fold(5, 0, seed=0)[1], d.fold(5, 0, seed=1)[1]
    assert not torch.equal(a.frames, b.frames)          # each seed its own partition
    with pytest.raises(ValueError):
        d.fold(5, 5)


def test_bridge_off_changes_the_graph_streams_and_trains(tmp_path):
    torch.manual_seed(0)
    on = HybridNet(preset_config("hybridnet-nmnist", **SMALL))
    off = HybridNet(preset_config("hybridnet-nmnist", bridge="mean", **SMALL))
    names_on = {n for n, _ in on.named_parameters()}
    names_off = {n for n, _ in off.named_parameters()}
    assert any(n.startswith(("ers.", "sat.")) for n in names_on)
    assert not any(n.startswith(("ers.", "sat.")) for n in names_off)
    assert names_off < names_on and off.param_count() < on.param_count()
    x = _data(4).frames.float().transpose(0, 1)
    off.eval()
    with torch.no_grad():
        out = off(x)
        s, _ = off.backbone_seq(x)
        dense, att = off.bridge(s)
    # the plain-mean bridge is the window's mean spike map, attention uniform
    assert torch.allclose(dense, s[-off.cfg.window:].mean(0)) and bool((att == 1).all())
    runner = StreamingRunner(off)
    for t in range(x.shape[0]):
        step = runner.step(x[t])
    assert torch.allclose(step.logits, out.logits, atol=1e-5)
    before = [p.detach().clone() for p in off.parameters()]
    hist = train(off, _data(16), TrainConfig(epochs=1, batch_size=8, warmup_steps=1),
                 progress=False)
    assert np.isfinite(hist["loss"]).all()
    assert any(not torch.equal(a, p) for a, p in zip(before, off.parameters()))
    st, _ = checkpoint.save(off, tmp_path / "m", {})
    back, _ = checkpoint.load(tmp_path / "m")
    assert back.cfg.bridge == "mean" and back.ers is None
    with pytest.raises(ValueError, match="bridge"):
        preset_config("hybridnet-nmnist", bridge="attention")


def test_ablation_harness_tiny_budget(tmp_path, shared_data):
    src = shared_data / "nmnist_train1k"
    lines = [ln for ln in (src / "labels.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    by_class = {}
    for ln in lines:                                   # 2 samples of each digit
        by_class.setdefault(ln.split()[1], []).append(ln)
    keep = [ln for c in sorted(by_class) for ln in by_class[c][:2]]
    folder = tmp_path / "nm"
    folder.mkdir()
    (folder / "labels.txt").write_text("\n".join(keep) + "\n")
    for ln in keep:
        sid = ln.split()[0]
        (folder / f"{sid}.bs2").write_bytes((src / f"{sid}.bs2").read_bytes())
    # in a process of its own, as a user runs it: the bench sets one torch/numba thread for
    # its process (bench_threads), which must not leak into the other tests
    def ab_main(args):
        return subprocess.run([sys.executable, str(ROOT / "bench" / "ablation.py"), *args],
                              capture_output=True, text=True, timeout=600).returncode

    out = tmp_path / "results"
    argv = ["--epochs", "1", "--seeds", "0", "1", "--folds", "2", "--arms", "bridge_mean",
            "--data", str(folder), "--config", json.dumps({"channels": [4, 8, 8],
                                                           "head_hidden": 16}),
            "--probe-steps", "1", "--out-dir", str(out)]
    assert ab_main(argv + ["--order", "arm"]) == 0
    abl = json.loads((out / "ablation_e1.json").read_text())
    cv = json.loads((out / "nmnist_cv_e1.json").read_text())
    assert abl["partial"] is False and cv["partial"] is False
    runs = {(r["arm"], r["seed"], r["fold"]) for r in abl["runs"]}
    assert runs == {("baseline", 0, 0), ("baseline", 1, 0), ("bridge_mean", 0, 0),
                    ("bridge_mean", 1, 0)}
    for arm in ("baseline", "bridge_mean"):
        s = abl["summary"][arm]
        accs = [r["accuracy"] for r in abl["runs"] if r["arm"] == arm]
        assert s["seeds"] == [0, 1] and s["accuracy"] == accs
        assert s["mean"] == pytest.approx(np.mean(accs), abs=1e-4)
        assert s["std"] == pytest.approx(np.std(accs, ddof=1), abs=1e-4)
        assert all(r["held_out"] == 10 and r["train_samples"] == 10 for r in abl["runs"])
    assert abl["summary"]["baseline"]["paired_diff_mean"] == 0
    assert set(abl["s_per_step_batch16"]) == {"baseline", "online"}
    # the estimate: both folds of each seed, every sample scored once per seed
    assert {(r["seed"], r["fold"]) for r in cv["runs"]} == {(0, 0), (0, 1), (1, 0), (1, 1)}
    for seed, v in cv["summary"]["per_seed"].items():
        assert v["n"] == 20 and v["correct"] == sum(
            r["correct"] for r in cv["runs"] if r["seed"] == int(seed))
    assert cv["summary"]["seeds_complete"] == 2 and cv["summary"]["goal_met"] is None
    # --resume keeps what is there and trains nothing new
    t0 = (out / "ablation_e1.json").read_text()
    assert ab_main(argv + ["--resume", "--arms", "bridge_mean"]) == 0
    assert json.loads((out / "ablation_e1.json").read_text())["runs"] == json.loads(t0)["runs"]
    # the estimate alone (bench/nmnist_cv.py): all its runs are there, ablation.json untouched
    t1 = (out / "ablation_e1.json").read_text()
    assert ab_main(argv + ["--resume", "--cv-only"]) == 0
    assert (out / "ablation_e1.json").read_text() == t1
    assert json.loads((out / "nmnist_cv_e1.json").read_text())["runs"] == cv["runs"]
    assert all(r["epochs"] == 1 for r in abl["runs"] + cv["runs"])
    # another budget: files of its own; the budget-1 tables are neither joined nor overwritten
    t2 = {n: (out / f"{n}_e1.json").read_text() for n in ("ablation", "nmnist_cv")}
    assert argv[:5] == ["--epochs", "1", "--seeds", "0", "1"]
    assert ab_main(["--epochs", "2", "--seeds", "0", *argv[5:], "--cv-only", "--resume"]) == 0
    assert {n: (out / f"{n}_e1.json").read_text() for n in ("ablation", "nmnist_cv")} == t2
    cv2 = json.loads((out / "nmnist_cv_e2.json").read_text())
    assert {r["epochs"] for r in cv2["runs"]} == {2} and len(cv2["runs"]) == 2
    assert not (out / "ablation_e2.json").exists()
    # two processes (one per core), other seeds, the same budget and file: each adds the
    # other's finished runs, nothing is lost, and the table is whole when both are done
    rest = ["--folds", "2", "--data", str(folder), "--config", argv[argv.index("--config") + 1],
            "--probe-steps", "0", "--out-dir", str(out), "--cv-only", "--resume",
            "--epochs", "3"]
    procs = [subprocess.Popen([sys.executable, str(ROOT / "bench" / "ablation.py"), *rest,
                               "--seeds", "0", "1"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    trained = [json.loads(ln) for e in errs for ln in e.splitlines() if '"fold"' in ln]
    # every run trained once, by one of the two (each claims a run before training it)
    assert sorted((r["seed"], r["fold"]) for r in trained) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    cv3 = json.loads((out / "nmnist_cv_e3.json").read_text())
    assert {(r["seed"], r["fold"]) for r in cv3["runs"]} == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert sorted(cv3["seeds_planned"]) == [0, 1] and cv3["partial"] is False
    assert cv3["summary"]["seeds_complete"] == 2
    # a file of another setting under the same name is refused by --resume, not overwritten
    wrong = json.loads(t2["nmnist_cv"])
    wrong["budget"]["recipe"] = {**wrong["budget"]["recipe"], "lr": 1.0}
    (out / "nmnist_cv_e1.json").write_text(json.dumps(wrong))
    assert ab_main(argv + ["--resume", "--cv-only"]) == 2
    assert json.loads((out / "nmnist_cv_e1.json").read_text()) == wrong
    # and the README sections render from these files
    rd = _bench("readme")
    assert "bridge off" in rd.section_ablation(abl)
    assert "seed" in rd.section_nmnist_cv(cv)
    # the convergence curve (bench/nmnist_curve.py): one run per budget, a point per epoch
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "nmnist_curve.py"), "--budgets",
                        "1", "2", "--folds", "2", "--data", str(folder), "--config",
                        json.dumps({"channels": [4, 8, 8], "head_hidden": 16}),
                        "--plot", str(tmp_path / "curve.png"), "--out-dir", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    curve = json.loads((out / "nmnist_curve.json").read_text())
    assert curve["partial"] is False and [r["epochs"] for r in curve["runs"]] == [1, 2]
    assert [r["curve_epochs"] for r in curve["runs"]] == [[1], [1, 2]]
    assert [len(r["curve"]) for r in curve["runs"]] == [1, 2]
    # the last point scores the final weights, recalibrated as train() does at the end: the
    # run's own final accuracy
    assert all(r["curve"][-1] == r["accuracy"] for r in curve["runs"])
    (c,) = curve["summary"]
    assert c["plateau"] == curve["runs"][1]["accuracy"] and c["chosen_epochs"] in (1, 2)
    assert (tmp_path / "curve.png").stat().st_size > 0
    assert "held-out accuracy after epoch e" in rd.section_nmnist_curve(curve)


def test_summaries_refuse_runs_of_different_budgets():
    ab = _bench("ablation")
    run = {"arm": "baseline", "seed": 0, "fold": 0, "correct": 5, "n": 10, "accuracy": 0.5,
           "firing_rate": 0.1, "s_per_epoch": 1.0}
    mixed = [{**run, "epochs": 2}, {**run, "fold": 1, "epochs": 12}]
    with pytest.raises(ValueError, match="different budgets"):
        ab.cv_summary(mixed, 2)
    with pytest.raises(ValueError, match="different budgets"):
        ab.summarise([{**run, "epochs": 2}, {**run, "seed": 1, "epochs": 12}], ["baseline"])
    same = ab.cv_summary([{**run, "epochs": 12}, {**run, "fold": 1, "epochs": 12}], 2)
    assert same["per_seed"]["0"] == {"correct": 10, "n": 20, "accuracy": 0.5,
                                     "fold_accuracy": [0.5, 0.5]}
    assert ab.result_name("nmnist_cv", 12) == "nmnist_cv_e12"


def test_epoch_hook_leaves_training_unchanged_and_curve_budget_choice():
    """The convergence curve scores a copy after every epoch: the run trains exactly as it
    would without it (same weights), and the hook sees every epoch."""
    data = _data(16)
    cfg = TrainConfig(epochs=2, batch_size=8, warmup_steps=1, augment_shift=1)
    models = []
    seen = []
    # the first training in a process differs in the last float bits from the later ones
    # (kernels warming up), so a warm-up run goes first and the compared runs are both warm
    for hook in (None, None, lambda e, m: seen.append((e, m.training))):
        torch.manual_seed(0)
        m = HybridNet(preset_config("hybridnet-nmnist", **SMALL))
        train(m, data, cfg, progress=False, on_epoch=hook)
        models.append(m)
    assert [e for e, _ in seen] == [1, 2]
    for a, b in zip(models[1].state_dict().values(), models[2].state_dict().values()):
        assert torch.equal(a, b)
    # a hook that scores a recalibrated copy (what bench/nmnist_curve.py does) changes nothing
    import copy

    from snn4_ros.models.train import recalibrate_bn

    def scoring(e, m):
        twin = copy.deepcopy(m)
        recalibrate_bn(twin, data)
        with torch.no_grad():
            seen.append(float(twin(data.frames[:4].float().transpose(0, 1)).logits.sum()))

    torch.manual_seed(0)
    m = HybridNet(preset_config("hybridnet-nmnist", **SMALL))
    train(m, data, cfg, progress=False, on_epoch=scoring)
    for a, b in zip(models[1].state_dict().values(), m.state_dict().values()):
        assert torch.equal(a, b)
    curve = _bench("nmnist_curve")
    runs = [{"lr": 3e-3, "epochs": e, "accuracy": a}
            for e, a in ((4, 0.90), (8, 0.975), (16, 0.98), (32, 0.985))]
    c = curve.choose_budget(runs, 3e-3, 0.01)
    assert c["plateau"] == 0.985 and c["chosen_epochs"] == 8 and c["plateau_epochs"] == 32
    assert curve.choose_budget(runs, 1e-2, 0.01)["chosen_epochs"] is None


def test_train_threads_flag(capsys):
    from snn4_ros.app.cli import main
    from snn4_ros.models.train import set_threads

    import numba

    before, nb_before = torch.get_num_threads(), numba.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
        numba.set_num_threads(nb_before)
    assert main(["train", "--dataset", "synthetic:2", "--out", "/nonexistent/x",
                 "--threads", "-1"]) == 2
    assert "--threads must be >= 0" in capsys.readouterr().err

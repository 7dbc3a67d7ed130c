"""Neurons, surrogate gradients, layers, HybridNet, streaming, checkpoints (tiny models)."""

import json

import pytest
import torch

from snn4_ros.models import checkpoint
from snn4_ros.models.hybridnet import (PRESETS, HybridNet, StreamingRunner, preset_config)
from snn4_ros.models.layers import SDSA, SpikingConv
from snn4_ros.models.neurons import ALIF, CUBALIF, LIF, PLIF, TCLIF, make_neuron
from snn4_ros.models.surrogate import KINDS, Surrogate, SurrogateSchedule, primitive


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("learnable", [False, True])
def test_surrogate_gradient_matches_finite_differences(kind, learnable):
    alpha = 3.0
    sur = Surrogate(kind, alpha, learnable).double()
    x = torch.linspace(-1.5, 1.5, 61, dtype=torch.float64).requires_grad_()
    y = sur(x)
    assert torch.equal(y.detach(), (x > 0).double().detach())        # forward is a step
    y.sum().backward()
    h = 1e-6
    a = sur.alpha.detach().double()
    fd = (primitive(x.detach() + h, kind, a) - primitive(x.detach() - h, kind, a)) / (2 * h)
    # rectangle/triangle kinks: compare away from the break points
    ok = torch.ones_like(x, dtype=torch.bool)
    if kind in ("rectangle", "triangle"):
        for b in ([-0.5 / alpha, 0.5 / alpha] if kind == "rectangle" else [-1 / alpha, 0, 1 / alpha]):
            ok &= (x.detach() - b).abs() > 1e-3
    assert torch.allclose(x.grad[ok], fd[ok], atol=1e-5)


def test_learnable_width_gets_a_gradient_and_schedule():
    sur = Surrogate("fast_sigmoid", 2.0, learnable=True)
    x = torch.randn(100, requires_grad=True)
    sur(x).sum().backward()
    assert sur.raw_alpha.grad is not None and sur.raw_alpha.grad.abs() > 0
    fixed = Surrogate("arctan", 1.0)
    sched = SurrogateSchedule(1.0, 5.0, 100)
    fixed.set_alpha(sched.at(50))
    assert float(fixed.alpha) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        Surrogate("nope")
    with pytest.raises(ValueError):
        Surrogate("arctan", -1)


@pytest.mark.parametrize("cls", [LIF, PLIF, ALIF, TCLIF, CUBALIF])
def test_multi_step_equals_step_loop(cls):
    torch.manual_seed(0)
    n = cls()
    x = torch.randn(12, 4, 7) * 1.5
    seq = n(x)
    st = n.init_state(x[0])
    outs = []
    for t in range(12):
        s, st = n.step(x[t], st)
        outs.append(s)
    assert torch.equal(seq, torch.stack(outs))
    with torch.no_grad():
        assert torch.equal(n(x), seq)                  # the fused inference path agrees
    assert 0 < seq.mean() < 1


def test_lif_dynamics_by_hand():
    n = LIF(tau=2.0, threshold=1.0, reset="hard")
    s = n(torch.tensor([[0.6], [0.6], [0.6], [0.0]]))
    # v: 0.6, 0.9, 1.05 -> spike, reset to 0
    assert s[:, 0].tolist() == [0, 0, 1, 0]
    soft = LIF(tau=2.0, reset="soft")
    s, st = soft(torch.tensor([[2.5]]), state=soft.init_state(torch.zeros(1)))
    assert s.item() == 1 and st.v.item() == pytest.approx(1.5)
    c = CUBALIF(du=0.5, dv=0.5, threshold=1.0)
    s, st = c.step(torch.tensor([0.8]), c.init_state(torch.zeros(1)))
    assert st.u.item() == pytest.approx(0.8) and st.v.item() == pytest.approx(0.8)
    s, st = c.step(torch.tensor([0.0]), st)        # u 0.4, v 0.4 + 0.4 = 0.8
    assert s.item() == 0 and st.v.item() == pytest.approx(0.8)


def test_lif_fast_backward_equals_autograd():
    for reset in ("hard", "soft"):
        n = LIF(tau=3.0, reset=reset, surrogate=Surrogate("triangle", 1.5))
        x = torch.randn(9, 2, 6, requires_grad=True)
        w = torch.randn(6)
        (n(x) * w).sum().backward()
        g_fast = x.grad.clone()
        x.grad = None
        from snn4_ros.models.neurons import Neuron
        (Neuron.forward(n, x) * w).sum().backward()
        assert torch.allclose(g_fast, x.grad, atol=1e-6)


def test_neuron_parameter_errors():
    with pytest.raises(ValueError):
        LIF(tau=0.5)
    with pytest.raises(ValueError):
        LIF(reset="sideways")
    with pytest.raises(ValueError):
        CUBALIF(du=1.5)
    with pytest.raises(ValueError):
        make_neuron("izhikevich")


def test_plif_and_tclif_learn():
    for n in (PLIF(tau=2.0), TCLIF()):
        x = torch.randn(6, 3, 5, requires_grad=True)
        n(x * 2).sum().backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in n.parameters())


def test_spiking_conv_and_sdsa_stream_like_batch():
    torch.manual_seed(1)
    conv = SpikingConv(2, 8, LIF(), 3, 2).eval()
    att = SDSA(8, lambda: LIF()).eval()
    x = (torch.rand(5, 2, 2, 16, 16) < 0.2).float()
    with torch.no_grad():
        y = att(conv(x))
        st_c = st_a = None
        outs = []
        for t in range(5):
            s, st_c = conv.step(x[t], st_c)
            o, st_a = att.step(s, st_a)
            outs.append(o)
    assert torch.allclose(y, torch.stack(outs), atol=1e-6)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_streaming_equals_whole_window(preset):
    torch.manual_seed(0)
    cfg = preset_config(preset)
    m = HybridNet(cfg).eval()
    T = cfg.window + 3
    x = (torch.rand(T, 1, 2, cfg.input_height, cfg.input_width) < 0.05).float() * 2
    r = StreamingRunner(m)
    for t in range(T):
        o = r.step(x[t])
        if t in (0, cfg.window // 2, T - 1):
            ref = m(x[: t + 1])
            assert torch.allclose(o.logits, ref.logits, atol=1e-5)
            if cfg.tracking:
                assert torch.allclose(o.position, ref.position, atol=1e-4)
    cls, conf, bins = r.decide(x, threshold=0.0)
    assert bins == 1 and 0 <= cls < len(cfg.classes)
    cls, conf, bins = r.decide(x, threshold=1.01)
    assert bins == T


def test_hybridnet_bad_input():
    m = HybridNet(preset_config("hybridnet-xs")).eval()
    with pytest.raises(ValueError, match=r"expects input \[T, B, C, H, W\].*\(2, 64, 64\)"):
        m(torch.zeros(4, 1, 2, 32, 32))
    with pytest.raises(ValueError, match="NaN"):
        m(torch.full((4, 1, 2, 64, 64), float("nan")))
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        StreamingRunner(m).step(torch.zeros(4, 1, 2, 64, 64))
    with pytest.raises(ValueError, match="unknown preset"):
        preset_config("hybridnet-xxl")


def test_checkpoint_round_trip_and_errors(tmp_path):
    m = HybridNet(preset_config("hybridnet-xs")).eval()
    checkpoint.save(m, tmp_path / "m", {"metrics": {"accuracy": 0.5}})
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["preset"] == "hybridnet-xs" and card["parameters"] == m.param_count()
    m2, card2 = checkpoint.load(tmp_path / "m.safetensors")
    x = torch.rand(3, 1, 2, 64, 64)
    assert torch.equal(m(x).logits, m2(x).logits)
    with pytest.raises(checkpoint.CheckpointError, match="expected 'hybridnet-s'"):
        checkpoint.load(tmp_path / "m", expect_preset="hybridnet-s")
    # weights of another preset under this card
    other = HybridNet(preset_config("hybridnet-s"))
    checkpoint.save(other, tmp_path / "o")
    (tmp_path / "o.json").write_text((tmp_path / "m.json").read_text())
    with pytest.raises(checkpoint.CheckpointError, match="another preset"):
        checkpoint.load(tmp_path / "o")
    # a pickle and a corrupted file are refused, never unpickled
    torch.save(m.state_dict(), tmp_path / "p.safetensors")
    (tmp_path / "p.json").write_text((tmp_path / "m.json").read_text())
    with pytest.raises(checkpoint.CheckpointError, match="safetensors"):
        checkpoint.load(tmp_path / "p")
    data = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "c.safetensors").write_bytes(data[: len(data) // 2])
    (tmp_path / "c.json").write_text((tmp_path / "m.json").read_text())
    with pytest.raises(checkpoint.CheckpointError, match="corrupted"):
        checkpoint.load(tmp_path / "c")
    with pytest.raises(checkpoint.CheckpointError, match="card missing"):
        (tmp_path / "n.safetensors").write_bytes(data)
        checkpoint.load(tmp_path / "n")


def test_train_eval_cli_on_real_nmnist(tmp_path, shared_data):
    """A tiny model trained for one epoch on a few real N-MNIST samples, then evaluated."""
    import subprocess
    import sys

    folder = tmp_path / "nm"
    folder.mkdir()
    src = shared_data / "nmnist_train1k"
    lines = (src / "labels.txt").read_text().splitlines()
    keep = [ln for ln in lines if ln.strip() and not ln.startswith("#")][:60]
    (folder / "labels.txt").write_text("\n".join(keep) + "\n")
    for ln in keep:
        sid = ln.split()[0]
        (folder / f"{sid}.bs2").write_bytes((src / f"{sid}.bs2").read_bytes())
    cfg = json.dumps({"channels": [8, 16, 32], "head_hidden": 32, "window": 6})
    out = tmp_path / "m"
    r = subprocess.run([sys.executable, "-m", "snn4_ros.app.cli", "train", "--dataset",
                        f"nmnist:{folder}", "--preset", "hybridnet-nmnist", "--config", cfg,
                        "--epochs", "2", "--val-split", "0.2", "--out", str(out), "--quiet"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "epoch 2/2" in r.stdout
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["metrics"]["n"] + card["training"]["samples"] == 60
    assert 10 <= card["metrics"]["n"] <= 14 and "snn4 train" in card["command"]
    assert len(card["training"]["history"]["loss"]) == 2
    r = subprocess.run([sys.executable, "-m", "snn4_ros.app.cli", "eval", "--model",
                        str(out) + ".safetensors", "--dataset", f"nmnist:{folder}", "--json",
                        "--plot", str(tmp_path / "c.png")],
                       capture_output=True, text=True, timeout=600, check=True)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("accuracy", "n", "per_class", "confusion", "mean_decision_bins",
                "synops_per_sample", "macs_per_sample"):
        assert key in res
    assert res["n"] == 60 and sum(map(sum, res["confusion"])) == 60
    assert 1 <= res["mean_decision_bins"] <= 6 and res["synops_per_sample"] > 0
    assert (tmp_path / "c.png").stat().st_size > 1000
    # resume one more epoch from the saved state
    r = subprocess.run([sys.executable, "-m", "snn4_ros.app.cli", "train", "--dataset",
                        f"nmnist:{folder}", "--preset", "hybridnet-nmnist", "--config", cfg,
                        "--epochs", "3", "--val-split", "0.2", "--out", str(out), "--quiet",
                        "--resume"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "epoch 3/3" in r.stdout and "epoch 1/3" not in r.stdout
    # a model file that is not a checkpoint: clear error, exit 2
    (tmp_path / "bad.safetensors").write_bytes(b"\x80\x04junk")
    (tmp_path / "bad.json").write_text((tmp_path / "m.json").read_text())
    r = subprocess.run([sys.executable, "-m", "snn4_ros.app.cli", "eval", "--model",
                        str(tmp_path / "bad"), "--dataset", f"nmnist:{folder}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "safetensors" in r.stderr


def test_dataset_specs_folder_and_dvsgesture(tmp_path, shared_data):
    import numpy as np

    from snn4_ros.models.datasets import load_dataset

    cfg = preset_config("hybridnet-xs")
    # folder:DIR -- real AEDAT4 clips with a labels.csv
    files = sorted((shared_data / "aedat4_dvs128").glob("*.aedat4"))[:3]
    (tmp_path / "labels.csv").write_text("path,label\n" + "".join(
        f"{f},{lab}\n" for f, lab in zip(files, ["hand_clap", "other", "arm_roll"])))
    d = load_dataset(f"folder:{tmp_path}", cfg)
    assert d.frames.shape == (3, cfg.window, 2, 64, 64) and d.labels.tolist() == [0, 10, 7]
    assert d.frames.sum() > 0
    (tmp_path / "labels.csv").write_text(f"path,label\n{files[0]},juggling\n")
    with pytest.raises(ValueError, match="juggling"):
        load_dataset(f"folder:{tmp_path}", cfg)
    # dvsgesture:DIR -- tonic's layout, events as structured .npy (made here: the real set is
    # not on these machines)
    base = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_led"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for label in (0, 4):
        a = np.zeros(500, dtype=[("x", "<i2"), ("y", "<i2"), ("p", "<i2"), ("t", "<i8")])
        a["x"], a["y"], a["p"] = rng.integers(0, 128, 500), rng.integers(0, 128, 500), 1
        a["t"] = np.sort(rng.integers(0, 400_000, 500))      # inside the 480 ms window
        np.save(base / f"{label}.npy", a)
    d = load_dataset(f"dvsgesture:{tmp_path}", cfg)
    assert d.labels.tolist() == [0, 4] and int(d.frames.sum()) == 1000
    with pytest.raises(ValueError, match="unknown dataset kind"):
        load_dataset("imagenet:/x", cfg)


def test_rate_regularisation_moves_the_firing_rate():
    from snn4_ros.models.train import TrainConfig, loss_fn

    torch.manual_seed(0)
    cfg = preset_config("hybridnet-xs", tracking=False)
    m = HybridNet(cfg)
    x = (torch.rand(cfg.window, 4, 2, 64, 64) < 0.1).float() * 3
    y = torch.zeros(4, dtype=torch.long)
    base, _ = loss_fn(m, x, y, None, TrainConfig(rate_reg=0.0))
    reg, _ = loss_fn(m, x, y, None, TrainConfig(rate_reg=100.0, rate_target=0.0))
    assert reg > base
    m.zero_grad()
    reg.backward()
    grads = [p.grad.abs().sum() for p in m.backbone[0].parameters() if p.grad is not None]
    assert grads and sum(grads) > 0


def test_ddp_training_under_torchrun(tmp_path, shared_data):
    """Two CPU processes (gloo) under torchrun: gradients averaged, rank 0 writes the model."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    src = shared_data / "nmnist_train1k"
    rows = [ln for ln in (src / "labels.txt").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")][:24]
    (tmp_path / "labels.txt").write_text("\n".join(rows) + "\n")
    for ln in rows:
        shutil.copy(src / f"{ln.split()[0]}.bs2", tmp_path)
    torchrun = Path(sys.executable).parent / "torchrun"
    cfg = json.dumps({"channels": [4, 8, 8], "head_hidden": 8, "window": 4, "sat_groups": 2})
    r = subprocess.run([str(torchrun), "--nproc_per_node=2", "-m", "snn4_ros.app.cli", "train",
                        "--dataset", f"nmnist:{tmp_path}", "--preset", "hybridnet-nmnist",
                        "--config", cfg, "--epochs", "1", "--out", str(tmp_path / "m"),
                        "--quiet"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("training hybridnet-nmnist") == 1
    model, card = checkpoint.load(tmp_path / "m")
    assert card["training"]["samples"] == 24

"""ANN-to-SNN conversion with QCFS (models/convert.py, `snn4 convert`): the activation's
floor, clip and shift and its straight-through gradients; the IF neuron's spike counts equal
the QCFS levels exactly where the theory says (T = L, constant input) and signed spikes
remove the unevenness error; a converted network approaches its ANN as T grows; it saves,
loads and streams as any snn4 model; the command end to end on real N-MNIST digits; and what
cannot convert is refused with the reason."""

import json

import numpy as np
import pytest
import torch

from snn4_ros.app.cli import main
from snn4_ros.models import checkpoint
from snn4_ros.models.convert import (ConversionError, check_convertible, convert, qcfs_config,
                                     rebin, thresholds)
from snn4_ros.models.datasets import FrameData
from snn4_ros.models.hybridnet import HybridNet, StreamingRunner, preset_config
from snn4_ros.models.loihi import LoihiCompatibilityError, check_loihi
from snn4_ros.events.errors import UserError
from snn4_ros.models.neurons import IF, QCFS


def test_qcfs_floor_clip_shift():
    q = QCFS(levels=4, lam=2.0)                    # step lam / L = 0.5
    x = torch.tensor([-1.0, 0.0, 0.2, 0.25, 0.5, 1.0, 1.9, 3.0])
    y = q.activation(x).detach()
    # lam/L * clip(floor(x L / lam + 0.5), 0, L): the +0.5 shift rounds to the nearest level
    assert y.tolist() == [0.0, 0.0, 0.0, 0.5, 0.5, 1.0, 2.0, 2.0]
    z = torch.linspace(-3, 5, 1001)
    levels = (q.activation(z).detach() / 0.5)
    assert torch.equal(levels, levels.round()) and levels.min() == 0 and levels.max() == 4
    ref = 0.5 * torch.clamp(torch.floor(z * 4 / 2.0 + 0.5), 0, 4)
    assert torch.allclose(q.activation(z).detach(), ref)


def test_qcfs_gradients_are_straight_through_and_lam_learns():
    q = QCFS(levels=4, lam=2.0)
    x = torch.tensor([-0.5, 0.3, 1.2, 2.5], requires_grad=True)
    q.activation(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]     # d floor := 1 inside (0, lam), clip: 0
    assert q.lam.grad is not None
    q.lam.grad = None
    q.activation(torch.tensor([5.0])).sum().backward()
    assert q.lam.grad.item() == pytest.approx(1.0)      # clipped: h = lam
    # the clip learns: fitting min(relu(x), 3) from lam = 1 raises lam towards 3
    q = QCFS(levels=8, lam=1.0)
    opt = torch.optim.Adam(q.parameters(), lr=0.05)
    x = torch.rand(4096) * 4
    for _ in range(150):
        opt.zero_grad()
        ((q.activation(x) - x.clamp(max=3.0)) ** 2).mean().backward()
        opt.step()
    assert 2.6 < q.lam.item() < 3.4


def _if_counts(neuron, xs):
    st = neuron.init_state(xs[0])
    n = torch.zeros_like(xs[0])
    for x in xs:
        s, st = neuron.step(x, st)
        n = n + s
    return n


@torch.no_grad()
def test_if_counts_are_the_qcfs_levels_exactly():
    """Constant input x (thresholds per step), membrane started at 1/2: floor(1/2 + T x)
    spikes in T steps, clipped to [0, T], at every T; at T = L that is QCFS's level."""
    x = torch.arange(-16, 48) / 32.0                  # dyadic: no rounding anywhere
    for T in (1, 2, 3, 4, 8, 16):
        n = _if_counts(IF(), [x] * T)
        assert torch.equal(n, torch.clamp(torch.floor(0.5 + T * x), 0, T)), T
    L, lam = 8, 2.0
    q = QCFS(levels=L, lam=lam)
    z = x * lam                                       # pre-activations; x = z / lam
    assert torch.equal(_if_counts(IF(), [x] * L) * (lam / L), q.activation(z).detach())


@torch.no_grad()
def test_signed_spikes_remove_the_unevenness_error():
    # an early burst, later inhibition: the total asks for 1 spike
    xs = [torch.tensor([v]) for v in (1.0, 1.0, -0.5, -0.5, 0, 0, 0, 0)]
    assert _if_counts(IF(), xs).item() == 2
    assert _if_counts(IF(signed=True), xs).item() == 1
    # any order of inputs moving at most one threshold per step: the signed count is
    # max(0, floor(1/2 + sum)); the plain one misses it on some sequences
    g = torch.Generator().manual_seed(0)
    xs = torch.randint(-16, 17, (32, 4000), generator=g) / 16.0
    want = torch.clamp(torch.floor(0.5 + xs.sum(0)), min=0)
    assert torch.equal(_if_counts(IF(signed=True), list(xs)), want)
    assert (_if_counts(IF(), list(xs)) != want).float().mean() > 0.1


def _tiny_twin(levels=4, seed=0):
    torch.manual_seed(seed)
    ann = HybridNet(qcfs_config("hybridnet-nmnist", levels, channels=(4, 8, 8),
                                head_hidden=8)).double()
    for layer in ann.backbone:                      # a trained-looking batch norm
        layer.bn.weight.data.uniform_(0.5, 1.5)
        layer.bn.bias.data.uniform_(-0.2, 0.6)
        layer.bn.running_var.uniform_(0.5, 2.0)
        layer.neuron.lam.data.uniform_(1.0, 3.0)
    return ann.eval()


@torch.no_grad()
def test_conversion_is_exact_at_T_equal_L_and_approaches_the_ann_as_T_grows():
    ann = _tiny_twin(levels=4)
    g = torch.Generator().manual_seed(1)
    acc = torch.poisson(torch.full((1, 3, 2, 34, 34), 1.5), generator=g).double()
    h_ann = ann.backbone[0](acc)[0]                            # [B, C, H, W]
    lam0 = thresholds(ann)[0]
    # first layer, constant input over T = L = 4 steps: the rate times lam is the ANN's
    snn = convert(ann, 4).double()
    s = snn.backbone[0](acc.expand(4, -1, -1, -1, -1) / 4)
    assert torch.allclose(s.sum(0) * lam0 / 4, h_ann, atol=1e-9)
    # the whole network at T = L: the QCFS ANN's outputs up to the deeper layers'
    # unevenness (their input arrives as spikes, not evenly), which signed spikes take out
    ref = ann(acc)
    scale = float(ref.logits.abs().max())
    at_l = {c: float((convert(ann, 4, c).double()(acc.expand(4, -1, -1, -1, -1) / 4).logits
                      - ref.logits).abs().max()) for c in ("none", "signed")}
    # as T grows the rates approach the clip alone (QCFS with L -> infinity: the same
    # network, not quantised); the conversion does not depend on L
    for layer in ann.backbone:
        layer.neuron.levels = 1 << 20
    clip_ref = ann(acc).logits
    errs = {}
    for comp in ("none", "signed"):
        for T in (2, 8, 32, 120):
            out = convert(ann, T, comp).double()(acc.expand(T, -1, -1, -1, -1) / T)
            errs[comp, T] = float((out.logits - clip_ref).abs().max())
    for comp in ("none", "signed"):
        assert errs[comp, 120] < errs[comp, 8] < errs[comp, 2], errs
        assert errs[comp, 120] < 0.01 * scale, errs
    for layer in ann.backbone:
        layer.neuron.levels = 4
    # at T = L the signed network is the QCFS ANN (here no layer gets more than one
    # threshold in a step); without compensation the deeper layers keep some unevenness
    assert at_l["signed"] < 1e-9 < at_l["none"], at_l


def test_converted_model_saves_loads_streams_and_is_refused_where_it_does_not_map(tmp_path):
    ann = _tiny_twin(levels=4).float()
    snn = convert(ann, 8, "signed")
    assert snn.cfg.window == 8 and snn.cfg.bin_us == 37_500 and snn.cfg.bridge_input == "rate"
    checkpoint.save(snn, tmp_path / "conv", {"conversion": {"steps": 8}})
    loaded, card = checkpoint.load(tmp_path / "conv")
    assert card["config"]["neuron"] == "if" and card["config"]["neuron_kwargs"]["signed"]
    x = torch.poisson(torch.full((8, 1, 2, 34, 34), 0.3))
    with torch.no_grad():
        full = loaded(x)
        assert torch.allclose(full.logits, snn(x).logits, atol=1e-5)
        runner = StreamingRunner(loaded)
        for t in range(8):
            out = runner.step(x[t])
    assert torch.allclose(out.logits, full.logits, atol=1e-4)
    # the window coding (QCFS's constant current) is the bins coding fed the bins' mean, and
    # cannot stream: it needs the whole window before its first step
    win = convert(ann, 8, "signed", coding="window")
    with torch.no_grad():
        assert torch.equal(win(x).logits, snn(x.mean(0, keepdim=True).expand_as(x)).logits)
    with pytest.raises(UserError, match="whole window"):
        StreamingRunner(win)
    with pytest.raises(LoihiCompatibilityError, match="IF neurons.*resets to zero"):
        check_loihi(loaded)
    from snn4_ros.models import nir_io
    with pytest.raises(nir_io.NIRError, match="reset"):
        nir_io.write(loaded, tmp_path / "c.nir")


def test_rebin_sums_adjacent_bins():
    f = torch.randint(0, 200, (3, 8, 2, 4, 4), dtype=torch.uint8)
    d = FrameData(f, torch.zeros(3, dtype=torch.long), ("0",))
    two = rebin(d, 2).frames
    assert torch.equal(two[:, 0].int(), f[:, :4].int().sum(1).clamp(max=255))
    assert torch.equal(rebin(d, 8).frames, f)


@pytest.mark.parametrize("preset,why", [("hybridnet-s-sdsa", "multiplies spikes"),
                                        ("hybridnet-loihi", "reset to zero")])
def test_what_cannot_convert_is_refused_with_the_reason(preset, why, capsys):
    with pytest.raises(ConversionError, match=why):
        check_convertible(preset_config(preset))
    assert main(["convert", "--dataset", "synthetic:n=1", "--preset", preset, "--out",
                 "/nonexistent/x"]) == 2
    err = capsys.readouterr().err
    assert why in err and "Traceback" not in err


def test_bad_arguments_are_one_line_errors(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["convert", "--dataset", "synthetic:n=1", "--preset", "hybridnet-m",
              "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'hybridnet-m'" in err and len(err.strip().splitlines()) == 1
    # 7 steps do not divide N-MNIST's 300 ms window into whole microseconds
    with pytest.raises(ConversionError, match="T=7"):
        from snn4_ros.models.convert import snn_config
        snn_config(qcfs_config("hybridnet-nmnist", 8), 7)
    assert main(["convert", "--dataset", "synthetic:n=1", "--preset", "hybridnet-s",
                 "--levels", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--levels" in capsys.readouterr().err


def test_cli_end_to_end_on_real_nmnist_digits(shared_data, tmp_path, capsys):
    """30 real digits (3 per class), 1 epoch: the command trains, converts, sweeps T, saves
    both models; the converted one runs in snn4 eval on real digits."""
    src = shared_data / "nmnist_train1k"
    labels = {}
    for line in (src / "labels.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            i, c = line.split()[:2]
            labels.setdefault(int(c), []).append(int(i))
    digits = tmp_path / "digits"
    digits.mkdir()
    rows = []
    for c, ids in sorted(labels.items()):
        for i in ids[:3]:
            (digits / f"{i}.bs2").symlink_to(src / f"{i}.bs2")
            rows.append(f"{i}\t{c}")
    (digits / "labels.txt").write_text("#sample #class\n" + "\n".join(rows) + "\n")
    out = tmp_path / "conv"
    assert main(["convert", "--dataset", f"nmnist:{digits}", "--preset", "hybridnet-nmnist",
                 "--levels", "4", "--epochs", "1", "--val-split", "0.34", "--steps", "4",
                 "--sweep", "1", "2", "4", "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["T"] for r in res["sweep"]] == [1, 2, 4]
    assert res["n"] == 10 and 0 <= res["ann_accuracy"] <= 1
    for r in res["sweep"]:
        for c in ("none", "signed", "window_none", "window_signed"):
            assert 0 <= r[c]["accuracy"] <= 1 and 0 <= r[c]["agrees_with_ann"] <= 1
    assert res["loihi"].startswith("does not map")
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["conversion"]["steps"] == 4 and card["conversion"]["levels"] == 4
    assert card["conversion"]["compensation"] == "signed" and len(card["conversion"]["lam"]) == 3
    assert card["config"]["input_coding"] == "bins"
    assert card["config"]["bin_us"] == 75_000 and card["training"]["samples"] == 20
    ann, ann_card = checkpoint.load(tmp_path / "conv_ann")
    assert ann.cfg.neuron == "qcfs" and ann.cfg.window == 1 and ann_card["converted"] == "conv"
    assert main(["eval", "--model", str(out), "--dataset", f"nmnist:{digits}", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ev["n"] == 30 and ev["window_bins"] == 4 and ev["synops_per_sample"] > 0
    assert not ev["energy_estimate"]["applicable"]

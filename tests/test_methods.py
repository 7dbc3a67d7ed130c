"""The training methods as the methods notes define them: temporal regularisation strongest on
the early bins (separate from the early-exit weighting), the learnable surrogate and the
surrogate schedule as `snn4 train` flags, and the spike-driven SDSA (binary output, membrane
shortcut) next to the first version, whose checkpoints still load and run unchanged."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from snn4_ros.app.cli import main
from snn4_ros.models import checkpoint
from snn4_ros.models.hybridnet import HybridNet, StreamingRunner, preset_config
from snn4_ros.models.layers import SDSA
from snn4_ros.models.neurons import LIF
from snn4_ros.models.surrogate import Surrogate
from snn4_ros.models.train import TrainConfig, loss_fn, train, trt_weights
from snn4_ros.models.datasets import FrameData
from snn4_ros.models.zoo import find_model


def tiny(**over):
    torch.manual_seed(0)
    cfg = preset_config("hybridnet-nmnist", **{"channels": (4, 8, 8), "head_hidden": 16,
                                               "window": 6, **over})
    return HybridNet(cfg)


def clips(n=4, T=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(T, n, 2, 34, 34, generator=g) < 0.15).float() * 3
    y = torch.arange(n) % 10
    return x, y


def test_trt_weights_are_strongest_on_the_first_bin():
    w = trt_weights(6, 0.8, 0.5)
    assert w[0] == pytest.approx(0.8) and all(a > b for a, b in zip(w, w[1:]))
    assert w[5] == pytest.approx(0.8 * math.exp(-2.5))
    assert trt_weights(4, 1.0, 0.0) == [1.0] * 4          # no decay: equal weights


def test_temporal_reg_adds_the_decaying_per_bin_term_and_is_off_by_default():
    m = tiny().eval()                           # eval: batch norm is deterministic here
    x, y = clips()
    base_cfg = TrainConfig(per_step_loss=0.5)
    assert base_cfg.temporal_reg == 0.0
    base, _ = loss_fn(m, x, y, None, base_cfg)
    lam, dec = 0.7, 0.4
    with_reg, _ = loss_fn(m, x, y, None, TrainConfig(per_step_loss=0.5, temporal_reg=lam,
                                                     temporal_reg_decay=dec))
    outs = m.forward_prefixes(x, list(range(1, 7)))
    onehot = F.one_hot(y, 10).float()
    manual = sum(lam * math.exp(-dec * (t - 1)) *
                 ((torch.softmax(o.logits, 1) - onehot) ** 2).sum(1).mean()
                 for t, o in zip(range(1, 7), outs)) / 6
    assert float((with_reg - base).detach()) == pytest.approx(float(manual.detach()), rel=1e-5)
    assert float(manual.detach()) > 0


def test_early_exit_weighting_is_its_own_knob():
    """exit_weighting weighs the early-exit prefixes towards the later ones, as before; it
    does not switch on the temporal regulariser."""
    m = tiny().eval()
    x, y = clips(T=8)
    outs = m.forward_prefixes(x, [2, 4, 6, 8])
    ce = [F.cross_entropy(o.logits, y) for o in outs]
    for e in (0.0, 1.0, 2.0):
        got, _ = loss_fn(m, x, y, None, TrainConfig(per_step_loss=0.5, exit_weighting=e))
        w = torch.tensor([(k / 8) ** e for k in (2, 4, 6)])
        w = w / w.sum()
        want = ce[3] + 0.5 * sum(wi * c for wi, c in zip(w, ce[:3]))
        assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-5)


def test_learnable_surrogate_from_the_config_trains_its_width():
    m = tiny(learnable_surrogate=True)
    sgs = [s for s in m.modules() if isinstance(s, Surrogate)]
    assert sgs and all(s.learnable for s in sgs)
    before = [float(s.alpha) for s in sgs]
    x, y = clips(8)
    data = FrameData(x.transpose(0, 1).to(torch.uint8), y, tuple(str(i) for i in range(10)))
    train(m, data, TrainConfig(epochs=2, batch_size=4, warmup_steps=1, per_step_loss=0),
          progress=False)
    after = [float(s.alpha) for s in sgs]
    assert any(abs(a - b) > 1e-4 for a, b in zip(after, before))
    with pytest.raises(ValueError, match="exclude each other"):
        train(tiny(learnable_surrogate=True), data,
              TrainConfig(epochs=1, batch_size=4, surrogate_schedule=(1.0, 4.0)),
              progress=False)


def test_train_flags_reach_the_model_and_the_card(tmp_path, shared_data, capsys):
    folder = tmp_path / "nm"
    folder.mkdir()
    src = shared_data / "nmnist_train1k"
    lines = [ln for ln in (src / "labels.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")][:10]
    (folder / "labels.txt").write_text("\n".join(lines) + "\n")
    for ln in lines:
        sid = ln.split()[0]
        (folder / f"{sid}.bs2").write_bytes((src / f"{sid}.bs2").read_bytes())
    out = tmp_path / "m"
    cfg = json.dumps({"channels": [4, 8, 8], "head_hidden": 16, "window": 4})
    rc = main(["train", "--dataset", f"nmnist:{folder}", "--preset", "hybridnet-nmnist",
               "--config", cfg, "--epochs", "1", "--out", str(out), "--quiet",
               "--learnable-surrogate", "--surrogate", "fast_sigmoid", "--surrogate-alpha", "3",
               "--temporal-reg", "0.5", "--temporal-reg-decay", "0.3", "--exit-weighting", "2",
               "--online"])
    assert rc == 0
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["config"]["learnable_surrogate"] is True
    assert card["config"]["surrogate"] == "fast_sigmoid"
    tc = card["training"]["config"]
    assert (tc["temporal_reg"], tc["temporal_reg_decay"], tc["exit_weighting"]) == (0.5, 0.3, 2.0)
    assert tc["online"] is True
    model, _ = checkpoint.load(out)
    sgs = [s for s in model.modules() if isinstance(s, Surrogate)]
    assert all(s.learnable and s.kind == "fast_sigmoid" for s in sgs)
    capsys.readouterr()
    rc = main(["train", "--dataset", f"nmnist:{folder}", "--preset", "hybridnet-nmnist",
               "--out", str(tmp_path / "x"), "--learnable-surrogate",
               "--surrogate-schedule", "1", "4"])
    assert rc == 2 and "exclude each other" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_spike_driven_sdsa_outputs_binary_spikes_and_streams_like_the_batch():
    torch.manual_seed(0)
    x = (torch.rand(6, 2, 8, 5, 5) < 0.4).float()
    for shortcut in ("membrane", "add"):
        att = SDSA(8, lambda: LIF(), shortcut=shortcut).eval()
        with torch.no_grad():
            for p in att.parameters():            # drive the projection hard
                p.data.normal_(0, 1.0)
            out = att(x)
            st, steps = None, []
            for t in range(6):
                o, st = att.step(x[t], st)
                steps.append(o)
        values = set(out.unique().tolist())
        if shortcut == "membrane":
            assert values <= {0.0, 1.0}
        else:
            assert 2.0 in values                  # the first version: x + spikes reaches 2
        assert torch.allclose(torch.stack(steps), out)


def test_sdsa_block_counts_and_an_sdsa_net_streams_with_its_synops():
    """``SDSA.synops`` / ``macs_per_step`` count the block; the net's own counts are the conv
    stages' (the same operations for both), and work for a streamed SDSA net as for the batch
    (replay and the node count every bin's synops)."""
    from snn4_ros.eval.inprocess import bin_synops
    from snn4_ros.models.hybridnet import StreamingRunner

    torch.manual_seed(0)
    net = HybridNet(preset_config("hybridnet-s-sdsa")).eval()
    C, h, w = net.feature_shape()
    c = net.cfg
    x = (torch.rand(4, 2, c.in_channels, c.input_height, c.input_width) < 0.2).float()
    with torch.no_grad():
        for m in net.modules():               # an untrained net, driven to spike throughout
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.fill_(0.6)
        out = net(x)
        s = x
        for layer in net.backbone:            # the last stage's spikes: the block's input
            s = layer(s)
        a = net.attn
        k, v, q = a.k(s), a.v(s), a.q(s)
        mask = a.kv_neuron((k * v).sum(dim=(-2, -1), keepdim=True))
    per = lambda t: t.sum(dim=(0, 2, 3, 4))                      # noqa: E731
    block = per(s) * (3 * C + 1) + per(k * v) + per(q * mask) * (C + 1)
    assert block.min() > 0                       # the block ran on real spikes
    assert torch.equal(a.synops(s, k * v, q * mask), block)
    plain = HybridNet(preset_config("hybridnet-s-sdsa"))
    plain.load_state_dict(net.state_dict())
    plain.attn = None
    assert torch.equal(net.synops(x, out.spikes), plain.eval().synops(x, out.spikes))
    assert net.macs_per_step() == plain.macs_per_step()
    assert a.macs_per_step(h, w) == 4 * C * C * h * w + C * h * w
    runner = StreamingRunner(net)                # a streamed bin, as replay counts it
    o = runner.step(x[0, :1])
    assert bin_synops(net, x[0, 0].numpy(), o.spikes) > 0


def test_sdsa_preset_is_spike_driven_and_old_sdsa_cards_load_as_trained(tmp_path):
    new = HybridNet(preset_config("hybridnet-s-sdsa")).eval()
    assert new.attn.shortcut == "membrane"
    # a checkpoint of the first version: its card has no sdsa_shortcut
    torch.manual_seed(3)
    old = HybridNet(preset_config("hybridnet-s-sdsa", sdsa_shortcut="add")).eval()
    checkpoint.save(old, tmp_path / "old")
    card = json.loads((tmp_path / "old.json").read_text())
    del card["config"]["sdsa_shortcut"], card["config"]["learnable_surrogate"]
    (tmp_path / "old.json").write_text(json.dumps(card))
    loaded, _ = checkpoint.load(tmp_path / "old")
    assert loaded.attn.shortcut == "add"
    x = (torch.rand(8, 1, 2, 64, 64) < 0.1).float()
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, old(x).logits)
        runner = StreamingRunner(new)
        for t in range(8):
            out = runner.step(x[t])
        assert torch.allclose(out.logits, new(x).logits, atol=1e-5)
    with pytest.raises(ValueError, match="sdsa_shortcut"):
        preset_config("hybridnet-s-sdsa", sdsa_shortcut="sum")


def test_shipped_models_load_unchanged():
    for name in ("nmnist_1k", "hybridnet_gesture_synth"):
        m, card = checkpoint.load(find_model(name))
        assert not m.cfg.learnable_surrogate and m.attn is None


def _bptt_every_bin_grads(m, x, y, cfg):
    """The reference: BPTT over the whole clip with the online objective (final CE + the
    early-exit CE on every earlier bin), as one graph."""
    T = x.shape[0]
    outs = m.forward_prefixes(x, list(range(1, T + 1)))
    w = [(t / T) ** cfg.exit_weighting for t in range(1, T)]
    w = [v / sum(w) for v in w]
    loss = F.cross_entropy(outs[-1].logits, y) + sum(
        cfg.per_step_loss * wi * F.cross_entropy(o.logits, y) for wi, o in zip(w, outs[:-1]))
    m.zero_grad()
    loss.backward()
    return {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}


def test_online_gradients_equal_bptt_where_no_temporal_path_exists():
    """With tau = 1 (no leak: v = input) and a one-bin bridge window there is no gradient path
    through time, so SLTT's spatial-only gradient must equal BPTT's exactly; with a leak the
    two differ (the temporal paths are what online training drops)."""
    from snn4_ros.models.train import online_step

    x, y = clips(n=3, T=5)
    cfg = TrainConfig(per_step_loss=0.5, exit_weighting=1.0)
    for tau, equal in ((1.0, True), (2.0, False)):
        m = tiny(neuron_kwargs={"tau": tau}, window=1).eval()
        ref = _bptt_every_bin_grads(m, x, y, cfg)
        m.zero_grad()
        online_step(m, x, y, None, cfg)
        got = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
        assert set(got) == set(ref)
        conv0 = "backbone.0.conv.weight"
        assert ref[conv0].abs().sum() > 0
        same = all(torch.allclose(got[n], ref[n], rtol=1e-4, atol=1e-6) for n in ref)
        assert same is equal, tau


def test_online_training_learns_and_records_it():
    x, y = clips(n=10, T=4, seed=1)
    y = (x[:, :, :, :17].sum((0, 2, 3, 4)) > x[:, :, :, 17:].sum((0, 2, 3, 4))).long()
    x[:, y == 1, :, :8] += 2.0                    # a learnable difference between the classes
    data = FrameData(x.transpose(0, 1).clamp(max=255).to(torch.uint8), y,
                     tuple(str(i) for i in range(10)))
    m = tiny(window=4)
    hist = train(m, data, TrainConfig(epochs=3, batch_size=5, warmup_steps=1, online=True,
                                      lr=5e-3), progress=False)
    assert hist["config"]["online"] is True
    assert hist["loss"][-1] < hist["loss"][0]

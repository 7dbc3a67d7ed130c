"""The shipped spike-driven SDSA model (models/hybridnet_gesture_sdsa, tools/train_models.sh
sdsa): on the activations of a real DVS128 clip every signal of the backbone and of the SDSA
block -- queries, keys, values, the key-value mask, the masked queries and the block's output
-- is a binary spike (the membrane shortcut; the first version's ``x + spike`` gave 0/1/2);
the card loads and runs in the streaming runner as the batch does; ``snn4 teach`` takes its
backbone (the real-data figures of bench/sdsa.py are made that way); the Loihi quantiser and
NIR export refuse it with the reason. bench/sdsa.py measures it against hybridnet-s."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snn4_ros.events.capture import read_session_csv, takes_from_file
from snn4_ros.events.sources import read_recording
from snn4_ros.models import checkpoint
from snn4_ros.models.hybridnet import StreamingRunner
from snn4_ros.models.teach import TeachConfig, recording_frames, teach
from snn4_ros.models.zoo import find_model

MODEL = "hybridnet_gesture_sdsa"
WALK = "aedat2_dvs128/alex_walking_again.aedat"


@pytest.fixture(scope="module")
def sdsa():
    net, card = checkpoint.load(find_model(MODEL))
    return net.eval(), card


@pytest.fixture(scope="module")
def clips(shared_data):
    return read_session_csv(shared_data / "aedat4_dvs128" / "labels.csv")


@pytest.fixture(scope="module")
def wave_frames(sdsa, clips):
    """24 bins of a real right-hand wave, from its labelled start (a stream's first bins)."""
    net, _ = sdsa
    path, _, start, _ = clips[0]
    ea, _, _ = read_recording(path)
    frames, _ = recording_frames(net, ea, t0_ns=int(ea.events["t"][0] + start * 1e9))
    return torch.from_numpy(np.ascontiguousarray(frames[:24]))[:, None].float()


def test_card_is_the_spike_driven_preset_with_its_recipe(sdsa):
    net, card = sdsa
    assert card["preset"] == "hybridnet-s-sdsa" and net.attn is not None
    assert net.cfg.sdsa_shortcut == "membrane" and net.attn.shortcut == "membrane"
    assert card["reproduce"] == "tools/train_models.sh sdsa"
    ev = card["evaluations"][-1]
    assert ev["dataset"] == "synthetic:30:2" and ev["n"] == 330 and ev["accuracy"] > 3 / 11
    assert len(card["training"]["history"]["val_acc"]) == card["training"]["config"]["epochs"]


def test_every_sdsa_signal_is_a_binary_spike_on_a_real_clip(sdsa, wave_frames):
    net, _ = sdsa
    a = net.attn
    seen: dict[str, torch.Tensor] = {}
    mods = {f"backbone.{i}": layer.neuron for i, layer in enumerate(net.backbone)}
    mods |= {"q": a.q.neuron, "k": a.k.neuron, "v": a.v.neuron, "kv mask": a.kv_neuron,
             "block output": a.proj.neuron}
    hooks = [m.register_forward_hook(lambda _m, _i, out, n=n: seen.__setitem__(n, out))
             for n, m in mods.items()]
    try:
        with torch.no_grad():
            out = net(wave_frames)
            s, _ = net.backbone_seq(wave_frames)
    finally:
        for h in hooks:
            h.remove()
    seen["masked queries"] = seen["q"] * seen["kv mask"]
    for name, t in seen.items():
        assert set(t.unique().tolist()) <= {0.0, 1.0}, f"{name}: not binary"
    # real spikes, not an all-zero block: the assertion above would hold for silence
    for name in ("q", "k", "v", "masked queries", "block output"):
        assert seen[name].sum() > 0, f"{name} never spikes on a real wave"
    assert torch.equal(s, seen["block output"])    # what the bridge reads is the block's spikes
    assert torch.isfinite(out.logits).all()


def test_streaming_runner_runs_the_shipped_card_as_the_batch(sdsa, wave_frames):
    net, _ = sdsa
    runner = StreamingRunner(net)
    T = net.cfg.window + 4                       # past a full window: the buffer slides
    with torch.no_grad():
        for t in range(T):
            out = runner.step(wave_frames[t])
        batch = net.bridge_heads(net.backbone_seq(wave_frames[:T])[0])
    assert runner.attn_state is not None and runner.bins == T
    assert torch.allclose(out.logits, batch[0], atol=1e-4)
    assert torch.allclose(out.position, batch[1], atol=1e-3)


def test_teach_takes_the_sdsa_backbone(sdsa, clips, shared_data):
    net, _ = sdsa
    demos = [t for p, _, s, e in clips[:3] for t in takes_from_file(p, "wave", s, e)]
    demos += takes_from_file(str(shared_data / WALK), "none", 0.0, 4.0)
    res = teach(net, demos, TeachConfig(rule="rstdp", loo=False, seed=0))
    taught = res.net
    assert taught.attn is not None and taught.cfg.sdsa_shortcut == "membrane"
    assert taught.cfg.classes == ("wave", "none") and taught.cfg.readout == "prototype"
    for k, v in net.attn.state_dict().items():  # the SDSA block is the base's, untouched
        assert torch.equal(taught.attn.state_dict()[k], v)
    assert res.report["accuracy_after_train"] > 0.8


def test_loihi_and_nir_refuse_the_shipped_sdsa_model_with_the_reason(sdsa, tmp_path, capsys):
    from snn4_ros.app.cli import main
    from snn4_ros.models.nir_io import NIRError, export_graph

    rc = main(["loihi", "quantize", "--model", MODEL, "--out", str(tmp_path / "q")])
    err = capsys.readouterr().err
    assert rc == 2 and "does not map onto Loihi 2" in err
    assert "attn: spike-driven self-attention (SDSA) has no Loihi mapping" in err
    assert "backbone.0: SpikingConv with LIF neurons and batch norm" in err
    assert not list(tmp_path.iterdir())          # nothing written
    with pytest.raises(NIRError, match="SDSA block"):
        export_graph(sdsa[0])

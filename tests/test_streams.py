"""Gesture streams (models/streams.py) and the short readout window they train: labels per bin
that follow the simulator's gesture changes, a readout over the newest bins that the
streaming runner and whole-clip forward agree on, training that leaves the backbone alone,
and the controller-free onset reading."""

import pytest
import torch


@pytest.fixture(scope="module")
def tiny_cfg():
    from snn4_ros.models.hybridnet import preset_config
    return preset_config("hybridnet-s", channels=(4, 8, 8), head_hidden=8, window=6)


def test_change_positions_count_bins_since_the_last_change():
    from snn4_ros.models.streams import change_positions

    labels = torch.tensor([[3, 3, 5, 5, 5, 1], [2, 2, 2, 2, 2, 2]])
    assert change_positions(labels).tolist() == [[0, 1, 0, 1, 2, 0], [0, 1, 2, 3, 4, 5]]


def test_a_stream_is_labelled_per_bin_and_deterministic(tiny_cfg):
    from snn4_ros.models.streams import stream_data

    a = stream_data(1, tiny_cfg, seed=11, bins=8, seg_bins=(2, 3), workers=1, cache=False)
    b = stream_data(1, tiny_cfg, seed=11, bins=8, seg_bins=(2, 3), workers=1, cache=False)
    assert a.frames.shape == (1, 8, 2, 64, 64) and a.labels.shape == (1, 8)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.labels, b.labels)
    # segments of 2-3 bins: at least 2 changes in 8 bins, never a segment of one bin
    # (two segments of one gesture in a row read as one longer segment: still >= 2)
    runs = torch.unique_consecutive(a.labels[0], return_counts=True)[1]
    assert a.changes() >= 2 and runs[:-1].min() >= 2
    assert a.frames[0, 1:].sum() > 0            # the performer moves: events in the bins
    with pytest.raises(ValueError, match="segment"):
        stream_data(1, tiny_cfg, bins=8, seg_bins=(3, 2), cache=False)


def test_readout_window_reads_the_newest_bins_in_forward_and_stream(tiny_cfg):
    from dataclasses import replace

    from snn4_ros.models.hybridnet import HybridNet, StreamingRunner

    torch.manual_seed(0)
    net = HybridNet(replace(tiny_cfg, readout_window=3)).eval()
    assert net.cfg.readout_bins == 3
    x = (torch.rand(6, 1, 2, 64, 64) < 0.1).float()
    r = StreamingRunner(net)
    assert r.window == 3
    for t in range(6):
        out = r.step(x[t])
    with torch.no_grad():
        whole = net(x)
        s, _ = net.backbone_seq(x)
        last3 = net.bridge_heads(s[-3:])[0]
    assert torch.allclose(out.logits, whole.logits, atol=1e-5)
    assert torch.allclose(whole.logits, last3, atol=1e-6)
    with pytest.raises(ValueError, match="readout_window"):
        replace(tiny_cfg, readout_window=7)


def test_stream_training_moves_the_readout_and_leaves_the_backbone(tiny_cfg):
    from snn4_ros.models.datasets import FrameData
    from snn4_ros.models.hybridnet import HybridNet
    from snn4_ros.models.streams import (StreamReadoutConfig, stream_data,
                                         stream_predictions, train_stream_readout)

    torch.manual_seed(0)
    net = HybridNet(tiny_cfg)
    streams = stream_data(2, tiny_cfg, seed=21, bins=6, seg_bins=(2, 4), workers=1,
                          cache=False)
    clips = FrameData(streams.frames[:, :6], streams.labels[:, -1], tiny_cfg.classes,
                      streams.targets[:, -1])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    hist = train_stream_readout(net, streams, clips, StreamReadoutConfig(
        readout_window=2, epochs=2, batch_size=8), log=lambda m: None)
    after = net.state_dict()
    assert net.cfg.readout_window == 2 and len(hist["loss"]) == 2
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("backbone."))
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])
    assert all(p.requires_grad for p in net.parameters())
    probs = stream_predictions(net, streams)
    assert probs.shape == (2, 6, len(tiny_cfg.classes))
    assert torch.allclose(probs.sum(-1), torch.ones(2, 6), atol=1e-5)


def test_onset_figures_read_debounced_confident_runs():
    from snn4_ros.models.streams import onset_figures

    labels = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 2, 2, 2]])
    top = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 2, 1, 1]])
    probs = torch.full((1, 10, 3), 0.05)
    probs[0, torch.arange(10), top[0]] = 0.9
    f1 = onset_figures(probs, labels, debounce=1)
    # change to 1 at bin 3: right from its 2nd bin; change to 2 at bin 7: its 1st bin
    assert f1["changes"] == 2 and f1["missed"] == 0 and f1["first_bin_p50"] == 1.5
    f2 = onset_figures(probs, labels, debounce=2)
    assert f2["missed"] == 1 and f2["first_bin_p50"] == 3.0 and f2["by_bin_2"] == 0.0
    assert f2["bin_accuracy"] == pytest.approx(0.7)
    assert f2["confident_wrong_bins"] == pytest.approx(0.3)



def test_a_card_s_controller_settings_are_read_without_the_gesture_table():
    from snn4_ros.models.zoo import model_controller

    card = {"controller": {"debounce": 1, "min_confidence": 0.9, "gestures": {"a": "stop"}}}
    assert model_controller(card) == {"debounce": 1, "min_confidence": 0.9}
    assert model_controller({}) == {} and model_controller(None) == {}


def test_the_stream_model_shares_the_base_backbone():
    """The opt-in stream model keeps the base model's spiking backbone (the real-camera model
    is built on that one) and reads the newest bins; its card says how to reproduce it."""
    from snn4_ros.models import checkpoint
    from snn4_ros.models.zoo import DEMO_MODEL, STREAM_MODEL, default_model, find_model

    base, _ = checkpoint.load(find_model(DEMO_MODEL))
    net, card = checkpoint.load(find_model(STREAM_MODEL))
    b, n = base.state_dict(), net.state_dict()
    assert all(torch.equal(b[k], n[k]) for k in b if k.startswith("backbone."))
    assert 1 <= net.cfg.readout_bins < net.cfg.window == base.cfg.window
    assert card["reproduce"] == "tools/train_models.sh stream"
    assert default_model("synthetic") == DEMO_MODEL        # opt-in: below the accuracy bar

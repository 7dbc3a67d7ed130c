"""End-to-end training on gesture streams (models/stream_train.py): the LIF recurrence from a
carried state (forward and gradient equal to the step-by-step definition), a chunked backbone
equal to the whole stream's, a bridge and heads at every bin equal to what the streaming
runner reads, a training step that carries the state across chunks and lowers the loss, and
labels for changes that fall inside a bin."""

import pytest
import torch


@pytest.fixture(scope="module")
def tiny_net():
    from snn4_ros.models.hybridnet import HybridNet, preset_config

    torch.manual_seed(0)
    net = HybridNet(preset_config("hybridnet-s", channels=(4, 8, 8), head_hidden=8, window=6,
                                  readout_window=3))
    with torch.no_grad():       # a spiking start: the first layer fires on sparse input
        for layer in net.backbone:
            layer.conv.weight.mul_(4.0)
    return net.eval()


def _input(T=9, B=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, 2, 64, 64, generator=g) < 0.15).float() * 2


def test_lif_from_a_state_matches_the_step_definition_in_value_and_gradient():
    from snn4_ros.models.neurons import LIF, LIFState, Neuron

    lif = LIF(tau=2.0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, 4, 5, 5, generator=g) * 1.5
    v0 = torch.rand(3, 4, 5, 5, generator=g) * 1.2          # plain layout, as carried
    channels_last = x.reshape(21, 4, 5, 5).contiguous(memory_format=torch.channels_last)
    for xs in (x.clone(), channels_last.reshape(7, 3, 4, 5, 5)):   # both memory orders
        xs = xs.detach().requires_grad_(True)
        s, st = lif(xs, LIFState(v0))                       # the compiled sequence
        xr = x.clone().requires_grad_(True)
        s_ref, st_ref = Neuron.forward(lif, xr, LIFState(v0))  # step by step, autograd
        assert torch.equal(s, s_ref) and torch.allclose(st.v, st_ref.v)
        assert 0 < s.sum() < s.numel()
        w = torch.randn(s.shape, generator=g)
        (s * w).sum().backward()
        (s_ref * w).sum().backward()
        assert torch.allclose(xs.grad, xr.grad, atol=1e-6)
        assert not st.v.requires_grad                      # the truncation point
    # from rest, the sequence is what it was: spikes only
    assert torch.is_tensor(lif(x.clone().requires_grad_(True)))


def test_chunks_of_a_stream_equal_the_whole_stream(tiny_net):
    from snn4_ros.models.hybridnet import StreamingRunner
    from snn4_ros.models.stream_train import ChunkState, backbone_chunk, window_outputs

    x = _input()
    with torch.no_grad():
        whole, _ = tiny_net.backbone_seq(x)
    assert whole.sum() > 0
    s1, n1 = backbone_chunk(tiny_net, x[:4], ChunkState.rest(tiny_net).neurons)
    s2, n2 = backbone_chunk(tiny_net, x[4:], n1)
    assert torch.equal(torch.cat([s1, s2]).detach(), whole)
    s2_rest, _ = backbone_chunk(tiny_net, x[4:], ChunkState.rest(tiny_net).neurons)
    assert not torch.equal(s2_rest, s2)                  # the carried state matters
    # the bridge and heads at every bin read what the streaming runner reads
    r = StreamingRunner(tiny_net)
    ref = torch.stack([r.step(x[t]).logits for t in range(len(x))])
    with torch.no_grad():
        lg, pos, vis = window_outputs(tiny_net, whole, 0, 3)
        lg_late, _, _ = window_outputs(tiny_net, whole[3:], 2, 3)   # carried 2 + new bins
    assert lg.shape == ref.shape and pos.shape == (9, 2, 2) and vis.shape == (9, 2)
    assert torch.allclose(lg, ref, atol=1e-5)
    assert torch.allclose(lg_late, ref[5:], atol=1e-5)


def test_a_training_step_carries_the_state_and_lowers_the_loss():
    from copy import deepcopy

    from snn4_ros.models.hybridnet import HybridNet, StreamingRunner, preset_config
    from snn4_ros.models.stream_train import ChunkState, train_step

    torch.manual_seed(0)
    net = HybridNet(preset_config("hybridnet-s", channels=(4, 8, 8), head_hidden=8, window=6,
                                  readout_window=3))
    with torch.no_grad():
        for layer in net.backbone:
            layer.conv.weight.mul_(4.0)
    net.eval()
    x = _input(T=8, B=2)
    y = torch.tensor([[1, 4]]).expand(8, 2).clone()
    y[5:, 0] = 7                                   # a change in stream 0 at bin 5
    w = torch.ones(8, 2)
    # without an optimiser: the second chunk's logits from the carried state are the
    # stream's own (as the live runner computes them)
    r = StreamingRunner(deepcopy(net))
    ref = torch.stack([r.step(x[t]).logits for t in range(8)])
    st = ChunkState.rest(net)
    _, lg1, st = train_step(net, None, x[:3], st, y[:3], w[:3])
    assert len(st.spikes) == 2 and all(s is not None for s in st.neurons)
    _, lg2, _ = train_step(net, None, x[3:], st, y[3:], w[3:])
    assert torch.allclose(torch.cat([lg1, lg2]), ref, atol=1e-5)
    # training over the chunks, state carried: the loss goes down, and every part learns
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        st, tot = ChunkState.rest(net), 0.0
        for a, b in ((0, 3), (3, 8)):
            loss, _, st = train_step(net, opt, x[a:b], st, y[a:b], w[a:b])
            tot += loss
        losses.append(tot)
    assert losses[-1] < 0.5 * losses[0]
    moved = {n.split(".")[0] for n, p in net.named_parameters()
             if not torch.equal(p.detach(), before[n])}
    assert {"backbone", "sat", "head", "classifier"} <= moved


def test_stream_weights_favour_the_bins_after_a_change():
    from snn4_ros.models.stream_train import stream_weights

    labels = torch.tensor([[3, 3, 3, 5, 5, 5, 5, 1]])
    assert stream_weights(labels, 2.0, 2).tolist() == [[1, 1, 1, 3, 3, 1, 1, 3]]


def test_changes_inside_a_bin_are_labelled_by_the_gesture_of_most_of_it():
    from snn4_ros.models.hybridnet import preset_config
    from snn4_ros.models.streams import stream_data

    cfg = preset_config("hybridnet-s", channels=(4, 8, 8), head_hidden=8, window=6)
    a = stream_data(1, cfg, seed=7, bins=6, seg_bins=(1, 2), workers=1, cache=False,
                    any_phase=True)
    b = stream_data(1, cfg, seed=7, bins=6, seg_bins=(1, 2), workers=1, cache=False,
                    any_phase=True)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.labels, b.labels)
    assert a.labels.shape == (1, 6) and a.changes() >= 2 and "any_phase" in a.source


def test_bin_labels_take_the_majority_of_render_steps():
    import numpy as np

    from snn4_ros.models.streams import bin_labels

    steps = np.array([2, 2, 2, 5, 5, 5, 5, 5, 5, 1, 1, 1, 7, 7, 3, 3])   # 4 steps per bin
    assert bin_labels(steps, 4, 11).tolist() == [2, 5, 1, 3]          # a tie: the lower


def test_the_end_to_end_stream_model_loads_and_streams():
    """The shipped end-to-end stream model: its own backbone (trained, unlike the readout-only
    stream model's), a 3-bin readout, and streaming one bin at a time gives what the whole
    clip gives; its card says how to reproduce it and which controller it was validated with."""
    from snn4_ros.models import checkpoint
    from snn4_ros.models.datasets import load_dataset
    from snn4_ros.models.hybridnet import StreamingRunner
    from snn4_ros.models.zoo import DEMO_MODEL, E2E_MODEL, find_model, model_controller

    base, _ = checkpoint.load(find_model(DEMO_MODEL))
    net, card = checkpoint.load(find_model(E2E_MODEL))
    b, n = base.state_dict(), net.state_dict()
    assert not all(torch.equal(b[k], n[k]) for k in b if k.startswith("backbone."))
    assert 1 <= net.cfg.readout_bins <= 3 and net.cfg.window == base.cfg.window
    assert card["reproduce"] == "tools/train_models.sh stream-e2e"
    assert model_controller(card).get("debounce") in (1, 2, 3)
    data = load_dataset("synthetic:1:2", net.cfg, train=False)
    x = data.frames[:3].float().transpose(0, 1)
    r = StreamingRunner(net)
    outs = [r.step(x[t]) for t in range(len(x))]
    with torch.no_grad():
        whole = net(x)
    assert torch.allclose(outs[-1].logits, whole.logits, atol=1e-4)
    assert (whole.logits.argmax(1) == data.labels[:3]).float().mean() >= 2 / 3


def test_clips_without_targets_get_no_tracking_loss(tiny_net, monkeypatch):
    """Isolated clips that carry no target are never taught "not visible": their tracking
    loss is off (streams keep theirs)."""
    import copy

    from snn4_ros.models import stream_train
    from snn4_ros.models.datasets import FrameData
    from snn4_ros.models.streams import StreamData

    seen = []
    real_step = stream_train.train_step

    def spy(model, opt, x, state, labels, weights, targets=None, target_on=None, *a, **k):
        seen.append((x.shape[0], None if target_on is None else float(target_on.sum())))
        return real_step(model, opt, x, state, labels, weights, targets, target_on, *a, **k)

    monkeypatch.setattr(stream_train, "train_step", spy)
    g = torch.Generator().manual_seed(0)
    frames = lambda n, t: ((torch.rand(n, t, 2, 64, 64, generator=g) < 0.1)   # noqa: E731
                           .to(torch.uint8) * 2)
    streams = StreamData(frames(2, 6), torch.tensor([[0] * 3 + [1] * 3] * 2),
                         torch.rand(2, 6, 3, generator=g))
    classes = tiny_net.cfg.classes
    for targets, clip_on in ((None, 0.0), (torch.rand(2, 3, generator=g), 2.0)):
        seen.clear()
        clips = FrameData(frames(2, 5), torch.tensor([0, 1]), classes, targets)
        stream_train.train_streams_end_to_end(
            copy.deepcopy(tiny_net), streams, clips,
            stream_train.StreamTrainConfig(readout_window=2, epochs=1, chunk_bins=6,
                                           stream_batch=2, clip_batch=2),
            log=lambda *_: None, progress=False)
        clip_calls = [on for t, on in seen if t == 5]
        assert clip_calls == [clip_on]          # one clip batch: on at the last bin or never
        assert [on for t, on in seen if t == 6] == [12.0]   # the streams' targets stay on

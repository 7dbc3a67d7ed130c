"""decision_window: the bridge and heads read only the latest N bins; the backbone's state is
the same whatever N (a shorter window answers sooner after a gesture starts)."""

import pytest
import torch


@pytest.fixture(scope="module")
def net():
    from snn4_ros.models import checkpoint
    from snn4_ros.models.zoo import find_model
    torch.set_num_threads(1)
    return checkpoint.load(find_model("hybridnet_gesture_synth"))[0]


def test_a_short_window_reads_only_the_latest_bins(net):
    from snn4_ros.models.hybridnet import StreamingRunner

    c = net.cfg
    g = torch.Generator().manual_seed(0)
    frames = (torch.rand(10, 1, c.in_channels, c.input_height, c.input_width,
                         generator=g) < 0.05).float()
    full, short = StreamingRunner(net), StreamingRunner(net, window=4)
    for t in range(10):
        a, b = full.step(frames[t]), short.step(frames[t])
        for sa, sb in zip(a.spikes, b.spikes):              # the backbone is the same
            assert torch.equal(sa, sb)
    assert len(short.buffer) == 4 and len(full.buffer) == 10
    # the short runner's output is the bridge and heads over the full runner's last 4 bins
    want = net.bridge_heads(torch.stack(full.buffer[-4:]))[0]
    assert torch.allclose(b.logits, want, atol=1e-5)
    assert not torch.allclose(a.logits, b.logits, atol=1e-3)


def test_window_out_of_range_is_a_clear_error(net):
    from snn4_ros.models.hybridnet import StreamingRunner
    from snn4_ros.runtime.pipeline import PerceptionPipeline

    with pytest.raises(ValueError, match="between 1 and the model's 16"):
        StreamingRunner(net, window=17)
    assert PerceptionPipeline(net, window=None).runner.window == net.cfg.window
    assert PerceptionPipeline(net, window=3).runner.window == 3

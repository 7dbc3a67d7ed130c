"""The cheaper inference hot path computes what the reference path computes."""

import pytest
import torch


@pytest.fixture(scope="module")
def net():
    from snn4_ros.models import checkpoint
    from snn4_ros.models.zoo import find_model
    torch.set_num_threads(1)
    return checkpoint.load(find_model("hybridnet_gesture_synth"))[0]


def test_sat_fast_inference_path_equals_the_conv3d_path(net):
    """The cheaper CPU inference path of the bridge's SAT computes the same function."""
    from snn4_ros.models.hybridnet import SAT
    torch.manual_seed(0)
    for T in (1, 2, 5, 16):
        s = (torch.rand(T, 1, 64, 8, 8) < 0.2).float() * torch.rand(1, 1, 1, 8, 8)
        with torch.no_grad():
            fast, att_f = net.sat(s)
            SAT.fast_infer = False
            try:
                ref, att_r = net.sat(s)
            finally:
                SAT.fast_infer = True
        torch.testing.assert_close(fast, ref, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(att_f, att_r, atol=1e-5, rtol=1e-4)

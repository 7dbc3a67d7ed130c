"""bench/onset.py replays a bag once per model and window and re-runs the controller for each
setting (eval/realworld.retrace): the commands must be exactly those a replay with that
setting records, or the onset and wrong-command figures would not be the live code's."""

import numpy as np
import torch


def test_retrace_gives_the_commands_a_replay_with_that_setting_records(tmp_path):
    from snn4_ros.eval.inprocess import ReplayOptions, replay
    from snn4_ros.eval.realworld import retrace
    from snn4_ros.events.recording import record_synthetic
    from snn4_ros.models import checkpoint
    from snn4_ros.models.zoo import find_model

    torch.set_num_threads(1)
    rec = record_synthetic(tmp_path / "b", gestures=3, gesture_s=0.6, seed=5,
                           classes=["right_arm_cw", "left_hand_wave", "arm_roll"])
    net, card = checkpoint.load(find_model("hybridnet_gesture_synth"))
    a, b = {"debounce": 3}, {"debounce": 1, "min_confidence": 0.5, "hold_s": 0.2}
    tr_a = replay(rec["bag"], net, ReplayOptions(controller=a, window=4), card=card)
    tr_b = replay(rec["bag"], net, ReplayOptions(controller=b, window=4), card=card)
    for want, got in ((tr_b, retrace(tr_a, b)), (tr_a, retrace(tr_b, a))):
        assert np.array_equal(want.cmd_t, got.cmd_t)
        assert np.array_equal(want.cmd_lin, got.cmd_lin)
        assert np.array_equal(want.cmd_ang, got.cmd_ang)
        assert want.cmd_action == got.cmd_action and want.cmd_state == got.cmd_state
        assert np.array_equal(want.dec_probs, got.dec_probs)
    # the two settings command differently, so the comparison above can fail
    assert not np.array_equal(tr_a.cmd_ang, tr_b.cmd_ang)

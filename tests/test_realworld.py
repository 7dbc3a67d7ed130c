"""Real-world perception: the real-looking simulator, distractor scenes, the N-MNIST stream,
sliding windows over real clips, the controller's agreement rule, and false-command figures
of replays of real recordings without any gesture."""

import numpy as np
import pytest

from snn4_ros.runtime.control import ControllerConfig, GestureController
from snn4_ros.events.distractors import DISTRACTORS, distractor_clip, random_sensor
from snn4_ros.events.synthetic import GestureSimulator, SceneConfig


def _real_sim(seed):
    rng = np.random.default_rng(seed)
    return GestureSimulator(seed, random_sensor(rng),
                            SceneConfig(style="filled", scale_range=(0.4, 2.2), target=False))


def test_filled_simulator_is_deterministic_and_spans_the_scale_range():
    a = _real_sim(3).clip("right_hand_wave", 0.2).events.events
    b = _real_sim(3).clip("right_hand_wave", 0.2).events.events
    assert len(a) > 100 and np.array_equal(a, b)
    scales = [_real_sim(s).scene.scale for s in range(40)]
    assert 0.4 <= min(scales) < 0.6 and 1.6 < max(scales) <= 2.2


def test_filled_style_and_scale_range_are_validated():
    with pytest.raises(ValueError, match="style"):
        SceneConfig(style="cartoon")
    with pytest.raises(ValueError, match="scale_range"):
        SceneConfig(scale_range=(2.0, 1.0))


def test_performer_right_hand_waves_on_the_image_left():
    sim = GestureSimulator(1, scene=SceneConfig(style="filled", target=False))
    ev = sim.clip("right_hand_wave", 0.5).events.events
    # the body is static: the wave's events sit left of the performer's centre
    assert np.median(ev["x"]) < sim.scene.cx - 5


@pytest.mark.parametrize("kind", DISTRACTORS)
def test_every_distractor_makes_events_deterministically(kind):
    a = distractor_clip(kind, 5, 0.2).events
    b = distractor_clip(kind, 5, 0.2).events
    assert np.array_equal(a, b)
    assert len(a) > 0 and np.all(np.diff(a["t"].astype(np.int64)) >= 0)
    assert a["x"].max() < 128 and a["y"].max() < 128


def test_unknown_distractor_is_refused():
    with pytest.raises(ValueError, match="unknown distractor"):
        distractor_clip("juggler", 0)


def _feed(ctrl, seq, dt=0.04):
    moved = []
    for i, (cls, conf) in enumerate(seq):
        t = i * dt
        ctrl.on_decision(t, cls, conf)
        moved.append(not ctrl.command(t).is_zero)
    return moved


def test_agreement_rule_needs_k_of_n_and_survives_one_flicker():
    cfg = ControllerConfig(debounce=6, agree_window=8, max_angular_accel=100.0)
    wave = ("right_hand_wave", 0.95)
    # stray confident bins of a gesture among others never reach 6 of 8
    strays = [wave, ("other", 0.95), ("other", 0.95)] * 6
    assert not any(_feed(GestureController(cfg), strays))
    # 5 waves, one flicker, one more wave: 6 of the last 7 -> moves, the flicker did not reset
    seq = [wave] * 5 + [("air_guitar", 0.95)] + [wave]
    assert _feed(GestureController(cfg), seq)[-1]
    # the classic streak rule would have needed 6 in a row again after the flicker
    assert not _feed(GestureController(ControllerConfig(debounce=6, max_angular_accel=100.0)),
                     seq)[-1]


def test_confident_none_ends_an_action_at_once():
    cfg = ControllerConfig(debounce=3, agree_window=4, hold_s=5.0, max_angular_accel=100.0)
    c = GestureController(cfg)
    moved = _feed(c, [("right_hand_wave", 0.95)] * 4 + [("none", 0.95)])
    assert moved[3] and not moved[4]
    with pytest.raises(ValueError, match="agree_window"):
        ControllerConfig(debounce=5, agree_window=3)


def test_nmnist_folder_is_one_stream(shared_data):
    from snn4_ros.events.sources import detect_format, read_recording
    from snn4_ros.events.files import read_nmnist

    folder = shared_data / "nmnist_train1k"
    assert detect_format(folder) == "nmnist_stream"
    ea, stats, _ = read_recording(folder)
    assert ea.width == ea.height == 34
    assert np.all(np.diff(ea.events["t"].astype(np.int64)) >= 0)
    first, _ = read_nmnist(folder / "1.bs2")               # labels.txt lists sample 1 first
    assert np.array_equal(ea.events[:len(first)], first.events)
    assert len(ea) > 900 * 3000 and stats.events == len(ea)
    assert (ea.t_last_ns - ea.t_first_ns) / 1e9 > 250       # ~0.3 s per sample, back to back


def test_windows_honour_start_and_end(shared_data):
    from snn4_ros.models.hybridnet import preset_config
    from snn4_ros.models.realdata import read_labels_csv, window_starts

    cfg = preset_config("hybridnet-s")
    clips = read_labels_csv(shared_data / "aedat4_dvs128")
    assert len(clips) == 12 and all(c.label == "right_hand_wave" for c in clips)
    short = next(c for c in clips if c.end_s == 2.6)
    s = window_starts(0, int(5.45e9), cfg, 0.32, short.start_s, short.end_s)
    assert s[0] == 0 and s[-1] + int(0.64e9) <= int(2.6e9) and len(s) == 7


def test_replay_reports_false_commands_of_an_unlabelled_recording(shared_data):
    from snn4_ros.eval.metrics import command_episodes, compute_metrics
    from snn4_ros.eval.realworld import decision_log, negative_figures
    from snn4_ros.eval.inprocess import replay
    from snn4_ros.models import checkpoint

    net, card = checkpoint.load("models/hybridnet_gesture_synth")
    tr = replay(shared_data / "aedat2_dvs128" / "alex_walking_again.aedat", net)
    m = compute_metrics([tr])
    r = m["per_recording"][0]
    assert not r["labelled"] and abs(r["duration_s"] - 6.887) < 0.05
    assert r["episodes"] == len(command_episodes(tr))
    assert r["episodes_per_min"] == pytest.approx(r["episodes"] / (tr.duration_s / 60))
    assert m["unlabelled_episodes_per_min"] == pytest.approx(r["episodes_per_min"])
    # the offline controller re-run reproduces the replay's own commands
    sim = negative_figures(decision_log(tr), {})
    assert sim["episodes"] == r["episodes"]
    assert sim["moving_fraction"] == pytest.approx(r["moving_fraction"], abs=0.02)


def test_dvsgesture_recipe_runs_on_a_tonic_layout(tmp_path):
    """The documented DVS128 Gesture command (tools/train_models.sh dvsgesture), on a tiny
    stand-in folder in tonic's layout (random events: the real dataset is not here)."""
    import json
    import subprocess
    import sys

    from snn4_ros.models import checkpoint

    rng = np.random.default_rng(0)
    dt = np.dtype([("x", "<i2"), ("y", "<i2"), ("p", "<i1"), ("t", "<i8")])
    for split in ("ibmGestureTrain", "ibmGestureTest"):
        for label in range(11):
            d = tmp_path / "dvs" / split / "user01_fluorescent"
            d.mkdir(parents=True, exist_ok=True)
            n = 3000
            a = np.zeros(n, dt)
            a["x"], a["y"] = rng.integers(0, 128, n), rng.integers(0, 128, n)
            a["p"], a["t"] = rng.integers(0, 2, n), np.sort(rng.integers(0, 6_000_000, n))
            np.save(d / f"{label}.npy", a)
    out = tmp_path / "model"
    cmd = [sys.executable, "-m", "snn4_ros.app.cli", "train", "--dataset",
           f"dvsgesture:{tmp_path / 'dvs'}", "--val", f"dvsgesture:{tmp_path / 'dvs'}",
           "--preset", "hybridnet-xs", "--config", '{"bin_us": 375000}', "--epochs", "1",
           "--seed", "0", "--out", str(out), "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    net, card = checkpoint.load(out)
    assert net.cfg.bin_us == 375000 and len(net.cfg.classes) == 11
    assert card["training"]["samples"] == 11 and card["metrics"]["n"] == 11
    assert json.loads(out.with_suffix(".json").read_text())["training"]["dataset"].startswith(
        "dvsgesture:")


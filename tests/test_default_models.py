"""Which model runs by default, and the shipped real-camera model on real recordings.

A real camera, a bag or a recording gets ``hybridnet_gesture_real`` (the right-hand wave
taught from real DVS128 clips, or "none"); the synthetic source gets the simulator's
``hybridnet_gesture_synth`` (its 11 gestures fire on real scenes without a gesture: issue 12).
The real-data checks replay real recordings through the product's replay and controller code.
"""

import json

import pytest

from snn4_ros.models.zoo import DEMO_MODEL, REAL_MODEL, default_model, find_model


def test_the_default_model_follows_the_source():
    assert default_model("synthetic") == default_model("synthetic:7") == DEMO_MODEL
    for src in ("camera", "camera:DVX-123", "/data/run.bag", "clip.aedat4", None, ""):
        assert default_model(src) == REAL_MODEL, src


def test_the_real_model_ships_with_its_cross_validated_figures():
    card = json.loads(find_model(REAL_MODEL).with_suffix(".json").read_text())
    assert card["classes"] == ["right_hand_wave", "none"]
    assert card["reproduce"] == "tools/train_models.sh real"
    cv = card["cross_validated"]
    got, n = map(int, cv["clips_recognised"].split("/"))
    # issue 12's bar, on clips and recordings each fold never saw
    assert n == 12 * len(cv["folds"]) // 4 and got / n >= 0.9, cv["clips_recognised"]
    assert cv["max_false_commands_per_min_held_out"] <= 1.0
    held = [c for f in cv["folds"] for c in f["clips"]]
    assert len(set(held)) == 12 and len({held.count(c) for c in held}) == 1   # each equally
    per = cv["negatives_held_out_per_recording"]
    for name in ("alex_walking_again", "alex_walking_for_10secs", "cam255_alex_standing_up",
                 "cam289_right_clamp_test1", "neal_walking", "rosbag2/evt3_trigger",
                 "rosbag2/libcaer_rollover", "prophesee/evt3_sample.raw"):
        assert per[name]["held_out_in_folds"] >= 1, name          # every real negative
        assert per[name]["max_episodes_per_min"] <= 1.0, (name, per[name])


def test_graph_and_launch_pick_the_model_by_source():
    from snn4_ros.ros.description import load_graph, node_parameters
    from snn4_ros.ros.parameters import parameters_of

    params = node_parameters(load_graph("perception"))
    assert params["snn4_inference"]["model"] == REAL_MODEL        # a robot's camera
    assert parameters_of("snn4_inference")["model"].default == REAL_MODEL


def test_replay_without_model_picks_by_the_labels(tmp_path, shared_data):
    from snn4_ros.app.replay_jobs import ReplayJob, auto_model

    real = str(shared_data / "aedat2_dvs128" / "neal_walking.aedat")
    assert auto_model(ReplayJob([real], None)) == (REAL_MODEL, "")
    lab = tmp_path / "sim.labels.csv"
    lab.write_text("start,end,class\n0.0,1.0,arm_roll\n")
    model, note = auto_model(ReplayJob([real], None, labels=[str(lab)]))
    assert model == DEMO_MODEL and "arm_roll" in note
    lab.write_text("start,end,class\n0.0,1.0,right_hand_wave\n")
    assert auto_model(ReplayJob([real], None, labels=[str(lab)]))[0] == REAL_MODEL


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Replays as the nodes run them (threads: 1); a busy 2-core CI machine with two
    spinning torch threads per replay is many times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", ["alex_walking_for_10secs.aedat",
                                  "cam289_right_clamp_test1.aedat"])
def test_real_model_never_commands_on_real_scenes_it_never_saw(shared_data, name):
    """People walking past, a hand moving a clamp (neither recording was used to make the
    model): no command episode at all through the replay and the controller."""
    from snn4_ros.eval.recognition import false_commands
    from snn4_ros.models import checkpoint

    net, card = checkpoint.load(find_model(REAL_MODEL))
    r = false_commands(net, [shared_data / "aedat2_dvs128" / name], card.get("controller", {}))
    assert r.duration_s > 5 and r.episodes == 0, r.as_dict()


def test_real_model_turns_on_a_real_wave(shared_data):
    """One of the 12 clips it was taught on (the held-out figures are the card's, checked
    above): the controller starts the wave's command inside the labelled range, and it is
    the default action of right_hand_wave (turn right)."""
    from snn4_ros.eval.recognition import clip_recognised
    from snn4_ros.models import checkpoint

    net, card = checkpoint.load(find_model(REAL_MODEL))
    clip = shared_data / "aedat4_dvs128" / "dvSave-2024_06_13_16_29_18.aedat4"
    r = clip_recognised(net, clip, "right_hand_wave", 0.0, 5.44, card.get("controller", {}))
    assert r["recognised"], r
    assert card["controller"]["gestures"]["right_hand_wave"]["angular"] == -0.5


def test_base_gestures_names_must_be_the_base_models():
    """`snn4 teach --base-gestures` (how the real-camera model is made) teaches real versions of
    the base model's gestures: a name the base does not have is refused with the valid ones;
    without the flag, a base class name is refused as before."""
    from snn4_ros.events.synthetic import GESTURES
    from snn4_ros.models.teach import TeachError, check_names

    base = tuple(GESTURES)
    check_names(["right_hand_wave"], base, base_gestures=True)
    with pytest.raises(TeachError, match="not a gesture of the base model; did you mean "
                                         "'right_hand_wave'"):
        check_names(["right_hand_wav"], base, base_gestures=True)
    with pytest.raises(TeachError, match="already a class of the base model"):
        check_names(["right_hand_wave"], base)


def test_resume_state_is_not_listed_as_a_model(tmp_path, monkeypatch):
    """``snn4 train --resume`` leaves optimiser tensors beside a checkpoint; they are no model."""
    from snn4_ros.models import zoo

    for name in ("mine.safetensors", "mine.resume.safetensors", "mine.lava.safetensors"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "mine.json").write_text(json.dumps({"preset": "hybridnet-s"}))
    monkeypatch.setattr(zoo, "model_dirs", lambda: [tmp_path])
    assert zoo.shipped_models() == {"mine": {"preset": "hybridnet-s"}}

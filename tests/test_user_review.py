"""What a new user met on the real recordings (an independent review of the CLI), each a
regression test: bad values end in one line and exit 2, nothing a report shows is silently
lost, and the files a command writes are usable by others."""

from __future__ import annotations

import os
import stat

import pytest

from snn4_ros.app.cli import main as snn4

WAVES = "aedat4_dvs128"
WALK = "aedat2_dvs128/neal_walking.aedat"


@pytest.mark.parametrize("argv, says", [
    (["eval", "--model", "hybridnet_gesture_real", "--dataset", "folder:X", "--stride", "0"],
     "--stride: want a number above 0"),
    (["replay", "X", "--jobs", "-3"], "--jobs: want a whole number >= 0"),
    (["up", "--duration", "-5"], "--duration: want a number above 0"),
    (["demo", "--duration", "0"], "--duration: want a number above 0"),
])
def test_bad_values_are_one_line_and_exit_2(argv, says, capsys):
    with pytest.raises(SystemExit) as ex:              # argparse's own usage error
        snn4(argv)
    assert ex.value.code == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1


def test_a_device_torch_cannot_use_is_said_before_any_work(shared_data, capsys):
    import torch

    rec = str(shared_data / WALK)
    assert snn4(["replay", rec, "--device", "tpu"]) == 2
    assert "not a torch device" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert snn4(["replay", rec, "--device", "cuda"]) == 2
        err = capsys.readouterr().err
        assert "sees no CUDA GPU; use --device cpu" in err and "internal error" not in err


def test_positives_whose_labels_the_model_does_not_know_are_refused(shared_data, tmp_path,
                                                                    capsys):
    """A taught model answering "wave" scored against clips labelled right_hand_wave used to
    report 0/12 commanded without a word."""
    from snn4_ros.eval.realworld import check_positive_labels
    from snn4_ros.events.labels import LabelError
    from snn4_ros.models.realdata import read_labels_csv

    clips = read_labels_csv(shared_data / WAVES)
    with pytest.raises(LabelError, match="'right_hand_wave' is not a gesture of the model.*wave"):
        check_positive_labels(clips, ("wave", "none"), shared_data / WAVES)
    check_positive_labels(clips, ("right_hand_wave", "none"), shared_data / WAVES)   # fine
    assert snn4(["replay", str(shared_data / "prophesee" / "evt3_sample.raw"), "--model",
                 "nmnist_1k", "--positives", str(shared_data / WAVES)]) == 2
    assert "--positives" in capsys.readouterr().err


def test_a_truncated_file_shows_its_loss_in_the_replay(shared_data, tmp_path, capsys):
    """inspect --lenient counted the stray bytes; replay said nothing (and crashed on a
    recording too short for a rate)."""
    from snn4_ros.eval.inprocess import replay
    from snn4_ros.eval.metrics import compute_metrics
    from snn4_ros.models import checkpoint
    from snn4_ros.models.zoo import find_model

    src = (shared_data / "prophesee" / "evt3_sample.raw").read_bytes()
    cut = tmp_path / "cut.raw"
    head = src.index(b"\n% end\n") + 7 if b"\n% end\n" in src else 0
    cut.write_bytes(src[: head + 100_001])            # an odd number of payload bytes
    net, _ = checkpoint.load(find_model("hybridnet_gesture_real"))
    tr = replay(cut, net)
    m = compute_metrics([tr])
    assert m["decode_skips"]["truncated_bytes"] >= 1 and m["errors"]
    assert snn4(["replay", str(cut)]) == 0
    out = capsys.readouterr().out
    assert "truncated_bytes" in out and "episodes/min pooled" in out


def test_an_empty_or_cut_aedat4_is_one_line_without_a_cpp_stack_trace(shared_data, tmp_path,
                                                                      capsys):
    empty = tmp_path / "empty.aedat4"
    empty.write_bytes(b"")
    cut = tmp_path / "cut.aedat4"
    cut.write_bytes(next((shared_data / WAVES).glob("*.aedat4")).read_bytes()[:60])
    for f in (empty, cut):
        assert snn4(["inspect", str(f)]) == 2
        err = capsys.readouterr().err
        assert "End-Of-File" in err and "Stacktrace" not in err
        assert len(err.strip().splitlines()) == 1


def test_a_model_that_does_not_map_onto_loihi_says_why_in_the_energy_line():
    from snn4_ros.models.energy import energy_estimate

    why = energy_estimate(False, "the network does not map onto Loihi 2:\n  attn: SDSA\n  b: c",
                          1.0, 1.0)["why"]
    assert "(attn: SDSA and 1 more)" in why and "Loihi 2:)" not in why


def test_saved_weights_are_readable_like_their_card(tmp_path):
    from snn4_ros.models import checkpoint
    from snn4_ros.models.zoo import find_model

    net, _ = checkpoint.load(find_model("hybridnet_gesture_real"))
    st, card = checkpoint.save(net, tmp_path / "m")
    assert stat.S_IMODE(os.stat(st).st_mode) == stat.S_IMODE(os.stat(card).st_mode)
    assert os.stat(st).st_mode & stat.S_IROTH or not os.stat(card).st_mode & stat.S_IROTH


def test_a_recording_in_wall_clock_time_plays_as_an_evt3_stream(shared_data):
    """snn4 up --source X.aedat4 (or the libcaer bag) stopped at once with the default
    encoding:=evt3: their times are microseconds since 1970, evt3 carries a sensor clock.
    The event source plays such a recording as a camera switched on at its first event."""
    from snn4_ros.events import PacketDecoder, PacketEncoder, read_recording
    from snn4_ros.events.codecs import sensor_clock_offset
    from snn4_ros.events.errors import OutOfRangeError

    ea, _, _ = read_recording(next((shared_data / WAVES).glob("*.aedat4")))
    ev = ea.events[:5000].copy()
    with pytest.raises(OutOfRangeError, match="wall-clock"):
        PacketEncoder("evt3", ea.width, ea.height).encode(ev, stamp_ns=1)
    off = sensor_clock_offset("evt3", int(ev["t"][0]))
    assert off > 0 and off % 1000 == 0
    assert sensor_clock_offset("libcaer_cmp", int(ev["t"][0])) == 0      # carries a time base
    assert sensor_clock_offset("evt3", 5_000_000_000) == 0                # already a sensor clock
    moved = ev.copy()
    moved["t"] -= off
    pkt = PacketEncoder("evt3", ea.width, ea.height).encode(moved, stamp_ns=1)
    back = PacketDecoder().decode(pkt).events
    assert len(back) == len(ev) and (back["t"] // 1000 == moved["t"] // 1000).all()
    assert (back["t"] // 1000 + off // 1000 == ev["t"] // 1000).all()     # nothing lost

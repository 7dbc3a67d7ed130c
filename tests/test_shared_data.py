"""Every recording in ../shared/data is read, and the facts in its README are reproduced."""

import json
import subprocess
import sys

import numpy as np
import pytest

from snn4_ros.events import inspect_recording, read_recording
from snn4_ros.events.files import read_nmnist, read_nmnist_labels


def test_evt3_bag_matches_upstream_checksums(shared_data):
    ea, stats, info = read_recording(shared_data / "rosbag2/evt3_trigger")
    assert info["messages"] == 105 and info["encoding"] == "evt3"
    assert (ea.width, ea.height) == (1280, 720)
    assert len(ea) == 82_469
    assert ea.on_count == 41_439
    assert int(ea.events["x"].sum(dtype=np.int64)) == 42_078_718
    assert int(ea.events["y"].sum(dtype=np.int64)) == 31_656_267
    assert len(ea.triggers) == 2          # triggers are kept apart from CD events
    assert stats.seq_gaps == 0 and stats.out_of_range == 0
    assert np.all(np.diff(ea.events["t"]) >= 0)


def test_libcaer_bag_with_rollover(shared_data):
    ea, stats, info = read_recording(shared_data / "rosbag2/libcaer_rollover")
    assert info["messages"] == 201 and info["encoding"] == "libcaer"
    assert (ea.width, ea.height) == (640, 480)
    assert len(ea) == 334_331
    assert int(ea.events["x"].sum(dtype=np.int64)) == 111_651_612
    assert ea.on_count == 181_908
    assert np.all(np.diff(ea.events["t"]) >= 0), "roll-over must not make time go backwards"


def test_all_aedat4_clips(shared_data):
    files = sorted((shared_data / "aedat4_dvs128").glob("*.aedat4"))
    assert len(files) == 15
    for f in files:
        ea, _, info = read_recording(f)
        assert info["format"] == "aedat4" and (ea.width, ea.height) == (128, 128)
        assert 18_000 <= len(ea) < 28_500, f    # README: "18k-28k" (largest is 28,373)
        assert 5.0 < (ea.t_last_ns - ea.t_first_ns) / 1e9 < 6.0
    ea, _, _ = read_recording(shared_data / "aedat4_dvs128/dvSave-2024_06_13_16_16_25.aedat4")
    assert len(ea) == 18_342
    assert round((ea.t_last_ns - ea.t_first_ns) / 1e9, 3) == 5.459


def test_all_aedat2_recordings(shared_data):
    files = sorted((shared_data / "aedat2_dvs128").glob("*.aedat"))
    assert len(files) == 5
    for f in files:
        ea, stats, _ = read_recording(f)
        data = f.read_bytes()
        header_len = 0
        while data[header_len:header_len + 1] == b"#":
            header_len = data.index(b"\n", header_len) + 1
        assert len(ea) + len(ea.triggers) == (len(data) - header_len) // 8
        assert ea.events["x"].max() < 128 and ea.events["y"].max() < 128
    ea, _, _ = read_recording(shared_data / "aedat2_dvs128/alex_walking_again.aedat")
    assert len(ea) + len(ea.triggers) == 19_182
    assert round((ea.t_last_ns - ea.t_first_ns) / 1e9, 3) == 6.887


def test_prophesee_raw(shared_data):
    ea, stats, info = read_recording(shared_data / "prophesee/evt3_sample.raw")
    assert info["format"] == "prophesee_raw" and (ea.width, ea.height) == (1280, 720)
    assert len(ea) == 219_596


def test_all_nmnist_samples(shared_data):
    folder = shared_data / "nmnist_train1k"
    labels = read_nmnist_labels(folder)
    assert len(labels) == 1000 and set(labels.values()) == set(range(10))
    counts = []
    for sid in labels:
        ea, _ = read_nmnist(folder / f"{sid}.bs2")
        assert ea.width == ea.height == 34
        assert ea.events["t"].max() < 400_000_000
        counts.append(len(ea))
    assert 3_500 < np.mean(counts) < 4_700          # "~4,100 events per sample"


@pytest.mark.parametrize("rel", ["rosbag2/evt3_trigger", "prophesee/evt3_sample.raw"])
def test_inspect_json_names(shared_data, rel):
    out = subprocess.run([sys.executable, "-m", "snn4_ros.app.cli", "inspect", "--json",
                          str(shared_data / rel)], capture_output=True, text=True, check=True)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("format", "width", "height", "events", "on", "off", "triggers",
                "t_first_us", "t_last_us"):
        assert key in info
    assert info["events"] == info["on"] + info["off"]
    if rel.startswith("rosbag2"):
        assert info["messages"] == 105 and info["triggers"] == 2
    assert info == {**inspect_recording(shared_data / rel), "path": info["path"]}

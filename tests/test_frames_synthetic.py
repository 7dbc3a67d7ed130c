"""Events -> frames (against tonic), streaming windowing, noise filters, the synthetic DVS."""

import subprocess
import sys

import numpy as np
import pytest

from snn4_ros.events import (FrameConfig, FrameStream, events_to_frames, events_to_voxel_grid,
                             make_events)
from snn4_ros.events.frames import background_activity_filter, dv_noise_filter, refractory_filter
from snn4_ros.events.synthetic import GESTURES, GestureSimulator, SensorConfig


def _events(n=20000, w=128, h=128, seed=0, span_us=200_000):
    rng = np.random.default_rng(seed)
    return make_events(np.sort(rng.integers(0, span_us, n)) * 1000, rng.integers(0, w, n),
                       rng.integers(0, h, n), rng.integers(0, 2, n))


def test_frames_equal_tonic_toframe():
    import tonic.transforms as T

    ev = _events()
    t = np.zeros(len(ev), dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
    t["x"], t["y"], t["t"], t["p"] = ev["x"], ev["y"], ev["t"] // 1000, ev["p"]
    ref = T.ToFrame(sensor_size=(128, 128, 2), time_window=10_000)(t)
    ours = events_to_frames(ev, ref.shape[0], FrameConfig(bin_us=10_000), 128, 128)
    assert ours.shape == ref.shape and np.array_equal(ours, ref)


def test_downsample_crop_and_clip():
    ev = make_events([0, 1000, 2000, 3000], [0, 1, 10, 127], [0, 1, 5, 127], [1, 1, 0, 1])
    f = events_to_frames(ev, 1, FrameConfig(bin_us=10_000, downsample=2), 128, 128)
    assert f.shape == (1, 2, 64, 64) and f[0, 1, 0, 0] == 2 and f[0, 0, 2, 5] == 1
    f = events_to_frames(ev, 1, FrameConfig(bin_us=10_000, crop=(8, 4, 16, 8)), 128, 128)
    assert f.shape == (1, 2, 8, 16) and f.sum() == 1 and f[0, 0, 1, 2] == 1
    f = events_to_frames(ev, 1, FrameConfig(bin_us=10_000, downsample=2, clip_count=1), 128, 128)
    assert f.max() == 1
    with pytest.raises(ValueError, match="does not fit"):
        events_to_frames(ev, 1, FrameConfig(crop=(100, 0, 64, 64)), 128, 128)
    with pytest.raises(ValueError):
        FrameConfig(bin_us=0)
    with pytest.raises(ValueError):
        FrameConfig(downsample=0)


def test_frame_stream_equals_batch():
    ev = _events(seed=2)
    cfg = FrameConfig(bin_us=7_000, downsample=4)
    fs = FrameStream(cfg, 128, 128)
    got, ends = [], []
    for part in np.array_split(ev, 53):
        fr, e = fs.push(part)
        got.append(fr)
        ends += e
    fr, e = fs.flush(int(ev["t"][-1]) + 7_000_000)
    got.append(fr)
    ends += e
    got = np.concatenate(got)
    t0 = int(ev["t"][0]) // 7_000_000 * 7_000_000
    ref = events_to_frames(ev, len(got), cfg, 128, 128, t0_ns=t0)
    assert np.array_equal(got, ref) and got.sum() == len(ev)
    assert np.all(np.diff(ends) == 7_000_000)


def test_voxel_grid_conserves_polarity_sum():
    ev = _events(seed=4)
    n_bins = 20
    v = events_to_voxel_grid(ev, n_bins, FrameConfig(bin_us=10_000), 128, 128, t0_ns=0)
    pol = np.where(ev["p"] > 0, 1, -1)
    # events in the first and last half bin put their weight only on one side
    t = ev["t"] / 1e7 - 0.5
    inner = (t >= 0) & (t <= n_bins - 1)
    assert abs(v.sum() - pol[inner].sum()) < abs(pol[~inner]).sum() + 1e-3


def test_noise_filters():
    rng = np.random.default_rng(0)
    # a moving edge (supported events) plus isolated noise
    xs = np.repeat(np.arange(10, 60), 20)
    ys = np.tile(np.arange(40, 60), 50)
    t_edge = (np.repeat(np.arange(50), 20) * 200_000 + np.tile(np.arange(20), 50) * 1000) * 1000
    noise_t = rng.integers(0, 10_000_000, 200) * 1000
    ev = make_events(np.concatenate([t_edge, noise_t]),
                     np.concatenate([xs, rng.integers(0, 128, 200)]),
                     np.concatenate([ys, rng.integers(0, 128, 200)]), np.ones(1200))
    ev = ev[np.argsort(ev["t"], kind="stable")]
    kept = background_activity_filter(ev, 128, 128, window_us=2000)
    edge_kept = np.isin(kept["t"], t_edge).sum()
    assert edge_kept == 950 and len(kept) - edge_kept < 10   # the first of each column has no support
    from snn4_ros.events import EventArray
    ref = dv_noise_filter(EventArray(ev, 128, 128), 2000)
    assert abs(len(ref) - len(kept)) < 0.1 * len(ref)
    rf = refractory_filter(make_events([0, 100_000, 5_000_000], [1, 1, 1], [1, 1, 1], [1, 1, 1]),
                           8, 8, refractory_us=1000)
    assert rf["t"].tolist() == [0, 5_000_000]


def test_synthetic_is_deterministic_and_labelled():
    a = GestureSimulator(seed=5).clip("hand_clap", 0.3)
    b = GestureSimulator(seed=5).clip("hand_clap", 0.3)
    c = GestureSimulator(seed=6).clip("hand_clap", 0.3)
    assert np.array_equal(a.events.events, b.events.events)
    assert not np.array_equal(a.events.events, c.events.events)
    assert a.labels[0].name == "hand_clap" and a.labels[0].t_end_ns == 300_000_000
    assert a.target.shape == (150, 4) and a.target[:, 3].all()
    a.events.validate()


def test_synthetic_classes_differ_and_move():
    sim = GestureSimulator(seed=1)
    counts = {}
    for g in GESTURES:
        clip = sim.clip(g, 0.4)
        clip.events.validate()
        counts[g] = len(clip.events)
        assert counts[g] > 1000, g
    assert counts["right_arm_cw"] > counts["hand_clap"]
    # arm circles happen on the performer's right (image left) of the body centre
    clip = sim.clip("right_arm_cw", 0.5)
    assert np.median(clip.events.events["x"]) < 64


def test_synthetic_resolution_noise_and_hot_pixels():
    sim = GestureSimulator(seed=0, sensor=SensorConfig(width=64, height=48, noise_hz=5.0,
                                                       hot_pixel_fraction=0.01, hot_pixel_hz=400))
    clip = sim.clip("other", 0.5)
    ev = clip.events.events
    assert ev["x"].max() < 64 and ev["y"].max() < 48
    pix = ev["y"].astype(int) * 64 + ev["x"]
    top = np.bincount(pix, minlength=64 * 48)
    assert np.sort(top)[-len(sim.dvs.hot):].min() > 50       # hot pixels stand out
    with pytest.raises(ValueError):
        GestureSimulator(sensor=SensorConfig(width=8, height=8))
    with pytest.raises(ValueError, match="out of range"):
        sim.clip(42)


def test_cli_help_and_demo():
    out = subprocess.run([sys.executable, "-m", "snn4_ros.app.cli", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for cmd in ("inspect", "demo", "record-synthetic"):
        assert cmd in out
    out = subprocess.run([sys.executable, "-m", "snn4_ros.app.cli", "demo", "--duration", "2.5"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    lines = [line for line in out.splitlines() if "ev/s" in line]
    assert len(lines) >= 1 and "truth=" in lines[0] and "snn=" in lines[0]


def test_record_synthetic_then_inspect(tmp_path):
    out = subprocess.run([sys.executable, "-m", "snn4_ros.app.cli", "record-synthetic", "--out",
                          str(tmp_path / "s"), "--gestures", "2", "--gesture-s", "0.5", "--json"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    import json
    info = json.loads(out)
    labels = (tmp_path / "s.labels.csv").read_text().splitlines()
    assert labels[0] == "start,end,class" and len(labels) == 3
    from snn4_ros.events import inspect_recording
    ins = inspect_recording(tmp_path / "s")
    assert ins["events"] == info["events"] and ins["messages"] == info["messages"]

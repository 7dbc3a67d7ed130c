"""Attacks on the perception pipeline, each a regression test (core only, no ROS).

Each one once stalled or blinded the live inference node (issue 17): a packet spanning an
hour, random bytes labelled evt3, a 0x0 packet before the camera, a single lying
time_base. The pipeline now rejects them by cause before any bin is made and keeps
classifying the valid stream.
"""

import numpy as np
import pytest

from snn4_ros.events import FrameConfig, FrameStream, Packet, PacketEncoder, make_events
from snn4_ros.models import checkpoint
from snn4_ros.models.zoo import find_model
from snn4_ros.runtime.pipeline import GeometryError, PerceptionPipeline, PipelineLimits


@pytest.fixture(scope="module")
def net():
    net = checkpoint.load(find_model("hybridnet_gesture_synth"))[0]
    PerceptionPipeline(net).warm_up()             # compile the decoders once
    return net


def _stream(seconds=1.0, w=128, h=128, per_packet_ms=10, seed=0, t0_ns=0):
    """Valid evt3 packets of random events, ``per_packet_ms`` each."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 20_000)
    t = t0_ns + np.sort(rng.integers(0, int(seconds * 1e9), n))
    ev = make_events(t, rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n))
    enc = PacketEncoder("mono", w, h)
    edges = np.searchsorted(t, t0_ns + np.arange(0, int(seconds * 1e9) + 1,
                                                 per_packet_ms * 1_000_000))
    return [enc.encode(ev[a:b]) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _run(pipe, pkts):
    out = 0
    for p in pkts:
        try:
            out += len(pipe.process(p))
        except GeometryError:
            pass
    return out


def test_one_packet_spanning_an_hour_is_rejected_before_any_bin(net):
    pipe = PerceptionPipeline(net)
    good = _stream(1.0)
    assert _run(pipe, good[:50]) > 5
    bins = pipe.bins
    attack = Packet("evt3", 128, 128, PacketEncoder("evt3", 128, 128).encode(
        make_events([0, 3600 * 10**9], [1, 2], [1, 2], [0, 1])).events, seq=50)
    assert pipe.process(attack) == []
    assert pipe.rejected["time_span"] == 1 and pipe.bins == bins   # no 90,000 bins stepped
    assert pipe.frames.closed_bins() == 0
    regressions = pipe.decoder.stats.time_regressions
    assert _run(pipe, good[50:]) > 5                        # still classifying
    assert pipe.decoder.stats.time_regressions == regressions   # nothing poisoned
    assert pipe.time_jumps == 0


@pytest.mark.parametrize("encoding", ["evt3", "libcaer", "libcaer_cmp", "mono"])
def test_random_bytes_do_not_stall_or_blind_the_pipeline(net, encoding):
    pipe = PerceptionPipeline(net)
    good = _stream(1.5)
    rng = np.random.default_rng(1)
    made = 0
    for i, p in enumerate(good):
        made += _run(pipe, [p])
        if i % 3 == 1:          # garbage interleaved with the valid stream
            junk = Packet(encoding, 128, 128, rng.integers(0, 256, 4096, dtype=np.uint8),
                          seq=int(rng.integers(0, 2**63)), time_base=int(rng.integers(0, 2**62)))
            made += _run(pipe, [junk])
    assert made >= 25                              # ~37 bins of 40 ms in 1.5 s of stream
    assert pipe.bins <= 40                         # and never hundreds of invented ones
    assert pipe.time_jumps == 0 and pipe.stream_geometry == (128, 128)
    st = pipe.decoder.stats
    # every junk packet is accounted for: rejected whole, or its events counted as invalid
    assert sum(pipe.rejected.values()) + st.skipped_packets + st.out_of_range + st.bad_words \
        + st.truncated_bytes >= 12


def test_false_geometry_first_does_not_lock_the_camera_out(net):
    """An empty 0x0 packet before the camera starts once meant 0 decisions in 25 s."""
    pipe = PerceptionPipeline(net)
    assert pipe.process(Packet("evt3", 0, 0, b"", seq=0)) == []
    assert pipe.process(Packet("mono", 640, 480, b"", seq=0)) == []    # valid size, no events
    assert pipe.stream_geometry is None
    assert pipe.decoder.stats.skipped_by_cause == {"invalid_geometry": 1}
    assert _run(pipe, _stream(1.0)) > 5 and pipe.stream_geometry == (128, 128)


def test_single_lying_geometry_is_rejected_a_real_camera_change_is_relearnt(net):
    pipe = PerceptionPipeline(net, limits=PipelineLimits(confirm_packets=3))
    good = _stream(2.0)
    _run(pipe, good[:40])
    liar = _stream(0.05, w=346, h=260, per_packet_ms=10, t0_ns=int(good[40].time_base))
    for i, p in enumerate(good[40:100]):
        _run(pipe, [p])
        if i % 5 == 0:
            _run(pipe, liar[:1])                  # one lying packet at a time
    assert pipe.stream_geometry == (128, 128) and pipe.geometry_changes == 0
    assert pipe.rejected["geometry"] == 12
    # the camera is replaced by a DAVIS346: after three agreeing packets it is the stream
    t_new = int(good[-1].time_base) + 20_000_000
    new = _stream(1.0, w=346, h=260, t0_ns=t_new)
    before = pipe.bins
    _run(pipe, new)
    assert pipe.stream_geometry == (346, 260) and pipe.geometry_changes == 1
    assert pipe.bins - before >= 20


def test_a_lying_time_base_cannot_restart_the_stream_a_real_restart_can(net):
    pipe = PerceptionPipeline(net, limits=PipelineLimits(confirm_packets=3))
    good = _stream(2.0)
    made = 0
    for i, p in enumerate(good):
        made += _run(pipe, [p])
        if i % 4 == 0:
            liar = Packet("mono", 128, 128, p.events, seq=p.seq,
                          time_base=p.time_base + 3600 * 10**9)
            made += _run(pipe, [liar])
    assert pipe.time_jumps == 0 and pipe.rejected["time_jump"] >= 40 and made >= 40
    # a camera restart: its clock starts again near zero; three packets confirm it and
    # none of their events is lost
    restart = _stream(0.5, seed=3, t0_ns=0)
    events_before = pipe.decoder.stats.events
    _run(pipe, restart)
    assert pipe.time_jumps == 1
    assert pipe.decoder.stats.events - events_before == sum(len(p.events) // 8 for p in restart)


def test_frame_stream_is_lazy_and_capped():
    """Bins are made one at a time: a consumer that stops after a cap leaves the rest
    pending (nothing materialised, nothing lost or repeated)."""
    cfg = FrameConfig(bin_us=40_000)
    fs = FrameStream(cfg, 128, 128)
    fs.add(make_events([0, 3600 * 10**9], [1, 2], [1, 2], [0, 1]))
    assert fs.closed_bins() == 90_000
    got = list(fs.bins(max_bins=5))
    assert len(got) == 5
    assert got[0][0].sum() == 1 and all(f.sum() == 0 for f, _ in got[1:])
    assert fs.closed_bins() == 89_995                      # the rest still pending
    assert fs.skip_to(fs.latest_ns) == 89_995 and fs.closed_bins() == 0
    assert fs.flush(3600 * 10**9 + 40_000_000)[0].sum() == 1  # the late event's bin

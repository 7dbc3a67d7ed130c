"""Latency-bounded processing: the backlog's shedding, deterministically (a fake clock, real
packets through the real pipeline and shipped model; no wall time is asserted)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snn4_ros.events import PacketEncoder, make_events
from snn4_ros.runtime.backlog import Backlog, LatencyBudget, ShedStats, born_on_clock


class FakeClock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_budget_rejects_nonsense():
    with pytest.raises(ValueError):
        LatencyBudget(deadline_s=0)
    with pytest.raises(ValueError):
        LatencyBudget(max_events_per_bin=-1)
    with pytest.raises(ValueError):
        LatencyBudget(max_packets=0)


def test_take_splits_by_age_relative_to_the_newest():
    clk = FakeClock()
    b = Backlog(LatencyBudget(deadline_s=0.039), clock=clk)
    # 100 packets of 2 ms, all queued while the worker was busy (200 ms behind)
    for k in range(100):
        clk.t += 0.002
        b.put(k)
    clk.t += 0.5
    late, fresh = b.take(timeout=0)
    # data born more than 39 ms before the newest is late: the newest 20 packets stay
    assert late == list(range(0, 80))
    assert fresh == list(range(80, 100))
    assert len(b) == 0
    assert b.take(timeout=0) == ([], [])


def test_keeps_everything_when_the_worker_keeps_up():
    clk = FakeClock()
    b = Backlog(LatencyBudget(deadline_s=0.04), clock=clk)
    for k in range(20):
        clk.t += 0.002
        b.put(k)                 # born = arrival time
        late, fresh = b.take(timeout=0)
        assert (late, fresh) == ([], [k])


def test_born_never_in_the_future_and_memory_guard_counts():
    clk = FakeClock()
    b = Backlog(LatencyBudget(deadline_s=0.04, max_packets=5), clock=clk)
    b.put("future", born=clk.t + 10)     # a clock ahead of ours: treated as born now
    for k in range(6):
        b.put(k)
    assert b.stats.queue_full_packets == 2
    late, fresh = b.take(timeout=0)
    assert late == [] and fresh == [1, 2, 3, 4, 5]


def test_born_on_clock_trusts_only_plausible_stamps():
    assert born_on_clock(99.95, now_stamp_s=100.0, now_clock=5.0) == pytest.approx(4.95)
    assert born_on_clock(0.0, 100.0, 5.0) is None            # unset stamp
    assert born_on_clock(50.0, 100.0, 5.0) is None           # a clock 50 s off
    assert born_on_clock(100.5, 100.0, 5.0) == pytest.approx(5.0)   # slightly ahead: now


def test_shed_fraction():
    s = ShedStats(events=1000, late_events=150, capped_events=50, queue_full_packets=0)
    assert s.shed_fraction() == pytest.approx(0.2)
    assert s.as_dict()["shed_fraction"] == pytest.approx(0.2)
    assert ShedStats().shed_fraction() == 0.0


# ---------------------------------------------------------------- through the real pipeline
@pytest.fixture(scope="module")
def net():
    from snn4_ros.models import checkpoint
    from snn4_ros.models.zoo import find_model
    torch.set_num_threads(1)
    return checkpoint.load(find_model("hybridnet_gesture_synth"))[0]


def _packets(n_packets: int, per_packet: int = 200, seed: int = 0):
    """A continuous evt3 stream of 2 ms packets (128x128), stamped 2 ms apart."""
    rng = np.random.default_rng(seed)
    enc = PacketEncoder("evt3", 128, 128, "cam")
    out = []
    for k in range(n_packets):
        t = np.sort(rng.integers(0, 2000, per_packet)) * 1000 + k * 2_000_000
        ev = make_events(t, rng.integers(0, 128, per_packet), rng.integers(0, 128, per_packet),
                         rng.integers(0, 2, per_packet))
        pkt = enc.encode(ev, stamp_ns=1_000_000_000 + k * 2_000_000)
        out.append(pkt)
    return out


def _pipeline(net):
    from snn4_ros.runtime.pipeline import PerceptionPipeline
    return PerceptionPipeline(net)


def test_batch_without_backlog_equals_packet_by_packet(net):
    pk = _packets(120)                      # 240 ms: 6 bins
    a, b = _pipeline(net), _pipeline(net)
    ref = [r for p in pk for r in a.process(p)]
    got = [r for p in pk for _, r in b.process_batch([], [p])]
    assert len(ref) == len(got) == 5
    for r, g in zip(ref, got):
        torch.testing.assert_close(r.output.logits, g.output.logits)
    assert b.shed.shed_events() == 0 and b.shed.coalesced_bins == 0
    assert b.shed.decided_bins == 5 and b.shed.events == 120 * 200


def test_coalesced_bins_keep_the_state_exact(net):
    """A backlog of 4 bins: one decision, for the newest bin, equal to stepping every bin."""
    pk = _packets(100)
    a, b = _pipeline(net), _pipeline(net)
    ref = [r for p in pk for r in a.process(p)]
    got = b.process_batch([], pk)
    assert len(got) == 1
    i, r = got[0]
    assert i == 80                         # the packet that closed the newest bin
    torch.testing.assert_close(r.output.logits, ref[-1].output.logits)
    assert b.shed.coalesced_bins == len(ref) - 1 and b.shed.decided_bins == 1


def test_late_data_is_shed_counted_and_decoding_stays_in_step(net):
    """Late packets are decoded (evt3 is a stateful stream) but skipped: their bins get no
    backbone step, the first fresh bin is decided, every shed event is counted."""
    pk = _packets(200)                      # 400 ms
    p = _pipeline(net)
    p.process_batch([], pk[:20])            # one bin decided, stream running
    clk = FakeClock()
    backlog = Backlog(LatencyBudget(deadline_s=0.039), clock=clk)
    for pkt in pk[20:]:
        clk.t += 0.002
        backlog.put(pkt)
    late, fresh = backlog.take(timeout=0)
    assert len(late) == 160 and len(fresh) == 20
    out = p.process_batch(late, fresh)
    st = p.shed
    assert st.late_packets == 160 and st.late_events == 160 * 200
    assert st.skipped_bins >= 7             # 320 ms of late data: 8 bins, one partial
    assert p.decoder.stats.time_regressions == 0 and p.decoder.stats.skipped_packets == 0
    assert len(out) <= 1
    # the stream goes on: the next bins are decided again
    more = _packets(260)[200:]
    got = [r for q in more for r in p.process_batch([], [q])]
    assert len(got) >= 2
    assert st.shed_fraction() == pytest.approx(st.late_events / st.events)


def test_event_cap_subsamples_and_counts(net):
    pk = _packets(40, per_packet=2000)      # 1 M events/s
    p = _pipeline(net)
    for q in pk:
        p.process_batch([], [q], max_events_per_bin=10_000)   # 250 k events/s allowed
    st = p.shed
    assert st.events == 40 * 2000
    # each 2 ms packet may keep 10_000 * 2/40 = 500 of its 2000 events
    assert st.capped_events == pytest.approx(40 * 1500, rel=0.01)
    assert p.decoder.stats.events == 40 * 2000


def test_lost_evt3_packets_never_make_extra_bins(net):
    """Packets lost on the way (DDS best effort) take evt3 TIME_HIGH words with them, so the
    next packet's first events decode up to 4 ms early. They are dropped and counted; the
    network is not reset and no bin is made twice (once: 172 decisions for 150 bins)."""
    pk = _packets(400)                      # 800 ms: 20 bins
    lost = set(range(31, 400, 7))           # one packet in seven lost
    p = _pipeline(net)
    out = [r for k, q in enumerate(pk) if k not in lost for r in p.process(q)]
    assert p.decoder.stats.seq_gaps == len(lost)
    assert p.time_jumps == 0
    assert len(out) <= 19                   # never more bins than the data spans
    assert p.shed.regressed_events > 0


def test_gc_pauses_reports_the_worst_pause_and_full_collections():
    """The monitor behind /diagnostics' gc_pause_max_ms, driven by a fake clock."""
    import gc

    from snn4_ros.runtime.gc_pauses import GcPauses

    clock = FakeClock(10.0)
    mon = GcPauses(clock=clock)
    try:
        for gen, dt in ((0, 0.001), (2, 0.120), (1, 0.004)):
            mon._on_gc("start", {"generation": gen})
            clock.t += dt
            mon._on_gc("stop", {"generation": gen})
        n, worst, full = mon.take()
        assert (n, full) == (3, 1) and worst == pytest.approx(0.120)
        assert mon.take() == (0, 0.0, 0)            # since the last take only
        mon._on_gc("stop", {"generation": 2})       # a stop without its start: ignored
        assert mon.take() == (0, 0.0, 0)
        assert mon._on_gc in gc.callbacks
    finally:
        mon.close()
    assert mon._on_gc not in gc.callbacks


def _decoded_vs_skimmed(packets, skim_every: int):
    """Decode every packet with one decoder; with another, skim every ``skim_every``-th
    and decode the rest. Returns both decoders and the skimmed packets' checks."""
    from snn4_ros.events import PacketDecoder

    a, b = PacketDecoder(strict=False), PacketDecoder(strict=False)
    skimmed = 0
    for k, pkt in enumerate(packets):
        ev = a.decode(pkt).events
        if k % skim_every == 0:
            got = b.skim(pkt)
            if got is not None:
                skimmed += 1
                n, t0, t1 = got
                assert n == len(ev)
                assert (t0, t1) == ((int(ev["t"][0]), int(ev["t"][-1])) if n else (-1, -1))
                continue
        b.decode(pkt)
    return a, b, skimmed


def test_skimming_shed_evt3_leaves_the_stream_exactly_as_decoding(shared_data):
    """Late data is skimmed (no events made) instead of decoded; the decoder's state and
    every counter end exactly where decoding every packet leaves them -- on the real
    Prophesee evt3 bag (vector words, triggers, 1280x720) and a synthetic stream."""
    from snn4_ros.events.bags import iter_bag

    real = [m.packet for m in iter_bag(shared_data / "rosbag2/evt3_trigger")]
    for packets in (real, _packets(300, per_packet=500)):
        for every in (1, 2, 3):
            a, b, skimmed = _decoded_vs_skimmed(packets, every)
            assert skimmed >= len(packets) // every - 2
            assert a.snapshot() == b.snapshot()
            assert a.stats.as_dict() == b.stats.as_dict()


def test_skimming_refuses_what_decoding_would_report():
    """Corrupt words, events outside the sensor or another encoding: skim returns None and
    changes nothing, so the caller decodes (and counts) the packet the ordinary way."""
    from snn4_ros.events import Packet, PacketDecoder

    pk = _packets(3)
    d = PacketDecoder(strict=False)
    d.decode(pk[0])
    before, stats = d.snapshot(), d.stats.as_dict()
    bad = np.frombuffer(pk[1].payload().tobytes(), "<u2").copy()
    bad[5] = 1 << 12                               # code 1: invalid in evt3
    small = Packet(**{**pk[1].__dict__, "width": 64, "height": 64})   # events outside
    for pkt in (Packet(**{**pk[1].__dict__, "events": bad.tobytes()}), small,
                Packet(**{**pk[1].__dict__, "encoding": "mono"})):
        assert d.skim(pkt) is None
        assert d.snapshot() == before and d.stats.as_dict() == stats
    assert d.skim(pk[1], accept=lambda t0, t1: False) is None
    assert d.snapshot() == before and d.stats.as_dict() == stats
    assert d.skim(pk[1]) is not None and d.stats.packets == 2


def test_late_data_skimmed_or_decoded_sheds_the_same(net, monkeypatch):
    """The pipeline's shed counts and its next decisions do not depend on whether late
    packets were skimmed or decoded."""
    pk = _packets(200)
    runs = []
    for skim in (True, False):
        p = _pipeline(net)
        if not skim:
            monkeypatch.setattr(p, "_skim", lambda pkt: None)
        p.process_batch([], pk[:20])
        p.process_batch(pk[20:180], pk[180:200])
        out = [r for q in _packets(260)[200:] for _, r in p.process_batch([], [q])]
        runs.append((p.shed.as_dict(), p.decoder.stats.as_dict(), p.decoder.snapshot(),
                     [r.output.logits for r in out]))
    (s1, d1, n1, o1), (s2, d2, n2, o2) = runs
    assert s1 == s2 and d1 == d2 and n1 == n2 and s1["late_packets"] == 160
    assert len(o1) == len(o2) >= 2
    for x, y in zip(o1, o2):
        torch.testing.assert_close(x, y)


# -- overload: the load governor thins fresh packets while batches fall behind ---------------

def test_load_governor_halves_to_its_floor_and_grows_back():
    from snn4_ros.runtime.backlog import LoadGovernor

    g = LoadGovernor(floor=20_000)
    bin_ns = 40_000_000
    g.observe(10_000, 20, bin_ns, bin_ns, behind=True)  # below the floor: never thinned
    assert g.budget == 0 and g.decode_next()
    g = LoadGovernor(floor=20_000)
    for want in (100_000, 50_000, 25_000, 20_000, 20_000):
        g.observe(200_000, 20, bin_ns, bin_ns, behind=True)  # 5 M events/s, behind
        assert g.budget == want
    g.observe(200_000, 20, bin_ns, bin_ns, behind=False)
    assert g.budget == 22_000                            # a tenth back per batch on time
    for _ in range(60):
        g.observe(200_000, 20, bin_ns, bin_ns, behind=False)
    assert g.budget == 0                                 # off again once it reaches the rate
    g = LoadGovernor(floor=3, budget=3, rate=100.0)      # a tiny floor still grows back
    for _ in range(200):
        g.observe(100, 20, bin_ns, bin_ns, behind=False)
    assert g.budget == 0
    g = LoadGovernor(floor=0)                            # 0: never thin
    g.observe(10**6, 20, bin_ns, bin_ns, behind=True)
    assert g.budget == 0


def test_load_governor_decodes_an_even_share():
    from snn4_ros.runtime.backlog import LoadGovernor

    g = LoadGovernor(floor=1, budget=50_000, rate=200_000.0)
    picks = [g.decode_next() for _ in range(400)]
    assert sum(picks) == 100                             # budget / rate of them
    assert max(len(run) for run in "".join("x" if p else "." for p in picks).split("x")) == 3
    # 20 M events/s in 2 ms packets: one packet (40 k) is more than the budget, yet every
    # bin's worth of packets (20) still has one decoded, never an empty bin
    g = LoadGovernor(floor=1, budget=20_000, rate=800_000.0, packets_per_bin=20.0)
    picks = [g.decode_next() for _ in range(400)]
    assert sum(picks) == 20 and all(any(picks[i:i + 20]) for i in range(0, 400, 20))


def test_thinned_packets_are_counted_and_the_stream_stays_exact(net):
    """A backlog while thinning: the packets not decoded are skimmed (evt3 state exact, every
    event counted as thinned), the newest is decoded and closes the bin, and the stream
    goes on exactly as if everything had been decoded."""
    pk = _packets(200)
    p, ref = _pipeline(net), _pipeline(net)
    p.process_batch([], pk[:20])
    ref.process_batch([], pk[:20])
    p.governor.budget, p.governor.rate = 2_000, 8_000.0  # decode a quarter
    out = p.process_batch([], pk[20:61])                   # closes the bins at 40, 80, 120 ms
    ref.process_batch([], pk[20:61])
    st = p.shed
    assert len(out) == 1 and out[0][0] == 40               # the newest, always decoded
    assert st.coalesced_bins == 2
    assert st.thinned_packets == 30 and st.thinned_events == 30 * 200   # 40 older, 10 kept
    assert st.events == 61 * 200 and st.late_events == 0
    assert p.decoder._evt3 == ref.decoder._evt3            # the stream's state exact
    assert p.decoder.stats.events == ref.decoder.stats.events == 61 * 200
    assert st.shed_fraction() == pytest.approx(30 * 200 / (61 * 200))
    p.governor.budget = 0                                  # on time again: all decoded
    p.process_batch([], pk[61:100])
    assert st.thinned_packets == 30


class StepClock:
    """A fake clock for the governor: each reading ``step`` seconds after the last, so a
    batch's decoding 'takes' exactly one step whatever the machine."""

    def __init__(self, step: float):
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def test_governor_thins_only_while_decoding_falls_behind(net):
    """Backlogs of 10 packets (20 ms) at 1 M events/s: decoding that 'takes' 5 ms keeps the
    governor off; 30 ms (over half a bin) turns thinning on, and on time it turns off."""
    from snn4_ros.runtime.pipeline import PerceptionPipeline

    pk = _packets(400, per_packet=2000)
    p = PerceptionPipeline(net, clock=StepClock(0.005))    # two readings a batch: 5 ms
    for k in range(0, 200, 10):
        p.process_batch([], pk[k:k + 10])
    assert p.governor.budget == 0 and p.shed.thinned_events == 0
    p.clock = StepClock(0.03)                               # 30 ms a batch: behind
    for k in range(200, 260, 10):
        p.process_batch([], pk[k:k + 10])
    assert p.governor.budget == 20_000 and p.shed.thinned_events > 0
    thinned = p.shed.thinned_events
    p.clock = StepClock(0.005)                              # on time again
    for k in range(260, 400, 10):
        p.process_batch([], pk[k:k + 10])
    assert p.governor.budget == 0
    assert p.shed.thinned_events - thinned < 8 * 9 * 2000   # thinning stopped on the way


# -- prewarm: the step rehearsed just before a bin closes, state untouched -------------------

def test_rehearse_leaves_every_state_as_it_was(net):
    from snn4_ros.models.hybridnet import StreamingRunner

    torch.manual_seed(0)
    frames = (torch.rand(24, 1, 2, 64, 64) < 0.05).float()
    a, b = StreamingRunner(net), StreamingRunner(net)
    for t in range(24):
        if t % 3 == 0:
            b.rehearse(torch.ones(1, 2, 64, 64))
        ra, rb = a.step(frames[t]), b.step(frames[t])
        assert torch.equal(ra.logits, rb.logits) and torch.equal(ra.position, rb.position)
    assert a.bins == b.bins and len(a.buffer) == len(b.buffer)


def test_prewarm_runs_once_per_bin_just_before_it_closes_and_changes_nothing(net):
    pk = _packets(200)                                     # 2 ms packets, 40 ms bins
    a, b = _pipeline(net), _pipeline(net)
    when = []
    ref, got = [], []
    for k, q in enumerate(pk):
        ref += [r for _, r in a.process_batch([], [q])]
        got += [r for _, r in b.process_batch([], [q])]
        b._prewarm_last_s = 0.003            # as if each rehearsal took 3 ms (deterministic)
        if b.prewarm():
            when.append(k)
    assert len(ref) == len(got) == 9
    for r, g in zip(ref, got):
        assert torch.equal(r.output.logits, g.output.logits)
    # once per bin, the last one for the bin still open; packet k = 20 m closes bin m, so
    # with 2 ms packets and 3 ms rehearsals the rehearsal leads it by 1.5 packets + 3.75 ms
    assert when == [20 * m - 4 for m in range(1, 11)]
    assert b.prewarm() is False                            # not due twice in a bin
    # busy when due: asked once, no rehearsal, and due again at the next call
    c, asked = _pipeline(net), []
    for q in pk[:17]:
        c.process_batch([], [q])
        c._prewarm_last_s = 0.003
        c.prewarm(lambda: asked.append(1) or False)
    assert c.prewarms == 0 and len(asked) == 1             # only packet 16 was due
    assert c.prewarm(lambda: True) is True and c.prewarms == 1


def test_duty_cycle_is_the_recent_busy_share():
    from snn4_ros.runtime.backlog import DutyCycle

    d = DutyCycle(tau_s=0.5, max_fraction=0.5)
    assert d.fraction(0.0) == 0.0 and d.has_headroom(0.0)
    for k in range(100):                    # busy 10 ms of every 40 ms for 4 s
        d.add(0.04 * k, 0.04 * k + 0.01)
    assert d.fraction(3.99) == pytest.approx(0.25, abs=0.05) and d.has_headroom(3.99)
    for k in range(100, 200):               # then 35 ms of every 40 ms: starved
        d.add(0.04 * k, 0.04 * k + 0.035)
    assert d.fraction(7.99) == pytest.approx(0.875, abs=0.05) and not d.has_headroom(7.99)
    assert d.fraction(7.99 + 2.0) < 0.02    # an idle worker has headroom again
    d.add(10.0, 10.0)                       # an empty interval changes nothing but time
    assert d.fraction(10.0) == pytest.approx(d.fraction(7.99 + 2.0), rel=0.01)
    always = DutyCycle(max_fraction=1.0)
    always.add(0.0, 10.0)
    assert always.fraction(10.0) > 0.99 and always.has_headroom(10.0)


def test_prewarm_pauses_while_the_worker_is_busy(net):
    """The same stream and due points as above; a worker reported busy 35 ms of every 40 ms
    gets no rehearsal (each due bin counted as skipped), one at 10 of 40 gets them all."""
    pk = _packets(200)
    from snn4_ros.runtime.backlog import DutyCycle

    busy, light = _pipeline(net), _pipeline(net)
    clock = FakeClock(0.0)
    for p in (busy, light):
        p.clock = clock
        p.duty = DutyCycle(tau_s=0.1)           # the stream lasts 0.4 s
    for k, q in enumerate(pk):
        clock.t = 0.002 * k
        for p, share in ((busy, 0.875), (light, 0.25)):
            p.process_batch([], [q])
            p.duty.add(clock.t, clock.t + 0.002 * share)
            p._prewarm_last_s = 0.003
            p.prewarm()
    assert light.prewarms == 10 and light.prewarms_skipped_busy == 0
    # the first due points come before the busy share has built up
    assert busy.prewarms + busy.prewarms_skipped_busy == 10
    assert busy.prewarms_skipped_busy >= 7 and busy.prewarms <= 3


def test_governor_leaves_streams_it_cannot_skim_alone(net):
    """Only evt3 can be skimmed: a libcaer_cmp stream that falls behind is decoded whole,
    and the governor does not switch on (nor pause prewarm) for nothing."""
    from snn4_ros.runtime.pipeline import PerceptionPipeline

    rng = np.random.default_rng(0)
    enc = PacketEncoder("libcaer_cmp", 128, 128, "cam")
    pk = []
    for k in range(100):
        t = np.sort(rng.integers(0, 2000, 2000)) * 1000 + k * 2_000_000
        ev = make_events(t, rng.integers(0, 128, 2000), rng.integers(0, 128, 2000),
                         rng.integers(0, 2, 2000))
        pk.append(enc.encode(ev, stamp_ns=1_000_000_000 + k * 2_000_000))
    p = PerceptionPipeline(net, clock=StepClock(0.03))       # 30 ms a batch: behind
    for k in range(0, 100, 10):
        p.process_batch([], pk[k:k + 10])
    assert p.governor.budget == 0 and p.shed.thinned_events == 0
    assert p.shed.events == 100 * 2000

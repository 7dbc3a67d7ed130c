"""The hot path from EventPacket to model outputs, in one place (no rclpy).

``PerceptionPipeline.process(packet)`` decodes (lenient: problems are counted), maps other
sensor sizes onto the model's, windows the events into the model's time bins and steps the
streaming HybridNet once per closed bin. The inference node, ``snn4 demo`` and replay all
call this, so they compute exactly the same thing.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch

from ..events import FrameStream, Packet, PacketDecoder, PacketEncoder, make_events
from ..events.errors import UserError
from ..events.frames import rescale_events
from ..models.hybridnet import HybridNet, HybridOutput, StreamingRunner
from .backlog import DutyCycle, LoadGovernor, ShedStats


@dataclass
class BinResult:
    frame: np.ndarray              # [2, H, W] counts of the bin
    output: HybridOutput
    snn_s: float = 0.0             # stage times of this bin: spiking backbone,
    head_s: float = 0.0            # bridge (ERS + SAT) + ANN heads


@dataclass
class Decision:
    """What one bin's output means downstream: class scores, top class, tracked target.
    The inference node publishes exactly this; replay scores exactly this."""

    probs: np.ndarray                       # [classes] softmax scores
    top: int
    confidence: float
    position: tuple[float, float] | None    # target (x, y) in model pixels
    visibility: float | None                # target visibility probability

    @classmethod
    def of(cls, out: HybridOutput) -> "Decision":
        probs = torch.softmax(out.logits[0].float(), -1).cpu().numpy()
        top = int(probs.argmax())
        pos = vis = None
        if out.position is not None:
            pos = tuple(float(v) for v in out.position[0])
            vis = float(torch.sigmoid(out.visible[0].float()))
        return cls(probs, top, float(probs[top]), pos, vis)


class GeometryError(UserError):
    """A packet whose sensor size the pipeline cannot use (counted, never fatal)."""


@dataclass(frozen=True)
class PipelineLimits:
    """What one packet may ask of the pipeline, whoever sent it.

    A packet's whole time span is checked before any bin is made: one packet with events at
    t and t + 1 h once made a live node step through 90,000 bins (30 GiB asked for, the
    worker stalled for good). A new timeline (camera restart, bag loop) or a new sensor
    size is believed only when ``confirm_packets`` consecutive valid packets agree, so a
    single lying packet cannot restart the stream or lock the real camera out; the packets
    of a confirmed change are kept and used, not lost.
    """

    max_packet_span_s: float = 1.0        # events of one packet span at most this
    max_bins_per_packet: int = 64         # bins stepped for one packet (a safety cap)
    confirm_packets: int = 3              # agreeing packets that confirm a new timeline/size

    def __post_init__(self):
        if not self.max_packet_span_s > 0 or self.max_bins_per_packet < 1 \
                or self.confirm_packets < 1:
            raise ValueError(f"invalid pipeline limits {self}")


# rejection causes, as counted in ``PerceptionPipeline.rejected`` (names the diagnostics
# and the dashboard's /metrics expose as rejected.<cause>)
REJECT_SPAN = "time_span"          # events of one packet span more than max_packet_span_s
REJECT_JUMP = "time_jump"          # far from the stream's time, not (yet) confirmed
REJECT_GEOMETRY = "geometry"       # a sensor size other than the stream's, not confirmed
REJECT_CORRUPT = "corrupt_words"   # words with codes invalid in the encoding (not a sensor)
REJECT_BINS = "bins_capped"        # bins dropped by the per-packet cap (a safety net)


@dataclass
class _Candidate:
    """Packets that disagree with the stream in the same way (a new timeline or size)."""

    key: tuple
    packets: list = field(default_factory=list)     # (events, geometry) kept until confirmed
    t_end: int = 0


class PerceptionPipeline:
    """EventPackets in, one ``BinResult`` per closed time bin out: decoder, geometry check and
    rescaling, windowing into the model's frames and the streaming HybridNet, with their
    counters (bad data, geometry errors, time jumps). One object per stream: it keeps the
    decoder's, the windowing's and every neuron's state between packets, so the inference
    node, ``snn4 demo`` and both replays compute exactly the same decisions."""

    def __init__(self, net: HybridNet, device: str = "cpu", rescale: bool = True,
                 strict: bool = False, backbone=None, limits: PipelineLimits | None = None,
                 window: int | None = None, clock=time.perf_counter):
        """``backbone(frame [1, C, H, W], stamp_ns) -> (last-stage spikes, layer counts)``
        replaces the local spiking backbone (the Lava bridge for ``backend:=lava``).
        ``window``: bins the bridge and heads read (default: the model's window)."""
        self.net = net.to(device).eval()
        self.remote_backbone = backbone
        self.device = device
        self.rescale = rescale
        self.runner = StreamingRunner(self.net, window)
        self.cfg = net.cfg.frame_config()
        self.model_geometry = (net.cfg.sensor_width, net.cfg.sensor_height)
        self.max_gap_ns = net.cfg.window * net.cfg.bin_us * 1000
        self.decoder = PacketDecoder(strict=strict)
        self.frames = FrameStream(self.cfg, *self.model_geometry)
        self.limits = limits or PipelineLimits()
        self.max_span_ns = int(self.limits.max_packet_span_s * 1e9)
        self.stream_geometry: tuple[int, int] | None = None
        self.geometry_errors = 0
        self.geometry_changes = 0
        self.time_jumps = 0
        self.late_events = 0            # events for bins already closed (dropped, counted)
        self.rejected: Counter = Counter()   # packets (bins for bins_capped) by cause
        self._candidate: _Candidate | None = None
        self.bins = 0
        self.timing = (0.0, 0.0)        # seconds of the last packet: (decode, windowing)
        self.shed = ShedStats()         # what latency-bounded processing shed (process_batch)
        self.governor = LoadGovernor()  # thins fresh packets while batches fall behind
        self.clock = clock              # times a batch's decoding for the governor (tests: fake)
        self.last_geometry_error = ""    # of a packet skipped in a batch (process_batch)
        self.prewarms = 0               # rehearsed steps (``prewarm``) and their seconds
        self.prewarm_s = 0.0
        self.duty = DutyCycle()         # the worker's busy share (it reports its batches)
        self.prewarms_skipped_busy = 0  # due, but skipped: the worker was too busy
        self._prewarm_seen: int | None = None   # stream time at the last prewarm() call
        self._prewarm_lead_ns = 0               # how far the stream moved between calls
        self._prewarmed_bin: int | None = None  # the bin end already prewarmed for
        self._prewarm_last_s = 0.005            # the last rehearsal's time
        self._zero_frame: torch.Tensor | None = None

    def warm_up(self) -> None:
        """First calls load the compiled decoders and allocate model buffers (~0.5 s): do
        them before packets arrive instead of stalling the first second of a stream."""
        ev = make_events([0, 1000], [1, 2], [1, 2], [0, 1])
        for enc in ("evt3", "libcaer_cmp"):
            PacketDecoder(strict=False).decode(PacketEncoder(enc, 8, 8).encode(ev))
        c = self.net.cfg
        if self.remote_backbone is None:      # the remote backbone keeps its own state
            self.runner.step(torch.zeros(1, c.in_channels, c.input_height, c.input_width,
                                         device=self.device))
            self.runner.reset()

    def prewarm(self, idle=None) -> bool:
        """Rehearse one step (``StreamingRunner.rehearse``: nothing changes) when the next
        packet will probably close the open bin, once per bin; True when it did.

        Call it when idle, after the packets in hand are done (the inference node does, with
        nothing queued). Why: on a slow or shared CPU the bin step runs from cold caches after
        the ~40 ms since the last one, 2-3x slower than back to back; rehearsing a packet
        before the bin closes halves the decision's latency at the cost of one more step per
        bin (``bench/ingest.py`` measures both). "Next packet" is judged from how far the
        stream moved between calls; the remote (Lava) backbone is not rehearsed. Skipped
        while the worker's busy share (``duty``, reported by the caller) is at or above its
        ``max_fraction``: there the extra step costs more than it saves."""
        latest, end = self.frames.latest_ns, self.frames.next_bin_end_ns
        if latest is None or end is None or self.remote_backbone is not None:
            return False
        if self._prewarm_seen is not None and 0 < latest - self._prewarm_seen <= \
                self.frames.bin_ns:
            self._prewarm_lead_ns = latest - self._prewarm_seen
        self._prewarm_seen = latest
        # done before the closing packet arrives: lead it by the rehearsal's own last time
        # (on a live stream, sensor time runs at wall-clock speed)
        lead = self._prewarm_lead_ns
        ahead = lead + lead // 2 + int(self._prewarm_last_s * 1.25e9)
        if not lead or end == self._prewarmed_bin or end - latest > ahead:
            return False
        if not self.duty.has_headroom(self.clock()):
            self._prewarmed_bin = end               # counted once per bin
            self.prewarms_skipped_busy += 1
            return False
        if idle is not None and not idle():     # asked only when due: it may cost a syscall
            return False
        self._prewarmed_bin = end
        if self._zero_frame is None:
            c = self.net.cfg
            self._zero_frame = torch.zeros(1, c.in_channels, c.input_height, c.input_width,
                                           device=self.device)
        t0 = time.perf_counter()
        self.runner.rehearse(self._zero_frame)
        self._prewarm_last_s = time.perf_counter() - t0
        self.prewarms += 1
        self.prewarm_s += self._prewarm_last_s
        return True

    def _restart(self) -> None:
        self.frames = FrameStream(self.cfg, *self.model_geometry)
        self.runner.reset()

    def _confirm(self, key: tuple, ev: np.ndarray, geom: tuple[int, int]) -> list | None:
        """Count a packet towards a change of timeline or size; the agreeing packets once
        ``confirm_packets`` of them in a row agree, else None (the packet is held)."""
        c = self._candidate
        t0 = int(ev["t"][0])
        same = (c is not None and c.key[0] == key[0] and c.key[1] == key[1]
                and (key[0] != "time" or 0 <= t0 - c.t_end <= self.max_gap_ns))
        if not same:
            c = self._candidate = _Candidate(key)
        c.packets.append((ev, geom))
        c.t_end = int(ev["t"][-1])
        if len(c.packets) < self.limits.confirm_packets:
            return None
        self._candidate = None
        return c.packets

    def _reject(self, cause: str, snap: tuple) -> list:
        self.rejected[cause] += 1
        self.decoder.restore(snap)      # a rejected packet leaves no trace on the stream
        return []

    def process(self, pkt: Packet) -> list[BinResult]:
        """Outputs for every time bin this packet closes (often none, sometimes several)."""
        t_dec = time.perf_counter()
        batch = self._admit(pkt)
        t_win = time.perf_counter()
        out: list[BinResult] = []
        self.shed.packets += 1
        for ev in batch:
            self.shed.events += len(ev)
            out.extend(self._bins(ev, pkt))
        self.shed.decided_bins += len(out)
        self.timing = (t_win - t_dec, time.perf_counter() - t_win
                       - sum(r.snn_s + r.head_s for r in out))
        return out

    def _admit(self, pkt: Packet) -> list[np.ndarray]:
        """The packet's events, checked and rescaled onto the model's sensor: usually one
        array, none for a rejected (counted) or empty packet, several when the packet
        confirms a new timeline or size (the held packets are used, not lost).

        Order matters: decode (the decoder validates encoding, size and payload), then the
        geometry (learnt only from a packet with events), then the packet's whole time span
        and its distance from the stream's time -- all before any bin is made.
        """
        snap = self.decoder.snapshot()
        st = self.decoder.stats
        bad_words, out_of_range = st.bad_words, st.out_of_range
        ea = self.decoder.decode(pkt, where=f"seq={pkt.seq}")
        if st.bad_words > bad_words:
            # a sensor never sends invalid codes: random bytes, and their TIME_HIGH words
            # would shift every later time of a stateful (evt3) stream
            return self._reject(REJECT_CORRUPT, snap)
        if not len(ea):
            if st.out_of_range > out_of_range:
                self.decoder.restore(snap)     # nothing usable: no trace on the stream
            return []
        geom = (int(pkt.width), int(pkt.height))
        ev = ea.events
        span = int(ev["t"][-1]) - int(ev["t"][0])
        if span > self.max_span_ns:
            return self._reject(REJECT_SPAN, snap)
        if self.stream_geometry is None:
            if geom != self.model_geometry and not self.rescale:
                self.geometry_errors += 1
                self.rejected[REJECT_GEOMETRY] += 1
                raise GeometryError(f"packets are {geom[0]}x{geom[1]}, the model expects "
                                    f"{self.model_geometry[0]}x{self.model_geometry[1]} and "
                                    "rescaling is off")
            self.stream_geometry = geom
        batch = [(ev, geom)]
        if geom != self.stream_geometry:
            agreed = self._confirm(("geometry", geom), ev, geom)
            if agreed is None:
                self.geometry_errors += 1
                self._reject(REJECT_GEOMETRY, snap)
                raise GeometryError(f"packet seq={pkt.seq} is {geom[0]}x{geom[1]}, the stream "
                                    f"is {self.stream_geometry[0]}x"
                                    f"{self.stream_geometry[1]}")
            self.geometry_changes += 1          # a camera restart with another sensor
            self.stream_geometry = geom
            self._restart()
            batch = agreed
        else:
            latest = self.frames.latest_ns
            t0 = int(ev["t"][0])
            if latest is not None and (t0 - latest > self.max_gap_ns
                                       or t0 < self.frames.t0_ns - self.max_gap_ns):
                # time leapt ahead or went back by more than a window: a camera restart, a
                # bag loop -- or one lying packet. Believed once confirmed, then a restart
                # instead of stepping through hundreds of empty bins
                agreed = self._confirm(("time", geom), ev, geom)
                if agreed is None:
                    return self._reject(REJECT_JUMP, snap)
                self.time_jumps += 1
                self._restart()
                batch = agreed
            elif self._candidate is not None:
                self._candidate = None          # the stream went on: the candidate was noise
        return [rescale_events(ev_i, geom_i, self.model_geometry) for ev_i, geom_i in batch]

    def _bins(self, ev: np.ndarray, pkt: Packet) -> list[BinResult]:
        return [self._step(f, pkt.stamp_ns) for f in self._frames(ev)]

    def _frames(self, ev: np.ndarray) -> list[np.ndarray]:
        """The frames of the bins these (rescaled, checked) events close, at most
        ``max_bins_per_packet`` of them (the rest dropped, counted as bins_capped)."""
        t0 = self.frames.t0_ns
        if t0 is not None and len(ev) and int(ev["t"][0]) < t0:
            # a small step back (a lost packet of a stateful evt3 stream leaves its events
            # on the previous TIME_HIGH; jitter): drop what falls into bins already stepped,
            # counted. A restart here would reset the network and re-make decided bins --
            # once the cause of more decisions than bins sent.
            late = int(np.searchsorted(ev["t"], t0))
            self.late_events += late
            self.shed.regressed_events += late
            ev = ev[late:]
        self.frames.add(ev)
        out = [f for f, _ in self.frames.bins(max_bins=self.limits.max_bins_per_packet)]
        dropped = self.frames.skip_to(self.frames.latest_ns)
        if dropped:
            self.rejected[REJECT_BINS] += dropped
        return out

    def _step(self, f: np.ndarray, stamp_ns: int = 0) -> BinResult:
        x = torch.from_numpy(f[None]).to(self.device)
        self.bins += 1
        if self.remote_backbone is None:
            o = self.runner.step(x)
            return BinResult(f, o, *self.runner.timing)
        t0 = time.perf_counter()
        spikes, counts = self.remote_backbone(x, stamp_ns)
        t1 = time.perf_counter()
        o = self.runner.heads_step(spikes.to(self.device), counts)
        return BinResult(f, o, t1 - t0, time.perf_counter() - t1)

    def process_batch(self, late: list[Packet], fresh: list[Packet],
                      max_events_per_bin: int = 0) -> list[tuple[int, BinResult]]:
        """Latency-bounded processing of a backlog (see ``runtime.backlog``).

        Every packet passes the same checks as in ``process`` (a rejected one is counted by
        cause and leaves no trace). ``late`` packets are decoded (stateful codecs stay in
        step) but shed: the bins they would have filled are skipped without a backbone
        step, the network's state carried, and the stream's time moves on with them (so
        fresh data after a long stall is not mistaken for a time jump). Of the bins the
        ``fresh`` packets close, every one steps the backbone but only the newest gets the
        bridge, heads and a decision (the others are coalesced into it). Returns
        ``[(index in fresh of the packet that closed it, result)]`` -- one entry at most.
        Everything shed is counted in ``self.shed``; a packet of the wrong geometry is
        counted and skipped (``last_geometry_error``), the others go on.
        """
        st = self.shed
        t_start = time.perf_counter()
        c_start = self.clock()
        for pkt in late:
            st.packets += 1
            st.late_packets += 1
            got = self._skim(pkt)
            if got is not None:                  # evt3 in step with the stream: no events made
                n, t_first, t_last = got
                st.events += n
                st.late_events += n
                if n:
                    st.skipped_bins += self.frames.shed_span(t_first, t_last)
                continue
            for ev in self._admit_or_none(pkt):
                st.events += len(ev)
                st.late_events += len(ev)
                st.skipped_bins += self.frames.shed(ev)
        closed: list[tuple[int, np.ndarray]] = []
        gov = self.governor
        n_before, t_before = st.events, self.frames.latest_ns
        for i, pkt in enumerate(fresh):
            st.packets += 1
            if i < len(fresh) - 1 and not gov.decode_next():
                got = self._skim(pkt)            # thinned: the stream's state kept exact
                if got is not None:
                    st.events += got[0]
                    st.thinned_events += got[0]
                    st.thinned_packets += 1
                    continue
            for ev in self._admit_or_none(pkt):
                st.events += len(ev)
                if max_events_per_bin and len(ev) > 1:
                    ev = self._cap(ev, max_events_per_bin)
                closed += [(i, f) for f in self._frames(ev)]
        t_frames = time.perf_counter()
        decode_s = self.clock() - c_start        # decoding and windowing: what thinning saves
        out = []
        for k, (i, f) in enumerate(closed):
            if k < len(closed) - 1 and self.remote_backbone is None:
                x = torch.from_numpy(f[None]).to(self.device)
                self.runner.push_step(x)         # backbone + window buffer, no heads
                self.bins += 1
                st.coalesced_bins += 1
            else:
                out.append((i, self._step(f, fresh[i].stamp_ns)))
                st.decided_bins += 1
        self.timing = (0.0, t_frames - t_start)  # decode and windowing of the whole batch
        if t_before is not None and self.frames.latest_ns is not None:
            # behind: data had to be shed, or decoding and windowing alone (what thinning
            # saves; the model's step costs the same at any event count) took half a bin
            gov.observe(st.events - n_before, len(fresh), self.frames.latest_ns - t_before,
                        self.frames.bin_ns,
                        behind=(bool(late) or decode_s * 1e9 > 0.5 * self.frames.bin_ns)
                        and bool(fresh) and fresh[-1].encoding == "evt3")   # only evt3 skims
        return out

    def _skim(self, pkt: Packet) -> tuple[int, int, int] | None:
        """A late packet's (events, first t, last t) at a fraction of decoding's cost, when it
        is plainly the stream going on: evt3, the stream's own size and the model's (so no
        event would be cropped away and the shed count is exact), inside the checks
        ``_admit`` makes (time span, no jump, no change waiting for confirmation). Anything
        else is None and goes the ordinary way, with all its checks and counters."""
        latest = self.frames.latest_ns
        geom = (int(pkt.width), int(pkt.height))
        if latest is None or self._candidate is not None or geom != self.stream_geometry \
                or geom != self.model_geometry:
            return None

        def plain(t0: int, t1: int) -> bool:
            return t0 < 0 or (t1 - t0 <= self.max_span_ns and t0 - latest <= self.max_gap_ns
                              and t0 >= self.frames.t0_ns - self.max_gap_ns)

        return self.decoder.skim(pkt, plain)

    def _admit_or_none(self, pkt: Packet) -> list[np.ndarray]:
        """``_admit`` for a batch: a packet of the wrong geometry is counted and skipped."""
        try:
            return self._admit(pkt)
        except GeometryError as exc:
            self.last_geometry_error = str(exc)
            return []

    def _cap(self, ev: np.ndarray, max_events_per_bin: int) -> np.ndarray:
        """Uniform subsampling to at most ``max_events_per_bin`` per bin's worth of time."""
        span = max(int(ev["t"][-1]) - int(ev["t"][0]), 1)
        bin_ns = self.cfg.bin_us * 1000
        allowed = max(1, -(-max_events_per_bin * min(span, bin_ns) // bin_ns))
        if len(ev) <= allowed:
            return ev
        keep = np.arange(allowed, dtype=np.int64) * len(ev) // allowed   # evenly spread
        self.shed.capped_events += len(ev) - allowed
        # np.take, not ev[keep]: fancy indexing of the packed (13-byte) event records took
        # 300 us for 10,000 events here, take 16 us
        return np.take(ev, keep)

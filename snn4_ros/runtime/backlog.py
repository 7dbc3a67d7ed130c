"""Latency-bounded processing: the inference backlog is bounded in time, not in packets.

A queue of N packets bounds memory but not latency: once compute falls behind, latency
becomes the queue's length (256 packets of 2 ms were 512 ms of stale decisions on a slow
CPU). Here the worker takes everything that has arrived at once, and data that is older
than the newest data by more than ``deadline_s`` (default: one 40 ms bin) is *late*: it is
still decoded (the evt3 and libcaer_cmp codecs are stateful word streams, so dropping raw
packets would corrupt the times of everything after them) but not windowed; the bins it
would have filled are skipped without a backbone step, the network's state is carried.
Of the fresh data, every closed bin steps the spiking backbone (state stays exact) but only
the newest bin of a batch gets the bridge and heads and a decision: older ones are
*coalesced* into it. So after a stall the node answers with the newest data at once, never
with half a second of backlog. ``max_events_per_bin`` (default ``DEFAULT_EVENT_CAP``, 5 M
events/s) caps the events per bin with counted, uniform subsampling before any frame is
made (a burst of 20 M events/s costs what 5 M cost).

Every shed event and bin is counted by cause in ``ShedStats`` (shown in /diagnostics, WARN
with the shed fraction). The clock is injected, so tests drive the logic with a fake clock.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable


# events per 40 ms bin before counted subsampling: 5 M events/s. The shared real recordings
# peak far below it -- the DVS128 wave clips at 395 events in a 40 ms bin, the AEDAT2
# walking scenes at 2,693 -- so no DVS128 recording is touched; the Prophesee EVT3 sample
# (a 1280x720 sensor) holds 219,596 events in 8.8 ms, a 25 M events/s burst the cap does
# subsample (counted). A flood beyond it costs what 5 M events/s cost instead of growing
# with the rate (at 20 M events/s the unbounded frames of 800,000 events per bin cost more
# CPU than a bin lasts on a slow 2-core machine).
DEFAULT_EVENT_CAP = 200_000


@dataclass
class LatencyBudget:
    """How stale data may get before it is shed, and how many events a bin may hold."""

    deadline_s: float = 0.04          # data older than the newest by more than this is late
    max_events_per_bin: int = 0       # 0: no cap; else counted uniform subsampling
    max_packets: int = 100_000        # memory guard only: beyond it the oldest is dropped
    max_bytes: int | None = None      # memory guard in bytes (with the backlog's size_of)

    def __post_init__(self):
        if not self.deadline_s > 0:
            raise ValueError(f"deadline_s must be positive, got {self.deadline_s}")
        if self.max_events_per_bin < 0:
            raise ValueError("max_events_per_bin must be >= 0 (0: no cap)")
        if self.max_packets < 1:
            raise ValueError("max_packets must be >= 1")
        if self.max_bytes is not None and self.max_bytes < 1:
            raise ValueError("max_bytes must be >= 1 (None: no byte bound)")


@dataclass
class ShedStats:
    """What was shed, by cause. Events: ``late_events`` (older than the deadline),
    ``capped_events`` (subsampled away by the per-bin cap), ``thinned_events`` (in whole
    packets skimmed instead of decoded while overloaded, ``LoadGovernor``),
    ``regressed_events`` (before the
    open bin after a small step back in time); packets: ``queue_full_packets``
    (the memory guard); bins: ``skipped_bins`` (no backbone step: their data was late),
    ``coalesced_bins`` (backbone stepped, no decision of their own)."""

    packets: int = 0
    events: int = 0
    late_packets: int = 0
    late_events: int = 0
    capped_events: int = 0
    thinned_events: int = 0           # in packets skimmed, not decoded, under overload
    thinned_packets: int = 0
    regressed_events: int = 0         # a small step back in time (lost evt3 packet): dropped
    queue_full_packets: int = 0
    skipped_bins: int = 0
    coalesced_bins: int = 0
    decided_bins: int = 0

    def shed_events(self) -> int:
        return self.late_events + self.capped_events + self.thinned_events \
            + self.regressed_events

    def shed_fraction(self) -> float:
        """Events shed of events received (queue-full packets count as whole packets)."""
        total = self.events + self.queue_full_packets
        return (self.shed_events() + self.queue_full_packets) / total if total else 0.0

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["shed_fraction"] = round(self.shed_fraction(), 6)
        return d


@dataclass
class DutyCycle:
    """How busy a worker has been: the share of recent wall time it spent working, an
    exponential average of the busy indicator over about ``tau_s``.

    Why: ``prewarm`` rehearses a model step while the worker is idle, which halves a
    decision's latency on a slow CPU that has time to spare -- but costs one more step per
    bin, and on a CPU so starved or loaded that the worker is busy most of the time that
    step delays the next real one (5 M events/s on half a core: p99 53-59 ms with prewarm
    against 40-48 without, bench/ingest.py --mode starved). Wall time, not CPU time, is what
    counts: a starved worker waits for the CPU while it works. Times come from the caller's
    clock, so tests drive it with a fake one."""

    tau_s: float = 0.5
    max_fraction: float = 0.5        # prewarm only below this; 1.0: always
    _value: float = 0.0
    _t: float | None = None

    def add(self, start_s: float, end_s: float) -> None:
        """The worker was busy from ``start_s`` to ``end_s`` (and idle since the last call)."""
        if self._t is None:
            self._t = start_s
        if start_s > self._t:                  # idle since the last call
            self._value *= math.exp(-(start_s - self._t) / self.tau_s)
            self._t = start_s
        if end_s > self._t:                    # busy (an overlap is counted once)
            self._value = 1.0 - (1.0 - self._value) * math.exp(-(end_s - self._t) / self.tau_s)
            self._t = end_s

    def fraction(self, now_s: float) -> float:
        """The busy share as of ``now_s`` (idle since the last ``add``)."""
        if self._t is None:
            return 0.0
        return self._value * math.exp(-max(0.0, now_s - self._t) / self.tau_s)

    def has_headroom(self, now_s: float) -> bool:
        return self.max_fraction >= 1.0 or self.fraction(now_s) < self.max_fraction


@dataclass
class LoadGovernor:
    """Graceful degradation under sustained overload: a per-bin event budget that halves
    after every batch that fell behind and grows back by a tenth after every batch on
    time, never below ``floor`` events per bin (a packet is the unit, so a bin holds about
    that many).

    Why: shedding late data bounds how *old* the data is, not how long a batch takes. On a
    CPU-starved node every batch still decodes and bins a whole bin of fresh data, so at
    5 M events/s on half a core a batch took ~50 ms and decisions came 75-180 ms late. With
    a budget, the fresh packets beyond it are *thinned*: skimmed (the stream's state kept
    exact, their events counted as ``thinned_events``) instead of decoded and binned, evenly
    spread, at least one packet per bin's worth, the newest packet always decoded (it closes
    the bin). The floor (500 k events/s at 40 ms bins, far above the real recordings in
    ../shared/data) keeps it off every evaluated input; it acts only while batches fall
    behind. Thinning needs evt3 (the encoding that can be skimmed): other streams are
    decoded whole whatever the budget."""

    floor: int = 20_000               # 0: never thin
    budget: int = 0                   # events per bin while thinning; 0: off
    rate: float = 0.0                 # events per bin, smoothed over batches
    packets_per_bin: float = 0.0      # packets per bin, smoothed likewise
    _acc: float = 0.0

    def observe(self, events: int, packets: int, span_ns: int, bin_ns: int,
                behind: bool) -> None:
        """After a batch: its fresh events and packets over the stream time they spanned,
        and whether it fell behind (shed late data, or took long to decode)."""
        if span_ns > 0 and events:
            r, p = events * bin_ns / span_ns, packets * bin_ns / span_ns
            self.rate = r if not self.rate else 0.5 * self.rate + 0.5 * r
            self.packets_per_bin = p if not self.packets_per_bin else \
                0.5 * self.packets_per_bin + 0.5 * p
        if behind and self.floor and self.rate > self.floor:
            self.budget = max(self.floor, int((self.budget or self.rate) // 2))
        elif not behind and self.budget:
            self.budget = max(self.budget + 1, int(self.budget * 1.1))
            if self.budget >= self.rate:
                self.budget = 0

    def decode_next(self) -> bool:
        """Whether the next fresh packet (not the newest) is decoded: evenly spread
        ``budget / rate`` of them while thinning -- and at least one packet per bin's worth,
        so that no bin is left empty when a single packet holds more than the budget --
        all otherwise."""
        if not self.budget or not self.rate:
            return True
        share = self.budget / self.rate
        if self.packets_per_bin >= 1:
            share = max(share, 1.0 / self.packets_per_bin)
        self._acc += min(1.0, share)
        if self._acc >= 1.0:
            self._acc -= 1.0
            return True
        return False


@dataclass
class Arrival:
    item: Any
    born: float               # when the data was made, on the backlog's clock
    size: int = 0             # bytes, for the memory guard


@dataclass
class Backlog:
    """Thread-safe arrivals; ``take`` hands the worker everything queued, split by age.
    Memory is bounded in packets and, with ``size_of(item)``, in bytes (a few huge packets
    must not hold what many small ones would): beyond either the oldest is dropped,
    counted as ``queue_full_packets``."""

    budget: LatencyBudget = field(default_factory=LatencyBudget)
    clock: Callable[[], float] = time.monotonic
    stats: ShedStats = field(default_factory=ShedStats)
    size_of: Callable[[Any], int] | None = None

    def __post_init__(self):
        self._q: deque[Arrival] = deque()
        self._cv = threading.Condition()
        self._closed = False
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._q)

    def put(self, item: Any, born: float | None = None) -> None:
        """Queue ``item``; ``born`` is when its data was made (e.g. the header stamp mapped
        onto this clock), the arrival time when unknown."""
        now = self.clock()
        size = self.size_of(item) if self.size_of is not None else 0
        cap = self.budget.max_bytes
        with self._cv:
            self._q.append(Arrival(item, now if born is None else min(born, now), size))
            self.bytes += size
            while len(self._q) > self.budget.max_packets or (
                    cap is not None and self.bytes > cap and len(self._q) > 1):
                self.bytes -= self._q.popleft().size
                self.stats.queue_full_packets += 1
            self._cv.notify()

    def close(self, clear: bool = False) -> None:
        """Wake the worker for good; ``clear`` drops what is still queued (shutdown)."""
        with self._cv:
            self._closed = True
            if clear:
                self._q.clear()
                self.bytes = 0
            self._cv.notify_all()

    def take(self, timeout: float | None = None) -> tuple[list, list]:
        """``(late, fresh)`` items, oldest first, of everything queued now; waits up to
        ``timeout`` for the first (empty lists on timeout or after ``close``).

        Late: born more than ``deadline_s`` before the newest item. The newest deadline's
        worth of data is always kept, so decisions keep flowing however far behind the
        worker (or the transport before it) has fallen.
        """
        with self._cv:
            if not self._q and not self._closed:
                self._cv.wait(timeout)
            items = list(self._q)
            self._q.clear()
            self.bytes = 0
        if not items:
            return [], []
        newest = max(a.born for a in items)
        cut = newest - self.budget.deadline_s
        late = [a.item for a in items if a.born < cut]
        fresh = [a.item for a in items if a.born >= cut]
        return late, fresh


def born_on_clock(stamp_s: float | None, now_stamp_s: float, now_clock: float,
                  max_skew_s: float = 10.0) -> float | None:
    """Map a data stamp (a header stamp, on the node's ROS clock) onto the backlog's clock.
    A stamp more than ``max_skew_s`` away from now (an unsynchronised camera clock, a zero
    stamp) is not trusted: None, i.e. the arrival time."""
    if stamp_s is None or stamp_s <= 0:
        return None
    age = now_stamp_s - stamp_s
    if abs(age) > max_skew_s:
        return None
    return now_clock - max(age, 0.0)

"""Stream types shared by every source and both replays: a chunk of events, the pacing to the
wall clock, and slicing a time-sorted array into fixed-length chunks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np


@dataclass
class Chunk:
    """A slice of a stream: events (time-sorted) and, for labelled sources, the label."""

    events: np.ndarray
    width: int
    height: int
    label: dict | None = None


class Pacer:
    """Keeps data time (ns stamps) in step with the wall clock, ``rate`` x real time (None:
    as fast as possible). ``pace(t_ns)`` sleeps as needed and returns the data seconds since
    the first stamp. One pacing for live sources and both replays."""

    def __init__(self, rate: float | None = 1.0):
        self.rate = rate
        self.t_wall0 = time.monotonic()
        self.t_data0: int | None = None
        self.elapsed_s = 0.0            # data seconds paced so far
        self.behind_s = 0.0             # how far the data is behind the wall clock now

    def pace(self, t_ns: int) -> float:
        if self.t_data0 is None:
            self.t_data0, self.t_wall0 = t_ns, time.monotonic()
        elapsed = (t_ns - self.t_data0) / 1e9
        self.elapsed_s = elapsed
        if self.rate:
            lag = elapsed / self.rate - (time.monotonic() - self.t_wall0)
            self.behind_s = max(-lag, 0.0)
            if lag > 0:
                time.sleep(lag)
        return elapsed

    def real_time_factor(self) -> float | None:
        """Data seconds per wall second so far (1.0 when the source keeps up)."""
        wall = time.monotonic() - self.t_wall0
        if self.t_data0 is None or wall <= 0:
            return None
        return self.elapsed_s / wall


def time_chunks(events: np.ndarray, chunk_us: int) -> Iterator[np.ndarray]:
    """Consecutive non-empty slices of ``chunk_us`` of time-sorted events."""
    t = events["t"]
    if not len(t):
        return
    step = chunk_us * 1000
    edges = np.append(np.searchsorted(t, np.arange(t[0], t[-1] + step, step), side="left"),
                      len(t))
    for a, b in zip(edges[:-1], edges[1:]):
        if b > a:
            yield events[a:b]

"""How long the garbage collector stopped this process: the worst pause since last asked.

A full (generation 2) collection walks every object the interpreter tracks; with torch, rclpy
and a model loaded that is ~260,000 objects and took 100-130 ms on a slow 2-core CPU --
three 40 ms bins during which no thread of the process runs Python, so a latency-bounded
node sheds the data that piled up meanwhile. ``gc.freeze()`` after start-up moves those
objects out of the collector's reach (the inference node does it); this monitor shows in
/diagnostics whether pauses still happen.
"""

from __future__ import annotations

import gc
import threading
import time


class GcPauses:
    """Installs a ``gc.callbacks`` hook; ``take()`` returns ``(collections, worst pause s,
    full collections)`` since the previous ``take()``. ``close()`` removes the hook."""

    def __init__(self, clock=time.perf_counter):
        self._clock = clock
        self._lock = threading.Lock()
        self._t0: float | None = None
        self._n = self._full = 0
        self._worst = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = self._clock()
            return
        if self._t0 is None:
            return
        dt, self._t0 = self._clock() - self._t0, None
        with self._lock:
            self._n += 1
            self._full += info.get("generation") == 2
            self._worst = max(self._worst, dt)

    def take(self) -> tuple[int, float, int]:
        with self._lock:
            out = (self._n, self._worst, self._full)
            self._n = self._full = 0
            self._worst = 0.0
        return out

    def close(self) -> None:
        try:
            gc.callbacks.remove(self._on_gc)
        except ValueError:
            pass

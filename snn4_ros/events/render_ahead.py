"""The synthetic DVS, rendered ahead of real time in its own process, played in a loop.

The simulator renders a 2 s clip in about 2 s on one slow core, so rendering in the graph's
own interpreter can never keep a live run at 1.0x real time. ``RenderAhead`` runs whatever
renderer ``GestureSimulator`` has in a child process that renders continuously and hands
finished chunks over a queue; the player plays what has been rendered and, when it catches up
with the renderer, loops over the material it already has (times shifted, labels kept)
while fresh material keeps arriving. So the played stream never waits for the renderer:
real time holds by design, whatever the renderer's speed; it only repeats itself more on a
slow machine (``loops`` counts it).

Only live (paced) runs use this; recordings and ``snn4 record-synthetic`` render every step
themselves (deterministic, never repeated).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from typing import Iterator

import numpy as np

from .stream import Chunk


def _put(q, item, stop, parent: int) -> bool:
    """Put ``item`` into ``q``, waiting while it is full; False once the player stopped or
    died. A player killed with SIGKILL never sets ``stop``: its renderer, blocked on a full
    queue, would otherwise stay alive rendering for no one (an orphan per killed process)."""
    while True:
        try:
            q.put(item, timeout=0.5)
            return True
        except queue.Full:
            if stop.is_set() or os.getppid() != parent:
                return False
        except (EOFError, OSError, ValueError):
            return False


def _render(seed: int, dt_us: int, q, stop, parent: int) -> None:
    """Child process: render the endless labelled stream into ``q`` (blocks when full) until
    the player stops it or its parent process ``parent`` is gone."""
    from .synthetic import GestureSimulator, SceneConfig

    sim = GestureSimulator(seed=seed, scene=SceneConfig(dt_us=dt_us))
    w, h = sim.sensor.width, sim.sensor.height
    batch, labels = [], []
    try:
        for ev, label in sim.stream():
            if stop.is_set() or os.getppid() != parent:
                return
            batch.append(ev)
            labels.append(label)
            if len(batch) >= 50:                 # ~100 ms per message: few, large transfers
                if not _put(q, (w, h, batch, labels), stop, parent):
                    return
                batch, labels = [], []
    finally:
        # what is still buffered is for no one: without this the exit waits for the queue's
        # feeder thread, blocked writing into a full pipe whose only reader is this process
        # (an orphan per player killed while the queue was full)
        q.cancel_join_thread()


class RenderAhead:
    """Chunks of the synthetic stream, rendered in a child process, looped when needed."""

    def __init__(self, seed: int = 0, dt_us: int = 2000, ahead_chunks: int = 200,
                 start_s: float = 1.0, max_buffer_s: float = 120.0):
        self.seed, self.dt_us = seed, dt_us
        self.start_steps = int(start_s * 1e6 / dt_us)
        self.max_steps = int(max_buffer_s * 1e6 / dt_us)
        ctx = mp.get_context("spawn")       # never fork a process that runs rclpy threads
        self._q = ctx.Queue(maxsize=ahead_chunks)
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_render, args=(seed, dt_us, self._q, self._stop,
                                                       os.getpid()),
                                 daemon=True, name="snn4-synthetic-render")
        self._proc.start()
        self.loops = 0                      # how often playback wrapped around
        self.rendered_steps = 0
        self.played_steps = 0
        self._trimmed = 0

    def close(self) -> None:
        self._stop.set()
        try:
            while True:
                self._q.get_nowait()
        except (queue.Empty, OSError, ValueError):
            pass
        self._proc.join(timeout=2.0)
        if self._proc.is_alive():           # a loaded machine: it is gone when close returns
            self._proc.terminate()
            self._proc.join(timeout=2.0)

    def _fetch(self, steps: list, labels: list, block: bool) -> tuple[int, int] | None:
        try:
            w, h, evs, labs = self._q.get(block=block, timeout=30.0 if block else None)
        except queue.Empty:
            if block:
                raise RuntimeError("the synthetic renderer produced nothing for 30 s")
            return None
        steps += evs
        labels += labs
        self.rendered_steps += len(evs)
        if len(steps) > self.max_steps:      # keep the newest material, bounded memory
            cut = len(steps) - self.max_steps
            del steps[:cut]
            del labels[:cut]
            self._trimmed += cut
        return w, h

    def chunks(self) -> Iterator[Chunk]:
        """The endless stream: fresh material when rendered, else a loop over the buffer."""
        steps: list[np.ndarray] = []
        labels: list[dict] = []
        geom = None
        while len(steps) < self.start_steps:
            geom = self._fetch(steps, labels, block=True) or geom
        w, h = geom
        dt_ns = self.dt_us * 1000
        t_out = 0                            # the played stream's own clock
        i = 0                                # position in the buffer
        try:
            while True:
                while self._fetch(steps, labels, block=False):
                    pass
                i, self._trimmed = max(i - self._trimmed, 0), 0
                if i >= len(steps):          # caught up with the renderer: loop
                    i = 0
                    self.loops += 1
                ev, lab = steps[i], labels[i]
                shift = t_out - (int(lab["t_ns"]) - dt_ns)
                out = ev.copy()
                if len(out):
                    out["t"] += shift
                label = dict(lab, t_ns=int(lab["t_ns"]) + shift,
                             gesture_start_ns=int(lab["gesture_start_ns"]) + shift)
                t_out += dt_ns
                i += 1
                self.played_steps += 1
                yield Chunk(out, w, h, label)
        finally:
            self.close()

"""One bounded worker thread behind a DDS callback: the inference node's packet loop and the
Lava bridge's frame loop are this same class.

A subscription callback must return at once (it runs on the executor, which also serves the
timers and the other subscriptions), so it only ``put``s the message; one worker thread
handles the messages in order. The queue is bounded: when it is full the oldest message is
dropped and counted, so a burst can never grow memory or latency without limit. An
exception while handling a message is counted, kept in ``last_error`` and reported through
``on_error``; the worker keeps going.

Standard library only: the Lava bridge (Python 3.10, its own venv, no torch) loads this file
too (``hw/snn4_lava/bridge.py``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable


class BoundedWorker:
    def __init__(self, handle: Callable[[object], None], maxlen: int,
                 on_error: Callable[[str], None] | None = None, name: str = "worker",
                 max_bytes: int | None = None, size_of: Callable[[object], int] | None = None):
        """``max_bytes`` with ``size_of(item)`` also bounds the queue in bytes (a few huge
        messages must not hold what ``maxlen`` small ones would)."""
        if maxlen < 1:
            raise ValueError(f"queue bound {maxlen}: at least 1")
        self.handle, self.on_error = handle, on_error
        self.maxlen, self.max_bytes, self.size_of = maxlen, max_bytes, size_of
        self.queue: deque = deque()
        self.bytes = 0
        self.busy_since: float | None = None    # liveness: when the item in hand was taken
        self.cv = threading.Condition()
        self.stopping = False
        self.dropped = self.errors = 0
        self.processed = 0                    # items taken off the queue and handled
        self.last_error = ""
        self.thread = threading.Thread(target=self._run, daemon=True, name=name)
        self.thread.start()

    def put(self, item) -> bool:
        """Enqueue (never blocks); False when the oldest item had to be dropped for it."""
        size = self.size_of(item) if self.size_of is not None else 0
        dropped = False
        with self.cv:
            self.queue.append((item, size))
            self.bytes += size
            while len(self.queue) > self.maxlen or (
                    self.max_bytes is not None and self.bytes > self.max_bytes
                    and len(self.queue) > 1):
                self.bytes -= self.queue.popleft()[1]
                self.dropped += 1
                dropped = True
            self.cv.notify()
        return not dropped

    def __len__(self) -> int:
        return len(self.queue)

    def _run(self) -> None:
        while True:
            with self.cv:
                while not self.queue and not self.stopping:
                    self.cv.wait(0.1)
                if self.stopping:
                    return
                item, size = self.queue.popleft()
                self.bytes -= size
            self.busy_since = time.monotonic()
            try:
                self.handle(item)
            except Exception as exc:              # counted and reported; keep running
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if self.on_error is not None:
                    self.on_error(self.last_error)
            finally:
                self.busy_since = None
            self.processed += 1

    def stop(self, timeout_s: float = 2.0, clear: bool = False) -> None:
        """Stop after the item in hand (the rest of the queue is left, or dropped with
        ``clear``); waits for the thread."""
        with self.cv:
            self.stopping = True
            if clear:
                self.queue.clear()
                self.bytes = 0
            self.cv.notify_all()
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout=timeout_s)

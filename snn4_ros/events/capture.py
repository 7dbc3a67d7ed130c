"""Capturing demonstrations for ``snn4 teach``: from files (given or found time ranges) or live.

A demonstration is a recording and a time range in it. From files, the range is given
(``PATH@START-END`` in seconds from the recording's first event, or a session CSV with
``path,label,start_s,end_s`` -- the shared data's ``labels.csv`` layout), or found by event
activity: the stretches where the event rate stands well above the recording's quiet level,
longer than ``min_s``, are taken as the performances (a user records "wave, pause, wave,
pause, ..." in one file). Live, ``LiveCapture`` prompts on the terminal -- a countdown, a
progress bar while recording, and what was captured -- and retries a take that came out empty.
"""

from __future__ import annotations

import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, TextIO

import numpy as np

from .array import EVENT_DTYPE, EventArray
from .errors import EventDataError


@dataclass
class Take:
    """One captured demonstration: where it came from and which part of it to use."""

    label: str
    events: EventArray
    start_ns: int
    end_ns: int
    source: str
    start_s: float | None = None
    end_s: float | None = None

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    def describe(self) -> dict:
        ev = self.events.events
        inside = int(((ev["t"] >= self.start_ns) & (ev["t"] < self.end_ns)).sum())
        return {"source": self.source, "label": self.label, "start_s": self.start_s,
                "end_s": self.end_s, "duration_s": round(self.duration_s, 3),
                "events": inside, "sensor": [self.events.width, self.events.height]}


def parse_range(spec: str) -> tuple[str, float | None, float | None]:
    """``PATH`` or ``PATH@START-END`` (seconds from the recording's first event)."""
    path, at, rng = spec.rpartition("@") if "@" in spec else (spec, "", "")
    if not at:
        return spec, None, None
    a, dash, b = rng.partition("-")
    try:
        start, end = float(a), float(b)
    except ValueError:
        raise EventDataError(f"time range {rng!r}: want START-END in seconds, e.g. 1.5-4",
                             where=path) from None
    if not dash or end <= start:
        raise EventDataError(f"time range {rng!r} is empty (end must come after start)",
                             where=path)
    return path, start, end


def read_session_csv(path: str | Path) -> list[tuple[str, str, float | None, float | None]]:
    """Rows (recording, label, start_s, end_s) of a session CSV; paths relative to the CSV.
    A missing or empty ``start_s``/``end_s`` means: find the performances by activity."""
    path = Path(path)
    if not path.exists():
        raise EventDataError("no such session file", where=str(path))
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "path" not in rows[0] or "label" not in rows[0]:
        raise EventDataError("want a CSV with columns path,label[,start_s,end_s]",
                             where=str(path))
    out = []
    for i, r in enumerate(rows, start=2):
        def num(k):
            v = (r.get(k) or "").strip()
            try:
                return float(v) if v else None
            except ValueError:
                raise EventDataError(f"line {i}: {k} {v!r} is not a number",
                                     where=str(path)) from None
        out.append((str(path.parent / r["path"]), r["label"].strip(), num("start_s"),
                    num("end_s")))
    return out


def activity_segments(ea: EventArray, bin_us: int = 40_000, min_s: float = 0.8,
                      gap_s: float = 0.3, smooth_bins: int = 5) -> list[tuple[float, float]]:
    """(start_s, end_s) of the active stretches, relative to the first event.

    The quiet and busy levels are the 20th and 90th percentiles of the smoothed per-bin
    event counts; a bin is active above their geometric mean. When the busy level is not
    3x the quiet one, there is no pause to cut at. Gaps shorter than ``gap_s`` are
    bridged, stretches shorter than ``min_s`` dropped. A recording that is active all
    through gives one stretch: the whole recording."""
    ev = ea.events
    if not len(ev):
        return []
    t0 = int(ev["t"][0])
    nb = int((int(ev["t"][-1]) - t0) // (bin_us * 1000)) + 1
    counts = np.bincount(((ev["t"] - t0) // (bin_us * 1000)).astype(np.int64), minlength=nb)
    k = np.ones(smooth_bins) / smooth_bins
    sm = np.convolve(counts, k, mode="same")
    quiet, busy = float(np.percentile(sm, 20)), float(np.percentile(sm, 90))
    if busy < 3 * max(quiet, 5.0):          # no quiet part: all of it is one performance
        active = np.ones(nb, bool)
    else:                                   # between the two levels (geometric mean)
        active = sm > max(np.sqrt(max(quiet, 1.0) * busy), 5.0)
    segs, start = [], None
    for i, a in enumerate(np.append(active, False)):
        if a and start is None:
            start = i
        elif not a and start is not None:
            segs.append([start, i])
            start = None
    merged: list[list[int]] = []
    gap = gap_s * 1e6 / bin_us
    for s in segs:
        if merged and s[0] - merged[-1][1] <= gap:
            merged[-1][1] = s[1]
        else:
            merged.append(s)
    b = bin_us / 1e6
    return [(s * b, min(e * b, (int(ev["t"][-1]) - t0) / 1e9)) for s, e in merged
            if (e - s) * b >= min_s]


def takes_from_file(path: str, label: str, start_s: float | None, end_s: float | None,
                    topic: str | None = None, min_s: float = 0.8) -> list[Take]:
    """The demonstrations in one recording: the given range, or every active stretch."""
    from .sources import read_recording

    ea, _, _ = read_recording(path, topic=topic)
    if not len(ea.events):
        raise EventDataError("the recording holds no events", where=path)
    t0 = int(ea.events["t"][0])
    if start_s is None and end_s is None:
        ranges = activity_segments(ea, min_s=min_s)
        if not ranges:
            raise EventDataError(f"no stretch of activity longer than {min_s} s found; give "
                                 "the time range as PATH@START-END", where=path)
    else:
        dur = (int(ea.events["t"][-1]) - t0) / 1e9
        s = start_s or 0.0
        e = dur if end_s is None else end_s
        if s >= dur:
            raise EventDataError(f"range starts at {s} s but the recording lasts {dur:.2f} s",
                                 where=path)
        ranges = [(s, min(e, dur))]
    return [Take(label, ea, t0 + int(a * 1e9), t0 + int(b * 1e9), path, round(a, 3),
                 round(b, 3)) for a, b in ranges]


# ------------------------------------------------------------------ live
class LiveCapture:
    """Records takes from a live source of ``Chunk`` s (a camera) with terminal prompts.

    ``chunks`` yields event chunks as they arrive (``events.camera.iter_camera``); the capture
    keeps reading during the countdown, so each take starts fresh."""

    def __init__(self, chunks: Iterable, out: TextIO = sys.stdout,
                 clock: Callable[[], float] = time.monotonic, min_events: int = 200):
        self.it: Iterator = iter(chunks)
        self.out = out
        self.clock = clock
        self.min_events = min_events
        self.width = self.height = None

    def _read_for(self, seconds: float, on_tick: Callable[[float], None] | None = None
                  ) -> np.ndarray:
        parts, t_end = [], self.clock() + seconds
        while (now := self.clock()) < t_end:
            try:
                ch = next(self.it)
            except StopIteration:
                raise EventDataError("the live source ended during the capture") from None
            self.width, self.height = ch.width, ch.height
            if len(ch.events):
                parts.append(ch.events)
            if on_tick is not None:
                on_tick(1 - (t_end - now) / seconds)
        return np.concatenate(parts) if parts else np.empty(0, EVENT_DTYPE)

    def take(self, label: str, seconds: float, countdown: int = 3, what: str = "",
             retries: int = 2) -> Take:
        for attempt in range(retries + 1):
            self.out.write(f"\n{what or label}: get ready")
            for k in range(countdown, 0, -1):
                self.out.write(f" {k}..")
                self.out.flush()
                self._read_for(1.0)
            self.out.write(" GO\n")

            def bar(frac):
                n = int(30 * min(max(frac, 0.0), 1.0))
                self.out.write(f"\r  recording [{'#' * n}{'.' * (30 - n)}] {frac * seconds:4.1f}"
                               f"/{seconds:.1f} s")
                self.out.flush()

            ev = self._read_for(seconds, bar)
            bar(1.0)
            rate = len(ev) / seconds
            self.out.write(f"\n  captured {len(ev):,} events ({rate:,.0f} ev/s) on a "
                           f"{self.width}x{self.height} sensor\n")
            if len(ev) >= self.min_events or label == "none":
                ea = EventArray(ev, self.width, self.height)
                t0 = int(ev["t"][0]) if len(ev) else 0
                t1 = int(ev["t"][-1]) + 1 if len(ev) else int(seconds * 1e9)
                return Take(label, ea, t0, max(t1, t0 + int(seconds * 1e9 * 0.95)),
                            "camera", 0.0, seconds)
            self.out.write(f"  almost nothing moved (fewer than {self.min_events} events): "
                           + ("again.\n" if attempt < retries else "giving up.\n"))
        raise EventDataError(f"{label!r}: {retries + 1} takes in a row captured almost no "
                             "events; is the camera pointed at the performer?")

    def session(self, gestures: list[str], k: int, seconds: float, nothing_s: float,
                countdown: int = 3) -> list[Take]:
        takes = []
        for g in gestures:
            for i in range(k):
                takes.append(self.take(g, seconds, countdown, f"[{g} {i + 1}/{k}] perform "
                                                              f"'{g}'"))
        takes.append(self.take("none", nothing_s, countdown,
                               f"[nothing] {nothing_s:.0f} s of the scene WITHOUT any of the "
                               "gestures (move around as usual)"))
        return takes

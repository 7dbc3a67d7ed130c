"""Real recordings as training and evaluation windows (sliding, honouring start_s/end_s).

Why windows: a real clip is seconds long, the model looks at ``window`` bins (0.64 s for the
gesture presets). Scoring one window per clip (its first 0.64 s) says little; scoring every
window and taking the majority uses the whole clip, and training on every window of the
training clips multiplies the scarce real examples.

Events of other sensor sizes are mapped onto the model's sensor with the live pipeline's own
``rescale_events`` (centred crop + integer scaling), so training, ``snn4 eval`` and
``snn4 replay`` see the same picture.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..events import read_recording
from ..events.frames import rescale_events
from .datasets import FrameData, clip_frames
from .hybridnet import HybridNetConfig


@dataclass(frozen=True)
class LabelledClip:
    """One row of a ``labels.csv``: a recording, its label and where the label holds."""

    path: Path
    label: str
    start_s: float | None = None      # seconds from the recording's first event
    end_s: float | None = None
    confidence: str = ""

    @property
    def name(self) -> str:
        return self.path.name


def read_labels_csv(folder: str | Path) -> list[LabelledClip]:
    """``labels.csv`` of a folder: ``path,label`` plus optional ``start_s,end_s,confidence``."""
    folder = Path(folder)
    path = folder / "labels.csv"
    if not path.exists():
        raise FileNotFoundError(f"{folder}: no labels.csv (rows: path,label[,start_s,end_s])")
    out = []
    with open(path, newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh), start=2):
            if not row.get("path") or not row.get("label"):
                raise ValueError(f"{path}: line {i} lacks path or label")

            def num(key):
                v = (row.get(key) or "").strip()
                try:
                    return float(v) if v else None
                except ValueError:
                    raise ValueError(f"{path}: line {i}: {key} {v!r} is not a number") from None
            a, b = num("start_s"), num("end_s")
            if a is not None and b is not None and b <= a:
                raise ValueError(f"{path}: line {i}: end_s {b} is not after start_s {a}")
            out.append(LabelledClip(folder / row["path"].strip(), row["label"].strip(), a, b,
                                    (row.get("confidence") or "").strip()))
    return out


def model_events(path: str | Path, cfg: HybridNetConfig) -> np.ndarray:
    """A recording's events on the model's sensor (rescaled as the live pipeline does)."""
    ea, _, _ = read_recording(path)
    return rescale_events(ea.events, (ea.width, ea.height),
                          (cfg.sensor_width, cfg.sensor_height))


def window_starts(t_first_ns: int, t_last_ns: int, cfg: HybridNetConfig, stride_s: float,
                  start_s: float | None = None, end_s: float | None = None) -> list[int]:
    """Start times of full windows inside [start_s, end_s] (seconds from the first event);
    a span shorter than one window gives one window at its start."""
    win = cfg.window * cfg.bin_us * 1000
    a = t_first_ns + int(round((start_s or 0.0) * 1e9))
    b = t_last_ns if end_s is None else min(t_last_ns, t_first_ns + int(round(end_s * 1e9)))
    stride = max(1, int(round(stride_s * 1e9)))
    starts = list(range(a, max(a, b - win) + 1, stride))
    return starts or [a]


def windows(ev: np.ndarray, cfg: HybridNetConfig, stride_s: float = 0.32,
            start_s: float | None = None, end_s: float | None = None,
            max_windows: int | None = None) -> np.ndarray:
    """Frames ``[N, T, 2, H, W]`` (uint8) of sliding windows over time-sorted events."""
    if not len(ev):
        return np.zeros((0, cfg.window, 2, cfg.input_height, cfg.input_width), np.uint8)
    t = ev["t"]
    starts = window_starts(int(t[0]), int(t[-1]), cfg, stride_s, start_s, end_s)
    if max_windows is not None and len(starts) > max_windows:
        idx = np.linspace(0, len(starts) - 1, max_windows).round().astype(int)
        starts = [starts[i] for i in idx]
    win = cfg.window * cfg.bin_us * 1000
    out = []
    for s in starts:
        a, b = np.searchsorted(t, [s, s + win])
        out.append(clip_frames(ev[a:b], cfg, cfg.sensor_width, cfg.sensor_height, s, cfg.window))
    return np.stack(out)


def recording_windows(path: str | Path, cfg: HybridNetConfig, label: str,
                      stride_s: float = 0.32, start_s: float | None = None,
                      end_s: float | None = None, max_windows: int | None = None) -> FrameData:
    """All windows of one recording, labelled ``label`` (no tracking target: visible = 0)."""
    if label not in cfg.classes:
        raise ValueError(f"label {label!r} is not one of the model's classes {cfg.classes}")
    f = windows(model_events(path, cfg), cfg, stride_s, start_s, end_s, max_windows)
    n = len(f)
    return FrameData(torch.from_numpy(f), torch.full((n,), cfg.classes.index(label)),
                     tuple(cfg.classes), torch.zeros(n, 3), f"windows:{path}")


def concat(parts: list[FrameData]) -> FrameData:
    """One dataset of several (same classes); missing targets become 'not visible'."""
    parts = [p for p in parts if len(p)]
    if not parts:
        raise ValueError("no samples to concatenate")
    classes = parts[0].classes
    if any(tuple(p.classes) != tuple(classes) for p in parts):
        raise ValueError("datasets with different classes cannot be concatenated")
    tg = [p.targets if p.targets is not None else torch.zeros(len(p), 3) for p in parts]
    return FrameData(torch.cat([p.frames for p in parts]), torch.cat([p.labels for p in parts]),
                     classes, torch.cat(tg).float(), "+".join(p.source for p in parts))

"""Datasets as frame tensors: synthetic gestures, N-MNIST, DVS128 Gesture, a folder + CSV.

A dataset spec is a string, as ``snn4 train`` / ``snn4 eval`` take it:

* ``synthetic:N[:SEED]``  N fresh clips per class from the synthetic DVS (cached on disk)
* ``synthetic-real:N[:SEED]``  the same with the real-looking simulator: filled silhouettes
                          at any size, sensors drawn around the real DVS128's statistics,
                          and distractor scenes for the ``none`` class of real-world models
* ``nmnist:DIR``          N-MNIST binary files (``ID.bin`` / ``ID.bs2``) + ``labels.txt``
* ``dvsgesture:DIR``      DVS128 Gesture in tonic's local layout (``ibmGestureTrain/``,
                          ``ibmGestureTest/``: ``userXX_light/LABEL.npy`` event arrays)
* ``folder:DIR``          any recordings + ``labels.csv`` (``path,label`` rows; optional
                          ``start_s``: the window starts there; ``snn4 eval`` also scores
                          sliding windows inside ``start_s``/``end_s``, models/realdata.py)
* ``bag:PATH[,LABELS]``   the labelled intervals of a recording (``start,end,class`` CSV,
                          default ``PATH.labels.csv``) as isolated clips from each start:
                          what ``snn4 eval`` scores on the clips ``snn4 replay`` streams

Every sample becomes ``uint8`` count frames ``[T, 2, H, W]`` with the model's own event ->
frame transform (bin width, downsampling), so training, evaluation and the live node see
exactly the same input representation.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..events import events_to_frames, make_events, read_recording
from ..events.files import read_nmnist, read_nmnist_labels
from ..events.frames import rescale_events
from .hybridnet import HybridNetConfig

CACHE = Path(os.environ.get("SNN4_CACHE", Path.home() / ".cache" / "snn4_ros"))


@dataclass
class FrameData:
    frames: torch.Tensor             # uint8 [N, T, 2, H, W]
    labels: torch.Tensor             # int64 [N]
    classes: tuple[str, ...]
    targets: torch.Tensor | None = None   # float [N, 3]: x, y, visible at the last bin
    source: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    def split(self, frac: float, seed: int = 0) -> tuple["FrameData", "FrameData"]:
        """A stratified split: ``frac`` of every class into the second part."""
        rng = np.random.default_rng(seed)
        hold = []
        for c in range(len(self.classes)):
            idx = np.flatnonzero(self.labels.numpy() == c)
            rng.shuffle(idx)
            hold.extend(idx[: int(round(frac * len(idx)))])
        mask = np.zeros(len(self), bool)
        mask[hold] = True
        return self.subset(np.flatnonzero(~mask)), self.subset(np.flatnonzero(mask))

    def subset(self, idx) -> "FrameData":
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        return FrameData(self.frames[idx], self.labels[idx], self.classes,
                         None if self.targets is None else self.targets[idx], self.source)


def clip_frames(ev: np.ndarray, cfg: HybridNetConfig, width: int, height: int, t0: int,
                n_bins: int) -> np.ndarray:
    f = events_to_frames(ev, n_bins, cfg.frame_config(), width, height, t0_ns=t0)
    out = np.zeros((n_bins, 2, cfg.input_height, cfg.input_width), np.uint8)
    h, w = min(f.shape[2], cfg.input_height), min(f.shape[3], cfg.input_width)
    out[:, :, :h, :w] = f[:, :, :h, :w]
    return out


# ------------------------------------------------------------------ synthetic
NONE = "none"      # the "no command gesture" outcome of the real-world models


def synthetic_classes(cfg: HybridNetConfig) -> tuple[str, ...]:
    """The classes the synthetic source can label for this model: the 11 gestures, plus
    ``none`` (distractor scenes) when the model has that outcome."""
    from ..events.synthetic import GESTURES

    ok = (tuple(GESTURES), tuple(GESTURES) + (NONE,))
    if tuple(cfg.classes) not in ok:
        raise ValueError("the synthetic source produces the 11 DVS128-Gesture classes "
                         f"(optionally + {NONE!r}); the model's classes are {cfg.classes}")
    return tuple(cfg.classes)


def _synthetic_worker(args):
    """Clips of several classes from one simulated sensor: classes share the sensor (hot
    pixels, thresholds, background), as in a real recording session, so a model cannot tell
    classes apart by the sensor. ``style`` "real": filled silhouettes at any size (small far
    person to close-up), no target in half the blocks, a sensor drawn around the real
    DVS128's statistics; ``none`` clips are distractor scenes (events/distractors.py)."""
    from ..events.distractors import DISTRACTORS, distractor_clip, random_sensor
    from ..events.synthetic import GESTURES, GestureSimulator, SceneConfig, SensorConfig

    seed, classes, cfg_d, style = args
    cfg = HybridNetConfig(**cfg_d)
    T = cfg.window
    dur = T * cfg.bin_us / 1e6
    if style == "real":
        rng = np.random.default_rng(seed)
        sensor = random_sensor(rng, cfg.sensor_width, cfg.sensor_height)
        scene = SceneConfig(style="filled", scale_range=(0.4, 2.2), target=seed % 2 == 0)
    else:
        sensor = SensorConfig(width=cfg.sensor_width, height=cfg.sensor_height)
        scene = None
    sim = GestureSimulator(seed=seed, sensor=sensor, scene=scene)
    frames, labels, targets = [], [], []
    for c in classes:
        if c >= len(GESTURES):                          # none: a distractor scene
            kind = DISTRACTORS[(seed + c) % len(DISTRACTORS)]
            ev = distractor_clip(kind, seed * 7 + 3, dur, cfg.sensor_width, cfg.sensor_height,
                                 sensor=sensor)
            frames.append(clip_frames(ev.events, cfg, cfg.sensor_width, cfg.sensor_height, 0,
                                      T))
            targets.append(np.zeros(3, np.float32))
        else:
            clip = sim.clip(GESTURES[c], dur)
            frames.append(clip_frames(clip.events.events, cfg, cfg.sensor_width,
                                  cfg.sensor_height, 0, T))
            targets.append(clip.target[-1, 1:4])
        labels.append(c)
    return np.stack(frames), np.array(labels), np.array(targets, np.float32)


def synthetic_data(n_per_class: int, cfg: HybridNetConfig, seed: int = 0,
                   workers: int | None = None, cache: bool = True,
                   style: str = "stick") -> FrameData:
    """Fresh labelled clips from the synthetic DVS, generated in parallel and cached."""
    classes = synthetic_classes(cfg)
    if style not in ("stick", "real"):
        raise ValueError(f"synthetic style must be 'stick' or 'real', got {style!r}")
    keys = ("window", "bin_us", "downsample", "input_width", "input_height", "sensor_width",
            "sensor_height")
    extra = {} if (style == "stick" and len(classes) == 11) else {"style": style,
                                                                  "classes": len(classes)}
    key = json.dumps({k: getattr(cfg, k) for k in keys} | {"n": n_per_class, "seed": seed,
                                                            "v": 2} | extra, sort_keys=True)
    path = CACHE / f"synthetic-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    name = f"synthetic{'-real' if style == 'real' else ''}:{n_per_class}"
    if cache and path.exists():
        z = np.load(path)
        return FrameData(torch.from_numpy(z["frames"]), torch.from_numpy(z["labels"]),
                         classes, torch.from_numpy(z["targets"]), name)
    workers = workers or min(os.cpu_count() or 1, 8)
    # one job per block of one clip of every class, in a seeded order, on its own sensor:
    # deterministic whatever the worker count
    rng = np.random.default_rng(seed)
    jobs = [(seed * 100_003 + b, [int(c) for c in rng.permutation(len(classes))], cfg.to_dict(),
             style) for b in range(n_per_class)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            parts = list(ex.map(_synthetic_worker, jobs))
    else:
        parts = [_synthetic_worker(j) for j in jobs]
    frames = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts]).astype(np.int64)
    targets = np.concatenate([p[2] for p in parts])
    if cache:
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, frames=frames, labels=labels, targets=targets)
        tmp.replace(path)
    return FrameData(torch.from_numpy(frames), torch.from_numpy(labels), classes,
                     torch.from_numpy(targets), name)


# ------------------------------------------------------------------ N-MNIST
def nmnist_data(folder: str | Path, cfg: HybridNetConfig, ids: list[int] | None = None) -> FrameData:
    folder = Path(folder)
    labels = read_nmnist_labels(folder)
    ids = sorted(labels) if ids is None else ids
    frames, ys = [], []
    for i in ids:
        f = next((folder / f"{i}{s}" for s in (".bs2", ".bin") if (folder / f"{i}{s}").exists()),
                 None)
        if f is None:
            raise FileNotFoundError(f"{folder}: labels.txt names sample {i} but there is no "
                                    f"{i}.bs2 or {i}.bin")
        ea, _ = read_nmnist(f)
        frames.append(clip_frames(ea.events, cfg, 34, 34, 0, cfg.window))
        ys.append(labels[i])
    return FrameData(torch.from_numpy(np.stack(frames)), torch.tensor(ys),
                     tuple(str(c) for c in range(10)), None, f"nmnist:{folder}")


# ------------------------------------------------------------------ DVS128 Gesture (tonic)
def dvsgesture_data(root: str | Path, cfg: HybridNetConfig, train: bool = True) -> FrameData:
    root = Path(root)
    sub = "ibmGestureTrain" if train else "ibmGestureTest"
    base = next((p for p in (root / sub, root / "DVSGesture" / sub) if p.is_dir()), None)
    if base is None:
        raise FileNotFoundError(f"{root}: no {sub}/ folder (tonic's DVSGesture layout)")
    frames, ys = [], []
    for f in sorted(base.glob("*/*.npy")):
        a = np.load(f, allow_pickle=False)
        if a.dtype.names:
            x, y, p, t = a["x"], a["y"], a["p"], a["t"]
        else:                              # tonic's plain (N, 4) x, y, p, t
            x, y, p, t = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
        ev = make_events(np.asarray(t, np.int64) * 1000, x, y, p)
        ev = ev[np.argsort(ev["t"], kind="stable")]
        frames.append(clip_frames(ev, cfg, 128, 128, int(ev["t"][0]), cfg.window))
        ys.append(int(f.stem))
    if not frames:
        raise FileNotFoundError(f"{base}: no userXX/LABEL.npy samples")
    return FrameData(torch.from_numpy(np.stack(frames)), torch.tensor(ys), cfg.classes, None,
                     f"dvsgesture:{root}")


# ------------------------------------------------------------------ folder + CSV
def folder_data(folder: str | Path, cfg: HybridNetConfig) -> FrameData:
    folder = Path(folder)
    path = folder / "labels.csv"
    if not path.exists():
        raise FileNotFoundError(f"{folder}: no labels.csv (rows: path,label)")
    frames, ys = [], []
    with open(path) as fh:
        for row in csv.DictReader(fh):
            label = row["label"]
            if label not in cfg.classes:
                raise ValueError(f"{path}: label {label!r} is not one of the model's classes")
            ea, _, _ = read_recording(folder / row["path"])
            start = (row.get("start_s") or "").strip()      # where the label begins to hold
            t0 = (ea.t_first_ns or 0) + (int(round(float(start) * 1e9)) if start else 0)
            ev = rescale_events(ea.events, (ea.width, ea.height),
                                (cfg.sensor_width, cfg.sensor_height))
            frames.append(clip_frames(ev, cfg, cfg.sensor_width, cfg.sensor_height, t0,
                                  cfg.window))
            ys.append(cfg.classes.index(label))
    return FrameData(torch.from_numpy(np.stack(frames)), torch.tensor(ys), cfg.classes, None,
                     f"folder:{folder}")


# ------------------------------------------------------------------ labelled bag
def bag_clips_data(spec: str, cfg: HybridNetConfig) -> FrameData:
    """One clip of the last ``window`` bins of every labelled interval of a bag (an isolated
    clip: the model starts from rest, as in ``snn4 eval``), read with the replay's own message
    reader (events placed in the bag's clock by their packets' stamps). The end, not the
    start: a recording's interval starts with the transition from whatever came before."""
    from ..events import PacketDecoder
    from ..events.labels import check_labels, load_labels_csv
    from ..events.messages import iter_messages

    path, _, labels = spec.partition(",")
    labels = labels or f"{Path(path).parent / Path(path).name}.labels.csv"
    intervals = load_labels_csv(labels)
    dec = PacketDecoder(strict=True)
    stamps, parts = [], []
    width = height = None
    for stamp, pkt in iter_messages(path, strict=True):
        stamps.append(stamp)
        parts.append(dec.decode(pkt).events)
        width, height = pkt.width, pkt.height
    if not stamps:
        raise ValueError(f"{path}: no event messages")
    stamps = np.asarray(stamps, np.int64)
    intervals, _ = check_labels(intervals, list(cfg.classes), int(stamps[0]), int(stamps[-1]),
                                path)
    dur = cfg.window * cfg.bin_us * 1000
    frames, ys = [], []
    for iv in intervals:
        a, b = np.searchsorted(stamps, [max(iv.start_ns, iv.end_ns - dur), iv.end_ns])
        ev = np.concatenate(parts[a:b]) if b > a else make_events([], [], [], [])
        if len(ev):
            ev = ev[ev["t"] < ev["t"][0] + dur]
        frames.append(clip_frames(ev, cfg, width, height, int(ev["t"][0]) if len(ev) else 0,
                              cfg.window))
        ys.append(cfg.classes.index(iv.cls))
    return FrameData(torch.from_numpy(np.stack(frames)), torch.tensor(ys), tuple(cfg.classes),
                     None, f"bag:{path}")


def load_dataset(spec: str, cfg: HybridNetConfig, train: bool = True) -> FrameData:
    kind, _, arg = spec.partition(":")
    if kind in ("synthetic", "synthetic-real"):
        n, _, seed = arg.partition(":")
        return synthetic_data(int(n or 20), cfg, seed=int(seed or (0 if train else 1)),
                              style="real" if kind == "synthetic-real" else "stick")
    if kind == "nmnist":
        return nmnist_data(arg, cfg)
    if kind == "dvsgesture":
        return dvsgesture_data(arg, cfg, train)
    if kind == "folder":
        return folder_data(arg, cfg)
    if kind == "bag":
        return bag_clips_data(arg, cfg)
    raise ValueError(f"unknown dataset spec {spec!r}: synthetic:N[:SEED], "
                     "synthetic-real:N[:SEED], nmnist:DIR, "
                     "dvsgesture:DIR, folder:DIR, bag:PATH[,LABELS]")

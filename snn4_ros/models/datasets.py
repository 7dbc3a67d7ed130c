"""Datasets as frame tensors: synthetic gestures, N-MNIST, DVS128 Gesture, a folder + CSV.

A dataset spec is a string, as ``snn4 train`` / ``snn4 eval`` take it:

* ``synthetic:n=N,seed=S``  N fresh clips per class from the synthetic DVS (cached on
                          disk); N defaults to 20, S to 0 for training and 1 for evaluation;
                          short form ``synthetic:N[:SEED]`` (the same fields in that order:
                          events/specs.py holds the one grammar, sources use it too)
* ``synthetic-real:n=N,seed=S``  the same with the real-looking simulator: filled silhouettes
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
from ..events.errors import UserError, did_you_mean
from ..events.files import read_nmnist, read_nmnist_labels
from ..events.frames import rescale_events
from ..events.specs import SpecError, synthetic_fields
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

    def fold(self, k: int, i: int, seed: int = 0) -> tuple["FrameData", "FrameData"]:
        """Fold ``i`` of a stratified ``k``-fold partition: (the other k-1 folds, fold i).

        Every class is shuffled (``seed``) and dealt round-robin into the k folds, so each
        sample is held out exactly once over i = 0..k-1 and every fold holds each class in
        proportion (sizes differ by at most one per class)."""
        if not 2 <= k <= len(self) or not 0 <= i < k:
            raise ValueError(f"fold {i} of {k}: need 2 <= k <= {len(self)} and 0 <= i < k")
        rng = np.random.default_rng(seed)
        fold_of = np.empty(len(self), np.int64)
        for c in range(len(self.classes)):
            idx = np.flatnonzero(self.labels.numpy() == c)
            rng.shuffle(idx)
            fold_of[idx] = np.arange(len(idx)) % k
        held = fold_of == i
        return self.subset(np.flatnonzero(~held)), self.subset(np.flatnonzero(held))

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
        raise DatasetSpecError("the synthetic source produces the 11 DVS128-Gesture "
                               f"classes (optionally + {NONE!r}); the model's classes are "
                               f"{cfg.classes}")
    return tuple(cfg.classes)


def save_cache(path: Path, frames: np.ndarray, labels: np.ndarray,
               targets: np.ndarray) -> None:
    """Write rendered data to the cache atomically (a temporary file, then a rename), so a
    run killed half-way never leaves a truncated cache that a later run would trust."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, frames=frames, labels=labels, targets=targets)
    tmp.replace(path)


def map_workers(fn, jobs: list, workers: int) -> list:
    """``[fn(j) for j in jobs]``, in ``workers`` processes when more than one (the order of
    the results is the jobs' whatever the worker count: rendering stays deterministic)."""
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            return list(ex.map(fn, jobs))
    return [fn(j) for j in jobs]


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
    name = f"synthetic{'-real' if style == 'real' else ''}:n={n_per_class},seed={seed}"
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
    parts = map_workers(_synthetic_worker, jobs, workers)
    frames = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts]).astype(np.int64)
    targets = np.concatenate([p[2] for p in parts])
    if cache:
        save_cache(path, frames, labels, targets)
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
                raise DatasetSpecError(f"{path}: label {label!r} is not one of the model's "
                                       f"classes ({', '.join(cfg.classes)})")
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


class DatasetSpecError(UserError):
    """A dataset spec that cannot work: unknown kind, bad number, missing folder, classes
    that are not the model's."""


DATASET_KINDS = {
    "synthetic": "synthetic:n=N,seed=S  N clips per class from the synthetic DVS (short: "
                 "synthetic:N[:SEED])",
    "synthetic-real": "synthetic-real:n=N,seed=S  the same from the real-looking simulator",
    "nmnist": "nmnist:DIR  N-MNIST .bin/.bs2 files + labels.txt",
    "dvsgesture": "dvsgesture:DIR  DVS128 Gesture in tonic's layout",
    "folder": "folder:DIR  recordings + labels.csv (path,label)",
    "bag": "bag:PATH[,LABELS]  the labelled intervals of a recording",
}
SPEC_HELP = ("synthetic:n=N,seed=S | synthetic-real:n=N,seed=S | nmnist:DIR | dvsgesture:DIR"
             " | folder:DIR | bag:PATH[,LABELS]")
SYNTHETIC_KINDS = ("synthetic", "synthetic-real")


@dataclass(frozen=True)
class DatasetSpec:
    kind: str
    n: int = 0                       # synthetic: clips per class
    seed: int = 0                    # synthetic
    path: str = ""                   # the other kinds
    labels: str = ""                 # bag: its labels CSV

    def __str__(self) -> str:
        if self.kind in SYNTHETIC_KINDS:
            return f"{self.kind}:n={self.n},seed={self.seed}"
        return f"{self.kind}:{self.path}" + (f",{self.labels}" if self.labels else "")


def _guess_kind(path: Path) -> str | None:
    """What a bare path most likely is, for the "did you mean" of a spec without a kind."""
    if (path / "labels.txt").exists():
        return "nmnist"
    if (path / "labels.csv").exists():
        return "folder"
    if any((path / d).is_dir() for d in ("ibmGestureTrain", "ibmGestureTest", "DVSGesture")):
        return "dvsgesture"
    if (path / "metadata.yaml").exists() or path.suffix in (".mcap", ".db3", ".bag",
                                                              ".aedat4", ".raw", ".aedat"):
        return "bag"
    return None


def parse_dataset_spec(spec: str, train: bool = True) -> DatasetSpec:
    """The parts of a dataset spec, with every path checked: what is cheap to find wrong is
    found before any data is read or any model loaded."""
    kind, sep, arg = spec.partition(":")
    if not sep and kind not in SYNTHETIC_KINDS:
        p = Path(spec).expanduser()
        if p.exists():
            guess = _guess_kind(p)
            raise DatasetSpecError(
                f"dataset {spec!r} has no kind: write KIND:PATH"
                + (f", here probably {guess}:{spec}" if guess else "")
                + f" (kinds: {SPEC_HELP})")
        raise DatasetSpecError(f"dataset {spec!r}: want KIND:ARG, one of {SPEC_HELP}")
    if kind not in DATASET_KINDS:
        raise DatasetSpecError(f"unknown dataset kind {kind!r}{did_you_mean(kind, DATASET_KINDS)}"
                               f" (kinds: {SPEC_HELP})")
    if kind in SYNTHETIC_KINDS:
        try:
            f = synthetic_fields(spec)
        except SpecError as exc:
            raise DatasetSpecError(str(exc)) from None
        return DatasetSpec(kind, n=f.get("n", 20), seed=f.get("seed", 0 if train else 1))
    path, _, labels = arg.partition(",") if kind == "bag" else (arg, "", "")
    if not path:
        raise DatasetSpecError(f"dataset {spec!r}: no path after '{kind}:' "
                               f"({DATASET_KINDS[kind]})")
    p = Path(path).expanduser()
    if not p.exists():
        raise DatasetSpecError(f"dataset {spec!r}: no such "
                               f"{'file or folder' if kind == 'bag' else 'folder'}: {path}")
    if kind in ("nmnist", "dvsgesture", "folder") and not p.is_dir():
        raise DatasetSpecError(f"dataset {spec!r}: {path} is a file; {kind}: wants a folder "
                               f"({DATASET_KINDS[kind]})")
    need = {"nmnist": "labels.txt", "folder": "labels.csv"}.get(kind)
    if need and not (p / need).exists():
        raise DatasetSpecError(f"dataset {spec!r}: no {need} in {path} "
                               f"({DATASET_KINDS[kind]})")
    if kind == "dvsgesture":
        sub = "ibmGestureTrain" if train else "ibmGestureTest"
        if not any((b / sub).is_dir() for b in (p, p / "DVSGesture")):
            raise DatasetSpecError(f"dataset {spec!r}: no {sub}/ folder in {path} (tonic's "
                                   "DVSGesture layout)")
    if kind == "bag":
        labels = labels or f"{p.parent / p.name}.labels.csv"
        if not Path(labels).exists():
            raise DatasetSpecError(f"dataset {spec!r}: no labels file {labels} (write "
                                   "start,end,class rows, or name it: bag:PATH,LABELS)")
    return DatasetSpec(kind, path=path, labels=labels if kind == "bag" else "")


def dataset_classes(ds: DatasetSpec) -> list[str] | None:
    """The class names a dataset holds, read cheaply (labels files only), or None where only
    the model's own classes can be meant (dvsgesture: labels are indices into them)."""
    from ..events.synthetic import GESTURES

    if ds.kind in SYNTHETIC_KINDS:      # (+ "none" for a model that has it: its own)
        return list(GESTURES)
    if ds.kind == "nmnist":
        return sorted({str(c) for c in read_nmnist_labels(ds.path).values()}, key=int)
    if ds.kind == "folder":
        with open(Path(ds.path) / "labels.csv") as fh:
            return sorted({row.get("label", "") for row in csv.DictReader(fh)})
    if ds.kind == "bag":
        from ..events.labels import load_labels_csv
        return sorted({iv.cls for iv in load_labels_csv(ds.labels)})
    return None


def check_dataset(spec: str, classes, train: bool = True, model: str = "the model",
                  other_models: dict | None = None) -> DatasetSpec:
    """``parse_dataset_spec`` plus: the dataset's classes are the model's (``classes``).
    ``other_models`` (name -> classes) lets the message name a model that would fit."""
    ds = parse_dataset_spec(spec, train)
    have = dataset_classes(ds)
    if have is None:
        return ds
    unknown = [c for c in have if c not in classes]
    if unknown:
        fits = [name for name, cl in (other_models or {}).items()
                if all(c in cl for c in have)]
        short = lambda cl: (", ".join(cl) if len(cl) <= 4  # noqa: E731
                            else f"{', '.join(cl[:3])}, ... ({len(cl)} classes)")
        raise DatasetSpecError(
            f"{model} classifies {short(list(classes))} but {spec} holds {short(have)}: "
            + (f"use a model trained on such data ({', '.join(fits)})" if fits else
               "train a model on such data (snn4 train)"))
    return ds


def load_dataset(spec: str, cfg: HybridNetConfig, train: bool = True) -> FrameData:
    ds = check_dataset(spec, cfg.classes, train)
    if ds.kind in SYNTHETIC_KINDS:
        return synthetic_data(ds.n, cfg, seed=ds.seed,
                              style="real" if ds.kind == "synthetic-real" else "stick")
    if ds.kind == "nmnist":
        return nmnist_data(ds.path, cfg)
    if ds.kind == "dvsgesture":
        return dvsgesture_data(ds.path, cfg, train)
    if ds.kind == "folder":
        return folder_data(ds.path, cfg)
    return bag_clips_data(f"{ds.path},{ds.labels}", cfg)


def training_overlap(card: dict, spec: str) -> str | None:
    """Why ``spec`` (an evaluation dataset) is the model's own training data, from its model
    card, or None. An accuracy on training samples says nothing about new data: ``snn4 eval``
    prints this beside the figure and the card records it with the evaluation."""
    trained_on = ((card.get("training") or {}).get("dataset")) or ""
    try:
        tr, ev = parse_dataset_spec(trained_on, train=True), parse_dataset_spec(spec, False)
    except UserError:                   # a training set no longer on this machine
        return None
    if tr.kind != ev.kind:
        return None
    if tr.kind in SYNTHETIC_KINDS:
        if tr.seed != ev.seed:
            return None
        return (f"evaluated on its own training data: {ev} draws the same clips as the "
                f"training set {trained_on} (seed {tr.seed}; use another seed, e.g. "
                f"{ev.kind}:n={ev.n},seed={max(tr.seed, 1) + 1})")
    root = Path(__file__).resolve().parents[2]
    same = {Path(tr.path).resolve(), (root / tr.path).resolve()} & {Path(ev.path).resolve()}
    if tr.kind != "dvsgesture" and same:     # dvsgesture: train/ vs test/ split by itself
        return f"evaluated on its own training data: the model was trained on {trained_on}"
    return None

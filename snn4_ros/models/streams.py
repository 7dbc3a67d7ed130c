"""Gesture streams: the synthetic DVS performing gesture after gesture, labelled per bin, and
a readout trained on them to notice a change within a few bins.

Why: isolated clips start from rest, so a model trained on them decides after 2-3 bins of a
clip -- but in a stream (``snn4 record-synthetic``, a person in front of a robot) gestures
follow each other, and a readout over the model's 16-bin window keeps answering the previous
gesture until most of the window holds the new one (onset -> first command p50 542 ms on the
labelled bag, bench/onset.py). A stream here is made the way the labelled bag is
(``GestureSimulator``: one sensor, gestures back to back, each on a new scene), but with
segments of random length so that every bin position after a change is seen, and a label per bin (the
gesture being performed).

``train_stream_readout`` keeps the spiking backbone as it is (so the real-camera model built
on it is untouched) and trains the bridge and heads on the latest ``readout_window`` bins of
the backbone's spikes, at every bin of the streams (and of isolated clips, if given), with
the label of that bin's gesture: the first bins after a change are labelled with the new
gesture, so the readout learns to let the newest bins decide. What it costs: a short readout
reads less evidence per decision (bench/onset.py and the model card show both sides).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .datasets import CACHE, FrameData, clip_frames, map_workers, save_cache
from .hybridnet import HybridNet, HybridNetConfig


@dataclass
class StreamData:
    """Streams of frames with a label and a target per bin (all streams the same length)."""

    frames: torch.Tensor             # uint8 [N, T, 2, H, W]
    labels: torch.Tensor             # int64 [N, T] gesture performed in each bin
    targets: torch.Tensor            # float [N, T, 3] target x, y, visible at each bin's end
    source: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    def changes(self) -> int:
        """Gesture changes (a new segment with another gesture) over all streams."""
        return int((self.labels[:, 1:] != self.labels[:, :-1]).sum())


def _stream_worker(args) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One stream: gestures in a seeded random order (permutations of the classes, as the
    labelled bag draws them), each for a random whole number of bins in ``seg_bins`` -- or,
    with ``any_phase``, for a random number of render steps in the same span, so that a
    change falls anywhere inside a bin (as it does live: the labelled bag's changes fall 2 ms
    before a bin ends, with the scene's jump in that bin). A bin's label is the gesture
    performed during most of it; its target, the one at its end."""
    from ..events.synthetic import GESTURES, GestureSimulator

    seed, T, seg_bins, cfg_d = args[:4]
    any_phase = bool(args[4]) if len(args) > 4 else False
    cfg = HybridNetConfig(**cfg_d)
    rng = np.random.default_rng(seed)
    sim = GestureSimulator(seed=seed)
    spb = cfg.bin_us // sim.scene_cfg.dt_us            # render steps per bin
    order = np.concatenate([rng.permutation(len(GESTURES)) for _ in range(T // seg_bins[0] + 1)])
    steps = T * spb
    step_label = np.zeros(steps, np.int64)
    step_target = np.zeros((steps, 3), np.float32)
    parts, i, k = [], 0, 0
    while i < steps:
        if any_phase:
            n = int(rng.integers(seg_bins[0] * spb, seg_bins[1] * spb + 1))
        else:
            n = int(rng.integers(seg_bins[0], seg_bins[1] + 1)) * spb
        n = min(n, steps - i)
        g = int(order[k])
        k += 1
        sim.start_gesture(g)
        for j in range(i, i + n):
            ev, (tx, ty, vis) = sim.step()
            parts.append(ev)
            step_label[j] = g
            step_target[j] = (tx, ty, float(vis))
        i += n
    ev = np.concatenate(parts)
    frames = clip_frames(ev, cfg, sim.sensor.width, sim.sensor.height, 0, T)
    labels = bin_labels(step_label, spb, len(GESTURES))
    targets = step_target.reshape(T, spb, 3)[:, -1].copy()
    return frames, labels, targets


def bin_labels(step_labels: np.ndarray, steps_per_bin: int, classes: int) -> np.ndarray:
    """Per bin, the label of most of its render steps (ties: the lower class index)."""
    per_bin = np.asarray(step_labels).reshape(-1, steps_per_bin)
    return np.array([np.bincount(b, minlength=classes).argmax() for b in per_bin], np.int64)


def stream_data(n_streams: int, cfg: HybridNetConfig, seed: int = 1000, bins: int = 96,
                seg_bins: tuple[int, int] = (6, 30), workers: int | None = None,
                cache: bool = True, any_phase: bool = False) -> StreamData:
    """``n_streams`` synthetic streams of ``bins`` bins each (stream i simulated with seed
    ``seed + i``: keep these seeds away from the bags a model is scored on), generated in
    parallel and cached like the synthetic clips. ``any_phase``: changes fall anywhere in a
    bin (else on bin boundaries)."""
    if n_streams < 1 or bins < 1 or not 1 <= seg_bins[0] <= seg_bins[1]:
        raise ValueError(f"want streams >= 1, bins >= 1 and 1 <= min <= max segment bins, got "
                         f"{n_streams}, {bins}, {seg_bins}")
    keys = ("bin_us", "downsample", "input_width", "input_height", "sensor_width",
            "sensor_height")
    key = {k: getattr(cfg, k) for k in keys} | {
        "n": n_streams, "seed": seed, "bins": bins, "seg": list(seg_bins), "v": 1}
    if any_phase:
        key |= {"any_phase": True, "v": 2}
    key = json.dumps(key, sort_keys=True)
    path = CACHE / f"streams-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    name = f"streams:n={n_streams},seed={seed},bins={bins},segments={seg_bins[0]}-{seg_bins[1]}" \
        + (",any_phase" if any_phase else "")
    if cache and path.exists():
        z = np.load(path)
        return StreamData(torch.from_numpy(z["frames"]), torch.from_numpy(z["labels"]),
                          torch.from_numpy(z["targets"]), name)
    jobs = [(seed + i, bins, tuple(seg_bins), cfg.to_dict(), any_phase)
            for i in range(n_streams)]
    workers = workers or min(os.cpu_count() or 1, 8)
    parts = map_workers(_stream_worker, jobs, workers)
    frames = np.stack([p[0] for p in parts])
    labels = np.stack([p[1] for p in parts])
    targets = np.stack([p[2] for p in parts])
    if cache:
        save_cache(path, frames, labels, targets)
    return StreamData(torch.from_numpy(frames), torch.from_numpy(labels),
                      torch.from_numpy(targets), name)


@torch.no_grad()
def backbone_spikes(model: HybridNet, frames: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """The last stage's spikes ``[N, T, C, h, w]`` (uint8) of ``frames`` ``[N, T, ...]``,
    each sample streamed from rest through the (frozen) backbone: what the bridge reads."""
    model.eval()
    out = [torch.zeros(0, frames.shape[1], *model.feature_shape(), dtype=torch.uint8)]
    for i in range(0, len(frames), batch):
        s, _ = model.backbone_seq(frames[i:i + batch].float().transpose(0, 1))
        out.append(s.transpose(0, 1).to(torch.uint8))
    return torch.cat(out)


def change_positions(labels: torch.Tensor) -> torch.Tensor:
    """Per bin, bins since the gesture last changed (0 on the change's first bin); the
    first segment of a stream counts from its start."""
    N, T = labels.shape
    pos = torch.zeros(N, T, dtype=torch.long)
    for t in range(1, T):
        same = labels[:, t] == labels[:, t - 1]
        pos[:, t] = torch.where(same, pos[:, t - 1] + 1, torch.zeros_like(pos[:, t]))
    return pos


@dataclass
class StreamReadoutConfig:
    readout_window: int = 3            # bins the bridge and heads read
    epochs: int = 12
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-2
    seed: int = 0
    change_weight: float = 1.0         # extra loss weight on the first bins after a change
    change_bins: int = 3               # ... on this many bins
    track_weight: float = 1.0


def _windows(spikes: torch.Tensor, ends: torch.Tensor, L: int) -> torch.Tensor:
    """``[L, B, C, h, w]`` float windows of ``spikes`` [N, T, ...] ending at (sample, bin)
    pairs ``ends`` [B, 2] (every end at bin >= L - 1)."""
    n, t = ends[:, 0], ends[:, 1]
    idx = t[:, None] - torch.arange(L - 1, -1, -1)[None]            # [B, L]
    return spikes[n[:, None], idx].float().transpose(0, 1)


def _bridge_heads_rows(model: HybridNet, rows: torch.Tensor, sources: list, W: int):
    """Bridge + heads over the windows of example ``rows`` [B, 3] (source, sample, bin):
    the latest ``W`` bins, or all bins so far near a sample's start (as a stream's first bins
    are read: fewer bins, not zero-padded ones). Outputs in the order of ``rows``."""
    L = torch.clamp(rows[:, 2] + 1, max=W)
    outs, order = [], []
    for src, spikes in enumerate(sources):
        for length in torch.unique(L[rows[:, 0] == src]).tolist():
            sel = torch.nonzero((rows[:, 0] == src) & (L == length))[:, 0]
            outs.append(model.bridge_heads(_windows(spikes, rows[sel, 1:], length)))
            order.append(sel)
    order = torch.cat(order)
    inv = torch.empty_like(order)
    inv[order] = torch.arange(len(order))
    cat = [None if o[0] is None else torch.cat(o)[inv] for o in
           zip(*[(o[0], o[1], o[2]) for o in outs])]
    return cat                                      # logits, position, visibility


def train_stream_readout(model: HybridNet, streams: StreamData, clips: FrameData | None,
                         cfg: StreamReadoutConfig, log=print,
                         spikes: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
    """Train the bridge and heads (backbone frozen) of ``model`` in place to read the newest
    ``cfg.readout_window`` bins; sets ``model.cfg.readout_window``. Every bin of every stream
    and every clip is one example (label: its gesture); the first ``change_bins`` bins after
    a change get ``1 + change_weight`` times the weight. ``spikes``: the backbone's spikes
    of the streams and the clips, if already computed (``backbone_spikes``). Returns the
    history."""
    import time

    from .train import seed_everything

    seed_everything(cfg.seed)
    W = cfg.readout_window
    model.cfg.readout_window = W
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    t0 = time.time()
    if clips is None:                       # streams only: an empty clip set
        C, H, W_ = model.cfg.in_channels, model.cfg.input_height, model.cfg.input_width
        clips = FrameData(torch.zeros(0, 1, C, H, W_, dtype=torch.uint8),
                          torch.zeros(0, dtype=torch.long), model.cfg.classes)
    if spikes is None:
        spikes = backbone_spikes(model, streams.frames), backbone_spikes(model, clips.frames)
        log(f"backbone spikes of {len(streams)} streams and {len(clips)} clips "
            f"({time.time() - t0:.0f} s)")
    s_st, s_cl = spikes
    # examples: (source, sample, bin); streams first, then the clips
    N1, T1 = streams.labels.shape
    N2, T2 = len(clips), clips.frames.shape[1]
    pos = change_positions(streams.labels)
    after_change = (pos < cfg.change_bins) & (pos < torch.arange(T1))   # not the first segment
    st_w = 1.0 + cfg.change_weight * after_change
    ex = [(0, n, t) for n in range(N1) for t in range(T1)] + \
         [(1, n, t) for n in range(N2) for t in range(T2)]
    ex = torch.tensor(ex)
    weights = torch.cat([st_w.reshape(-1).float(), torch.ones(N2 * T2)])
    y_all = torch.cat([streams.labels.reshape(-1), clips.labels[:, None].expand(N2, T2)
                       .reshape(-1)])
    tg_cl = clips.targets[:, None].expand(N2, T2, 3) if clips.targets is not None else \
        torch.zeros(N2, T2, 3)
    # a clip's target is known at its last bin only: elsewhere (and for clips without
    # targets) the tracking loss is off, never taught "not visible"
    tg_cl_vis = torch.zeros(N2, T2)
    if clips.targets is not None:
        tg_cl_vis[:, -1] = 1
    tgt_all = torch.cat([streams.targets.reshape(-1, 3), tg_cl.reshape(-1, 3)])
    tgt_on = torch.cat([torch.ones(N1 * T1), tg_cl_vis.reshape(-1)])
    params = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(len(ex) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps,
                                                pct_start=0.1)
    gen = torch.Generator().manual_seed(cfg.seed)
    scale = torch.tensor([model.cfg.sensor_width, model.cfg.sensor_height], dtype=torch.float)
    hist = {"epoch": [], "loss": [], "train_acc": [], "seconds": []}

    sources = [s_st, s_cl]

    for epoch in range(cfg.epochs):
        model.train()
        model.backbone.eval()
        t_ep = time.time()
        perm = torch.randperm(len(ex), generator=gen)
        tot = correct = seen = 0.0
        for i in range(0, len(ex), cfg.batch_size):
            sel = perm[i:i + cfg.batch_size]
            y, w = y_all[sel], weights[sel]
            logits, pos_, vis = _bridge_heads_rows(model, ex[sel], sources, W)
            loss = (F.cross_entropy(logits, y, reduction="none") * w).sum() / w.sum()
            if pos_ is not None and cfg.track_weight > 0:
                tg, on = tgt_all[sel], tgt_on[sel]
                m = (on > 0) & (tg[:, 2] > 0)
                if m.any():
                    loss = loss + cfg.track_weight * F.smooth_l1_loss(
                        pos_[m] / scale, tg[m, :2] / scale, beta=0.05)
                if (on > 0).any():
                    loss = loss + 0.1 * F.binary_cross_entropy_with_logits(
                        vis[on > 0], tg[on > 0, 2])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(sel)
            correct += float((logits.argmax(1) == y).sum())
            seen += len(sel)
        hist["epoch"].append(epoch + 1)
        hist["loss"].append(tot / seen)
        hist["train_acc"].append(correct / seen)
        hist["seconds"].append(time.time() - t_ep)
        log(f"epoch {epoch + 1}/{cfg.epochs} loss={tot / seen:.4f} train_acc="
            f"{correct / seen:.3f} ({hist['seconds'][-1]:.0f} s)")
    _recalibrate(model, ex, sources, W, cfg.batch_size)
    for p in model.backbone.parameters():
        p.requires_grad_(True)
    model.eval()
    hist["config"] = asdict(cfg)
    return hist


@torch.no_grad()
def _recalibrate(model: HybridNet, ex: torch.Tensor, sources: list, W: int,
                 batch: int) -> None:
    """Batch-norm statistics of the bridge and heads as an exact average over the training
    windows with the final weights (as ``train.recalibrate_bn`` does for whole clips)."""
    bns = [m for n, m in model.named_modules()
           if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and not n.startswith("backbone")]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    model.backbone.eval()
    ex = ex[ex[:, 2] >= W - 1]         # full windows (a cumulative average weighs every call)
    for i in range(0, len(ex), batch * 4):
        _bridge_heads_rows(model, ex[i:i + batch * 4], sources, W)
    for m in bns:
        m.momentum = 0.1
    model.eval()


@torch.no_grad()
def stream_predictions(model: HybridNet, streams: StreamData, window: int | None = None,
                       batch: int = 8) -> torch.Tensor:
    """Softmax scores ``[N, T, classes]`` a live stream would give at every bin (backbone
    from rest at the stream's start, bridge and heads over the latest ``window`` bins)."""
    from .hybridnet import StreamingRunner

    W = window or model.cfg.readout_bins
    out = []
    for i in range(len(streams)):
        r = StreamingRunner(model, W)
        x = streams.frames[i].float()
        probs = [torch.softmax(r.step(x[t:t + 1]).logits[0], -1) for t in range(len(x))]
        out.append(torch.stack(probs))
    return torch.stack(out)


def onset_figures(probs: torch.Tensor, labels: torch.Tensor, min_confidence: float = 0.8,
                  debounce: int = 2, bin_ms: float = 40.0) -> dict:
    """A quick, controller-free reading of stream predictions: per gesture change, the first
    bin (1-based, from the change) that ends ``debounce`` consecutive confident decisions of
    the new gesture; the share of bins whose top class is right, and of changes never
    confirmed; the share of bins with a confident wrong top class. The bench
    (bench/onset.py) measures the real thing through the controller."""
    conf, top = probs.max(-1)
    ok = (top == labels) & (conf >= min_confidence)
    N, T = labels.shape
    first, missed = [], 0
    for n in range(N):
        starts = [t for t in range(1, T) if labels[n, t] != labels[n, t - 1]] + [T]
        for a, b in zip(starts[:-1], starts[1:]):
            run, hit = 0, None
            for t in range(a, b):
                run = run + 1 if ok[n, t] else 0
                if run >= debounce:
                    hit = t - a + 1
                    break
            if hit is None:
                missed += 1
            else:
                first.append(hit)
    f = np.asarray(first, float)
    return {"changes": len(first) + missed, "missed": missed,
            "first_bin_p50": float(np.median(f)) if len(f) else None,
            "first_ms_p50": float(np.median(f)) * bin_ms if len(f) else None,
            "by_bin_2": float((f <= 2).sum() / max(len(first) + missed, 1)),
            "bin_accuracy": float((top == labels).float().mean()),
            # the raw material of wrong commands: confident bins naming another gesture
            "confident_wrong_bins": float(((top != labels) & (conf >= min_confidence))
                                          .float().mean())}

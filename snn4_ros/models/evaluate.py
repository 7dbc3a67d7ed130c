"""Evaluation: accuracy, per-class figures, confusion, early-exit bins, synops and MACs.

Early exit is computed from the outputs a stream would give after every bin
(``forward_prefixes``, equal to ``StreamingRunner`` by test): the decision bin of a sample is
the first bin whose top class probability reaches the threshold (else the last bin).
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from .datasets import FrameData
from .hybridnet import HybridNet

# Energy figures for the estimate (labelled as estimates everywhere they are shown):
# Loihi: 23.6 pJ per synaptic operation (Davies et al., IEEE Micro 2018, Table 1, Loihi 1;
# Intel has not published a per-synop figure for Loihi 2). GPU: 4.6 pJ per 32-bit float MAC
# (Horowitz, ISSCC 2014: 3.7 pJ multiply + 0.9 pJ add, 45 nm), the usual ANN baseline.
from .energy import energy_estimate, loihi_mappable


@torch.no_grad()
def _batches(model: HybridNet, data: FrameData, batch: int, ends=None, progress=False):
    model.eval()
    for i in tqdm(range(0, len(data), batch), disable=not progress, desc="eval", leave=False):
        x = data.frames[i:i + batch].float().transpose(0, 1)
        if ends is None:
            yield i, x, [model(x)]
        else:
            yield i, x, model.forward_prefixes(x, ends)


def accuracy(model: HybridNet, data: FrameData, batch: int = 64) -> float:
    correct = 0
    for i, _, (out,) in _batches(model, data, batch):
        correct += int((out.logits.argmax(1) == data.labels[i:i + batch]).sum())
    return correct / max(len(data), 1)


def evaluate(model: HybridNet, data: FrameData, threshold: float = 0.9, batch: int = 32,
             progress: bool = False) -> dict:
    """The figures of ``snn4 eval --json``."""
    if tuple(data.classes) != tuple(model.cfg.classes):
        raise ValueError(f"dataset classes {data.classes} differ from the model's "
                         f"{model.cfg.classes}")
    T = data.frames.shape[1]
    ends = list(range(1, T + 1))
    C = len(model.cfg.classes)
    conf = np.zeros((C, C), np.int64)
    bins, synops, pos_err = [], [], []
    for i, x, outs in _batches(model, data, batch, ends, progress):
        y = data.labels[i:i + batch].numpy()
        probs = torch.stack([torch.softmax(o.logits, -1) for o in outs])   # [T, B, C]
        final = probs[-1].argmax(-1).numpy()
        np.add.at(conf, (y, final), 1)
        top = probs.max(-1).values.numpy()                                # [T, B]
        reached = top >= threshold
        first = np.where(reached.any(0), reached.argmax(0) + 1, T)
        bins.extend(first.tolist())
        synops.extend(model.synops(x, outs[-1].spikes).tolist())
        if data.targets is not None and outs[-1].position is not None:
            tgt = data.targets[i:i + batch]
            vis = tgt[:, 2] > 0
            if vis.any():
                err = (outs[-1].position[vis] - tgt[vis, :2]).norm(dim=-1)
                pos_err.extend(err.tolist())
    n = int(conf.sum())
    per_class = {}
    for c, name in enumerate(model.cfg.classes):
        tp = int(conf[c, c])
        support = int(conf[c].sum())
        predicted = int(conf[:, c].sum())
        per_class[name] = {"support": support,
                           "recall": tp / support if support else None,
                           "precision": tp / predicted if predicted else None}
    macs = model.macs_per_step() * T
    syn = float(np.mean(synops)) if synops else 0.0
    out = {
        "accuracy": float(np.trace(conf) / max(n, 1)),
        "n": n,
        "per_class": per_class,
        "confusion": conf.tolist(),
        "classes": list(model.cfg.classes),
        "early_exit_threshold": threshold,
        "mean_decision_bins": float(np.mean(bins)) if bins else None,
        "window_bins": T,
        "bin_us": model.cfg.bin_us,
        "synops_per_sample": syn,
        "macs_per_sample": int(macs),
        "energy_estimate": energy_estimate(*loihi_mappable(model), syn, macs, per="sample"),
    }
    if pos_err:
        out["tracking_error_px_mean"] = float(np.mean(pos_err))
        out["tracking_error_px_p90"] = float(np.percentile(pos_err, 90))
    return out

"""Fine-tuning a shipped gesture model towards real sensors, with a "none" outcome.

``widen_classes`` adds outcomes (``none``: no command gesture) to a trained model: every
weight is kept, the classifier gets new rows initialised from the mean of the old ones with a
lower bias, so the fine-tuned model starts from the trained one's answers. ``windowed_scores``
scores every sliding window of real clips (majority per clip), the figure ``snn4 eval`` and
the cross-validation report for real recordings.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .hybridnet import HybridNet
from .realdata import LabelledClip, model_events, windows


def widen_classes(model: HybridNet, extra: tuple[str, ...]) -> HybridNet:
    """A copy of ``model`` with the classes ``extra`` appended (existing ones untouched)."""
    new = tuple(c for c in extra if c not in model.cfg.classes)
    if not new:
        return model
    cfg = replace(model.cfg, classes=tuple(model.cfg.classes) + new)
    out = HybridNet(cfg)
    state = model.state_dict()
    w, b = state.pop("classifier.weight"), state.pop("classifier.bias")
    out.load_state_dict(state, strict=False)
    with torch.no_grad():
        n = len(model.cfg.classes)
        out.classifier.weight[:n] = w
        out.classifier.bias[:n] = b
        out.classifier.weight[n:] = w.mean(0, keepdim=True)
        out.classifier.bias[n:] = b.mean() - 1.0
    return out


@torch.no_grad()
def window_probs(model: HybridNet, frames: np.ndarray, batch: int = 32) -> np.ndarray:
    """Softmax scores ``[N, classes]`` of windows ``[N, T, 2, H, W]`` (each from rest)."""
    model.eval()
    out = []
    for i in range(0, len(frames), batch):
        x = torch.from_numpy(frames[i:i + batch]).float().transpose(0, 1)
        out.append(torch.softmax(model(x).logits.float(), -1).numpy())
    return np.concatenate(out) if out else np.zeros((0, len(model.cfg.classes)), np.float32)


def windowed_scores(model: HybridNet, clips: list[LabelledClip], stride_s: float = 0.32
                    ) -> list[dict]:
    """Per clip: every window's top class inside [start_s, end_s], the majority and the
    fraction of windows right."""
    classes = list(model.cfg.classes)
    recs = []
    for c in clips:
        f = windows(model_events(c.path, model.cfg), model.cfg, stride_s, c.start_s, c.end_s)
        p = window_probs(model, f)
        top = p.argmax(1)
        counts = np.bincount(top, minlength=len(classes))
        recs.append({"clip": c.name, "label": c.label, "confidence": c.confidence,
                     "start_s": c.start_s, "end_s": c.end_s, "windows": int(len(top)),
                     "majority": classes[int(counts.argmax())] if len(top) else None,
                     "windows_right": int((top == classes.index(c.label)).sum())
                     if c.label in classes else 0,
                     "window_classes": {classes[i]: int(n) for i, n in enumerate(counts) if n},
                     "mean_probs": p.mean(0).round(4).tolist() if len(p) else []})
    return recs


def summarize_windowed(recs: list[dict]) -> dict:
    n = len(recs)
    right = sum(r["majority"] == r["label"] for r in recs)
    w = sum(r["windows"] for r in recs)
    wr = sum(r["windows_right"] for r in recs)
    return {"clips": n, "clips_right": int(right), "clip_accuracy": right / n if n else None,
            "windows": int(w), "windows_right": int(wr),
            "window_accuracy": wr / w if w else None,
            "one_clip_is_pct": 100.0 / n if n else None}


# ---------------------------------------------------------------- readout fine-tuning
@torch.no_grad()
def backbone_spikes(model: HybridNet, frames: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """The frozen spiking backbone's last-stage spikes ``[N, T, C, h, w]`` (bool) of
    windows ``[N, T, 2, H, W]``, each from rest: computed once, reused by every fold."""
    model.eval()
    out = []
    for i in range(0, len(frames), batch):
        x = frames[i:i + batch].float().transpose(0, 1)
        s, _ = model.backbone_seq(x)
        out.append((s > 0).transpose(0, 1).cpu())
    return torch.cat(out)


def _head_params(model: HybridNet):
    return [p for n, p in model.named_parameters()
            if not n.startswith(("backbone.", "attn."))]


def train_heads(model: HybridNet, spikes: torch.Tensor, labels: torch.Tensor,
                targets: torch.Tensor | None, epochs: int = 8, lr: float = 2e-3,
                batch_size: int = 32, seed: int = 0, per_step_loss: float = 0.5,
                weight_decay: float = 1e-2, log=None) -> dict:
    """Train the bridge (ERS + SAT) and the heads on cached backbone spikes; the spiking
    backbone stays as trained (on CPU: seconds per epoch instead of minutes, which is what
    makes cross-validation over real recordings affordable on a 2-core machine).

    Loss: cross-entropy on the full window plus, weighted ``per_step_loss``, on 1/4, 1/2,
    3/4 of it (a stream is decided early), and the tracking head's visibility/position loss
    where ``targets`` are given (x, y, visible). Batch-norm statistics of the heads are
    recomputed over the training spikes at the end (as ``train`` does)."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    params = _head_params(model)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    n = len(labels)
    steps = epochs * max(1, -(-n // batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.1)
    T = spikes.shape[1]
    ends = sorted({max(1, T // 4), max(1, T // 2), max(1, 3 * T // 4), T})
    scale = torch.tensor([model.cfg.sensor_width, model.cfg.sensor_height], dtype=torch.float32)
    hist = {"loss": [], "train_acc": []}
    for ep in range(epochs):
        model.train()
        model.backbone.eval()
        perm = torch.randperm(n, generator=g)
        tot = correct = 0.0
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            s = spikes[idx].float().transpose(0, 1)
            y = labels[idx]
            outs = [model.bridge_heads(s[:e]) for e in ends]
            logits = outs[-1][0]
            loss = F.cross_entropy(logits, y)
            loss = loss + per_step_loss * sum(F.cross_entropy(o[0], y) for o in outs[:-1]) \
                / max(1, len(outs) - 1)
            if targets is not None and outs[-1][1] is not None:
                tg = targets[idx]
                vis = tg[:, 2]
                if vis.sum() > 0:
                    loss = loss + F.smooth_l1_loss(outs[-1][1][vis > 0] / scale,
                                                   tg[vis > 0, :2] / scale, beta=0.05)
                loss = loss + 0.1 * F.binary_cross_entropy_with_logits(outs[-1][2], vis)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            sched.step()
            tot += float(loss) * len(idx)
            correct += float((logits.argmax(1) == y).sum())
        hist["loss"].append(tot / n)
        hist["train_acc"].append(correct / n)
        if log:
            log(f"  heads epoch {ep + 1}/{epochs}: loss {tot / n:.4f} acc {correct / n:.3f}")
    _recalibrate_heads(model, spikes)
    model.eval()
    return hist


@torch.no_grad()
def _recalibrate_heads(model: HybridNet, spikes: torch.Tensor, batch: int = 64) -> None:
    bns = [m for n, m in model.named_modules()
           if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
           and not n.startswith(("backbone.", "attn."))]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    model.backbone.eval()
    for i in range(0, len(spikes), batch):
        model.bridge_heads(spikes[i:i + batch].float().transpose(0, 1))
    for m in bns:
        m.momentum = 0.1
    model.eval()


@torch.no_grad()
def head_features(model: HybridNet, spikes: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """The classifier's input ``[N, head_hidden]`` (bridge + head conv, pooled) of cached
    backbone spikes: what a readout-only fine-tune trains on."""
    model.eval()
    out = []
    for i in range(0, len(spikes), batch):
        dense, _ = model.bridge(spikes[i:i + batch].float().transpose(0, 1))
        out.append(model.head(dense).mean(dim=(2, 3)))
    return torch.cat(out)


def train_readout(model: HybridNet, feats: torch.Tensor, labels: torch.Tensor,
                  steps: int = 400, lr: float = 0.05, weight_decay: float = 1e-3,
                  balance: bool = True, seed: int = 0) -> dict:
    """Fit the gesture classifier (one linear layer, the rule Loihi-style readouts use) on
    pooled features, full batch, class-balanced; everything before it stays as trained.
    Seconds on a CPU, which is what lets cross-validation over real recordings run on a
    shared 2-core machine. Starts from the model's current classifier."""
    import torch.nn.functional as F

    torch.manual_seed(seed)
    C = model.classifier.out_features
    w = None
    if balance:
        cnt = torch.bincount(labels, minlength=C).float()
        w = torch.where(cnt > 0, cnt.sum() / (cnt.clamp(min=1) * (cnt > 0).sum()),
                        torch.zeros_like(cnt))
    opt = torch.optim.Adam(model.classifier.parameters(), lr=lr, weight_decay=weight_decay)
    model.classifier.train()
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model.classifier(feats), labels, weight=w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    with torch.no_grad():
        acc = float((model.classifier(feats).argmax(1) == labels).float().mean())
    return {"loss": losses[::max(1, steps // 20)], "final_loss": losses[-1], "train_acc": acc,
            "steps": steps}

"""Self-supervised adaptation of the spiking backbone to real event streams (no labels).

Temporal contrastive learning (TCL, ../shared/notes/snn4-methods.md): instead of one output
averaged over a window, the representations of one stream at *different time steps* are
positive pairs, those of other streams (and other moments far apart) are negatives. Here a
"representation" is the backbone's last-stage spike rates over one model window, pooled to a
coarse grid and passed through a small projection MLP (thrown away afterwards). Two windows of
the same real recording, ``offset`` bins apart and each shifted by a few pixels, are pulled
together; the other windows of the batch are pushed away (symmetric InfoNCE). Gradients reach
the backbone through its surrogate.

After adaptation the heads (bridge, shared head, classifier, tracking) are trained on synthetic
labels with the backbone frozen (``train_heads_frozen``), exactly as for the unadapted
backbone, so ``bench/tcl.py`` compares like with like. ``adabn`` -- only re-estimating the
backbone's batch-norm statistics on the real streams -- is the cheap control.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .datasets import FrameData
from .hybridnet import HybridNet


@dataclass
class TCLConfig:
    steps: int = 60
    batch: int = 8
    window: int = 8                  # bins per view (shorter than the model's: CPU)
    lr: float = 5e-4
    min_offset_bins: int = 2
    max_offset_bins: int = 8
    shift: int = 4                   # pixels of the model input, per view
    temperature: float = 0.2
    grid: int = 4                    # spike rates pooled to grid x grid per channel
    proj_dim: int = 32
    seed: int = 0


class Projector(nn.Module):
    def __init__(self, channels: int, grid: int, dim: int):
        super().__init__()
        self.grid = grid
        self.mlp = nn.Sequential(nn.Linear(channels * grid * grid, 128), nn.ReLU(),
                                 nn.Linear(128, dim))

    def forward(self, s: torch.Tensor) -> torch.Tensor:      # s: [T, B, C, h, w] spikes
        r = s.mean(0)
        r = F.adaptive_avg_pool2d(r, self.grid).flatten(1)
        return F.normalize(self.mlp(r), dim=-1)


def _sample(streams: list[np.ndarray], W: int, cfg: TCLConfig, rng: np.random.Generator):
    """Two windows per stream pick: [W, B, 2, H, W] each, ``offset`` bins apart."""
    need = W + cfg.max_offset_bins
    ok = [i for i, s in enumerate(streams) if len(s) >= need]
    if not ok:
        raise ValueError(f"no stream has {need} bins; TCL needs longer recordings")
    a, b = [], []
    for _ in range(cfg.batch):
        s = streams[ok[rng.integers(len(ok))]]
        off = int(rng.integers(cfg.min_offset_bins, cfg.max_offset_bins + 1))
        t = int(rng.integers(0, len(s) - W - off + 1))
        a.append(s[t:t + W])
        b.append(s[t + off:t + off + W])
    return (torch.from_numpy(np.stack(a, 1)).float(), torch.from_numpy(np.stack(b, 1)).float())


def _shift(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    if k <= 0:
        return x
    dx, dy = (int(v) for v in torch.randint(-k, k + 1, (2,), generator=gen))
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    logits = z1 @ z2.T / temperature
    y = torch.arange(len(z1))
    return 0.5 * (F.cross_entropy(logits, y) + F.cross_entropy(logits.T, y))


def tcl_adapt(net: HybridNet, streams: list[np.ndarray], cfg: TCLConfig | None = None,
              progress: bool = True) -> dict:
    """Adapt ``net``'s backbone in place on unlabelled frame streams [T, 2, H, W]."""
    cfg = cfg or TCLConfig()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    proj = Projector(net.cfg.channels[-1], cfg.grid, cfg.proj_dim)
    params = list(net.backbone.parameters()) + list(proj.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    W = cfg.window
    hist = {"loss": [], "seconds": 0.0}
    t0 = time.perf_counter()
    net.train()
    bar = tqdm(range(cfg.steps), desc="TCL", disable=not progress, leave=False)
    for step in bar:
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        x1, x2 = _sample(streams, W, cfg, rng)
        s1, _ = net.backbone_seq(_shift(x1, cfg.shift, gen))
        s2, _ = net.backbone_seq(_shift(x2, cfg.shift, gen))
        loss = info_nce(proj(s1), proj(s2), cfg.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        hist["loss"].append(float(loss.detach()))
        bar.set_postfix(loss=f"{np.mean(hist['loss'][-10:]):.3f}")
    net.eval()
    hist["seconds"] = time.perf_counter() - t0
    return hist


@torch.no_grad()
def adabn(net: HybridNet, streams: list[np.ndarray], windows: int = 64, seed: int = 0) -> None:
    """Re-estimate the backbone's batch-norm statistics on real streams (AdaBN)."""
    rng = np.random.default_rng(seed)
    W = net.cfg.window
    bns = [m for m in net.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.backbone.train()
    ok = [s for s in streams if len(s) >= W]
    for _ in range(0, windows, 8):
        xs = []
        for _ in range(8):
            s = ok[rng.integers(len(ok))]
            t = int(rng.integers(0, len(s) - W + 1))
            xs.append(s[t:t + W])
        net.backbone_seq(torch.from_numpy(np.stack(xs, 1)).float())
    for m in bns:
        m.momentum = 0.1
    net.eval()


def reset_heads(net: HybridNet, seed: int = 0) -> None:
    """Fresh weights for everything after the backbone (bridge, head, classifier, tracking)."""
    torch.manual_seed(seed)
    for name, child in net.named_children():
        if name != "backbone":
            for m in child.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()


def train_heads_frozen(net: HybridNet, data: FrameData, epochs: int = 30, lr: float = 3e-3,
                       batch: int = 32, seed: int = 0, progress: bool = True) -> dict:
    """Train bridge + heads on labelled clips with the backbone frozen (its spikes computed
    once): the 'train the heads on synthetic labels' step of TCL, the same for any backbone."""
    torch.manual_seed(seed)
    net.eval()
    with torch.no_grad():
        spikes = torch.cat([net.backbone_seq(data.frames[i:i + 32].float().transpose(0, 1))[0]
                            .to(torch.uint8) for i in range(0, len(data), 32)], 1)
    heads = [p for n, p in net.named_parameters() if not n.startswith("backbone.")]
    opt = torch.optim.AdamW(heads, lr=lr, weight_decay=1e-2)
    n = len(data)
    steps = epochs * math.ceil(n / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    hist = {"loss": []}
    for ep in tqdm(range(epochs), desc="heads", disable=not progress, leave=False):
        for name, child in net.named_children():
            child.train(name != "backbone")
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            b = perm[i:i + batch]
            s = spikes[:, b].float()
            logits, pos, vis, _, _ = net.bridge_heads(s)
            loss = F.cross_entropy(logits, data.labels[b])
            if data.targets is not None and pos is not None:
                tgt = data.targets[b]
                scale = torch.tensor([net.cfg.sensor_width, net.cfg.sensor_height])
                v = tgt[:, 2]
                if v.sum() > 0:
                    loss = loss + F.smooth_l1_loss(pos[v > 0] / scale, tgt[v > 0, :2] / scale,
                                                   beta=0.05)
                loss = loss + 0.1 * F.binary_cross_entropy_with_logits(vis, v)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            hist["loss"].append(float(loss.detach()))
    net.eval()
    with torch.no_grad():                   # the heads' batch norms: exact statistics
        bns = [m for n_, m in net.named_modules() if not n_.startswith("backbone")
               and isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
            m.train()
        for i in range(0, n, 64):
            net.bridge_heads(spikes[:, i:i + 64].float())
        for m in bns:
            m.momentum = 0.1
    net.eval()
    return hist

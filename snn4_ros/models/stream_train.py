"""The whole network trained on gesture streams, end to end, as it runs live.

Why: a readout trained over the unchanged spiking backbone (``streams.train_stream_readout``)
still answers a change of gesture only after 6-7 bins (bench/onset.py): the backbone, trained
on isolated clips that start from rest, never saw one gesture follow another, nor the burst
of events a change brings. Here backbone, bridge and heads learn together from streams:

* truncated BPTT over chunks of ``chunk_bins`` bins of a stream: the neurons' state (and the
  window's last spikes) is carried from chunk to chunk, detached, so every chunk starts where
  the live node would be -- with the previous gesture still in the membranes;
* a loss at every bin with that bin's label, read over the newest ``readout_window`` bins as
  ``StreamingRunner`` reads them (fewer bins at a stream's start, never zero-padded), with
  ``1 + change_weight`` times the weight on the first ``change_bins`` bins after a change;
* isolated clips mixed in (each one chunk from rest, the per-bin loss from its
  ``clip_from_bin``-th bin on), so that the accuracy on isolated clips holds.

Batch norm keeps the base model's running statistics (evaluation mode throughout, its scale
and shift trained): the same arithmetic in training and live, and no statistics polluted by
the bursts. ``train_step`` is one optimiser step on one chunk and returns the state to carry.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .datasets import FrameData
from .hybridnet import HybridNet
from .streams import StreamData, change_positions
from .train import detach_state, seed_everything


@dataclass
class StreamTrainConfig:
    readout_window: int = 3          # bins the bridge and heads read
    epochs: int = 4
    chunk_bins: int = 16             # truncated BPTT: bins per chunk (state carried across)
    stream_batch: int = 8            # streams per batch
    clip_batch: int = 16             # isolated clips per batch
    clips_per_epoch: int = 0         # isolated clips drawn per epoch (0: all)
    lr: float = 1e-3
    weight_decay: float = 1e-2
    change_weight: float = 2.0       # extra loss weight on the first bins after a change
    change_bins: int = 3             # ... on this many bins
    clip_from_bin: int = 2           # per-bin loss on isolated clips from this bin (1-based)
    track_weight: float = 1.0
    grad_clip: float = 5.0
    seed: int = 0


@dataclass
class ChunkState:
    """What a stream carries from one chunk to the next: every backbone layer's neuron state
    and the last ``readout_window - 1`` bins of spikes (all detached)."""

    neurons: list
    spikes: torch.Tensor | None = None          # [<= W-1, B, C, h, w]

    @classmethod
    def rest(cls, model: HybridNet) -> "ChunkState":
        return cls([None] * len(model.backbone), None)


def backbone_chunk(model: HybridNet, x: torch.Tensor, neurons: list) -> tuple[torch.Tensor, list]:
    """The backbone over ``x`` [K, B, C, H, W] from the neuron states ``neurons`` (None: rest),
    with autograd; returns the last stage's spikes and the states after the chunk, detached."""
    if model.attn is not None or model.cfg.input_coding != "bins":
        raise ValueError("stream training supports a plain spiking backbone fed bin by bin "
                         "(no SDSA, input_coding 'bins')")
    out = []
    K, B = x.shape[:2]
    for layer, st in zip(model.backbone, neurons):
        y = layer.synapse(x.reshape(K * B, *x.shape[2:])
                          .contiguous(memory_format=torch.channels_last))
        y = y.reshape(K, B, *y.shape[1:])
        if st is None:
            st = layer.neuron.init_state(y[0])
        x, st = layer.neuron(y, st)
        out.append(detach_state(st))
    return x, out


def window_outputs(model: HybridNet, seq: torch.Tensor, first: int, W: int):
    """Bridge + heads at every bin ``p >= first`` of ``seq`` [L, B, ...] over bins
    ``max(0, p - W + 1) .. p`` (what ``StreamingRunner`` reads at that bin: ``seq[0]`` is the
    first bin the buffer holds). Returns logits [P, B, classes], position [P, B, 2] and
    visibility [P, B] (None without tracking), P = L - first."""
    L, B = seq.shape[:2]
    outs = []
    full = [p for p in range(first, L) if p >= W - 1]
    for p in range(first, L):                       # short windows: a stream's first bins
        if p < W - 1:
            outs.append((p, model.bridge_heads(seq[:p + 1])))
    if full:
        idx = torch.tensor(full)[:, None] - (W - 1) + torch.arange(W)[None]     # [P, W]
        win = seq[idx]                                                          # [P, W, B, ...]
        win = win.transpose(0, 1).reshape(W, len(full) * B, *seq.shape[2:])
        o = model.bridge_heads(win)
        outs.append((None, tuple(None if v is None else v.reshape(len(full), B, *v.shape[1:])
                                 for v in o)))
    logits, pos, vis = [], [], []
    for p, o in outs:                               # in bin order: short windows come first
        one = p is not None
        logits.append(o[0][None] if one else o[0])
        if o[1] is not None:
            pos.append(o[1][None] if one else o[1])
            vis.append(o[2][None] if one else o[2])
    return (torch.cat(logits), torch.cat(pos) if pos else None,
            torch.cat(vis) if vis else None)


def chunk_loss(model: HybridNet, logits, pos, vis, labels: torch.Tensor, weights: torch.Tensor,
               targets: torch.Tensor | None, target_on: torch.Tensor | None,
               track_weight: float = 1.0) -> torch.Tensor:
    """Weighted cross-entropy over every bin of a chunk (``labels``, ``weights`` [P, B]),
    plus the tracking loss where ``target_on`` [P, B] is set (``targets`` [P, B, 3])."""
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                         reduction="none")
    w = weights.reshape(-1).to(ce.dtype)
    loss = (ce * w).sum() / w.sum().clamp_min(1e-6)
    if pos is not None and targets is not None and track_weight > 0:
        tg, on = targets.reshape(-1, 3), target_on.reshape(-1) > 0
        scale = torch.tensor([model.cfg.sensor_width, model.cfg.sensor_height],
                             dtype=pos.dtype)
        m = on & (tg[:, 2] > 0)
        if m.any():
            loss = loss + track_weight * F.smooth_l1_loss(
                pos.reshape(-1, 2)[m] / scale, tg[m, :2] / scale, beta=0.05)
        if on.any():
            loss = loss + 0.1 * F.binary_cross_entropy_with_logits(
                vis.reshape(-1)[on], tg[on, 2])
    return loss


def train_step(model: HybridNet, opt: torch.optim.Optimizer | None, x: torch.Tensor,
               state: ChunkState, labels: torch.Tensor, weights: torch.Tensor,
               targets: torch.Tensor | None = None, target_on: torch.Tensor | None = None,
               track_weight: float = 1.0, grad_clip: float = 5.0
               ) -> tuple[float, torch.Tensor, ChunkState]:
    """One chunk ``x`` [K, B, C, H, W] (uint8 or float) of B streams from ``state``: forward
    through the backbone from the carried neuron state, bridge and heads at each of the K
    bins over the newest ``readout_bins`` bins (the carried spikes included), the loss,
    backward and (``opt`` given) one optimiser step. Returns the loss, the logits [K, B,
    classes] and the state to carry into the stream's next chunk."""
    W = model.cfg.readout_bins
    s, neurons = backbone_chunk(model, x.float(), state.neurons)
    carry = state.spikes
    seq = s if carry is None else torch.cat([carry, s])
    first = 0 if carry is None else len(carry)
    logits, pos, vis = window_outputs(model, seq, first, W)
    loss = chunk_loss(model, logits, pos, vis, labels, weights, targets, target_on,
                      track_weight)
    if opt is not None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
    nxt = ChunkState(neurons, seq[len(seq) - (W - 1):].detach() if W > 1 else None)
    return float(loss.detach()), logits.detach(), nxt


def stream_weights(labels: torch.Tensor, change_weight: float, change_bins: int) -> torch.Tensor:
    """Per-bin loss weights [N, T]: 1, and ``1 + change_weight`` on the first ``change_bins``
    bins after a change (not on a stream's first gesture, which starts from rest)."""
    pos = change_positions(labels)
    after = (pos < change_bins) & (pos < torch.arange(labels.shape[1]))
    return 1.0 + change_weight * after.float()


def train_streams_end_to_end(model: HybridNet, streams: StreamData, clips: FrameData | None,
                             cfg: StreamTrainConfig, log=print, progress: bool = True) -> dict:
    """Train ``model`` in place (every parameter) on ``streams`` (and ``clips``): per epoch,
    each batch of streams chunk by chunk (state carried, one optimiser step per chunk), the
    isolated clips' batches spread evenly between them. Sets ``model.cfg.readout_window``.
    Returns the history."""
    from tqdm import tqdm

    seed_everything(cfg.seed)
    model.cfg.readout_window = cfg.readout_window
    W = model.cfg.readout_bins
    N, T = streams.labels.shape
    K = cfg.chunk_bins
    sw = stream_weights(streams.labels, cfg.change_weight, cfg.change_bins)
    n_clip = 0 if clips is None else (cfg.clips_per_epoch or len(clips))
    n_clip = min(n_clip, 0 if clips is None else len(clips))
    stream_steps = math.ceil(N / cfg.stream_batch) * math.ceil(T / K)
    clip_steps = math.ceil(n_clip / cfg.clip_batch) if n_clip else 0
    total = cfg.epochs * (stream_steps + clip_steps)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (
        1 + math.cos(math.pi * min(i, total) / total)))
    gen = torch.Generator().manual_seed(cfg.seed)
    hist = {"epoch": [], "stream_loss": [], "clip_loss": [], "stream_acc": [],
            "stream_acc_after_change": [], "seconds": []}
    if clips is not None:
        T2 = clips.frames.shape[1]
        clip_w = (torch.arange(T2) >= cfg.clip_from_bin - 1).float()
        clip_on = torch.zeros(T2)
        if clips.targets is not None:           # a clip's target is known at its last bin
            clip_on[-1] = 1                     # (none known: no tracking loss on clips)
    model.eval()                                # batch norm: the base model's statistics
    for p in model.parameters():
        p.requires_grad_(True)
    for epoch in range(cfg.epochs):
        t0 = time.time()
        perm = torch.randperm(N, generator=gen)
        groups = [perm[i:i + cfg.stream_batch] for i in range(0, N, cfg.stream_batch)]
        cperm = torch.randperm(len(clips), generator=gen)[:n_clip] if n_clip else None
        cgroups = [cperm[i:i + cfg.clip_batch] for i in range(0, n_clip, cfg.clip_batch)] \
            if n_clip else []
        per_group = math.ceil(len(cgroups) / len(groups)) if cgroups else 0
        s_loss = c_loss = 0.0
        s_n = c_n = 0
        right = seen = right_ch = seen_ch = 0
        bar = tqdm(total=stream_steps + clip_steps, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not progress, leave=False)
        for gi, g in enumerate(groups):
            state = ChunkState.rest(model)
            for a in range(0, T, K):
                b = min(T, a + K)
                x = streams.frames[g, a:b].transpose(0, 1)
                y = streams.labels[g, a:b].T
                tg = streams.targets[g, a:b].transpose(0, 1)
                w = sw[g, a:b].T
                loss, logits, state = train_step(model, opt, x, state, y, w, tg,
                                                 torch.ones_like(w), cfg.track_weight,
                                                 cfg.grad_clip)
                sched.step()
                s_loss += loss
                s_n += 1
                ok = logits.argmax(-1) == y
                right += int(ok.sum())
                seen += ok.numel()
                ch = w > 1
                right_ch += int(ok[ch].sum())
                seen_ch += int(ch.sum())
                bar.update()
            for cg in cgroups[gi * per_group:(gi + 1) * per_group]:
                x = clips.frames[cg].transpose(0, 1)
                B = len(cg)
                y = clips.labels[cg][None].expand(T2, B)
                tg = (clips.targets[cg] if clips.targets is not None else
                      torch.zeros(B, 3))[None].expand(T2, B, 3)
                loss, _, _ = train_step(model, opt, x, ChunkState.rest(model), y,
                                        clip_w[:, None].expand(T2, B), tg,
                                        clip_on[:, None].expand(T2, B), cfg.track_weight,
                                        cfg.grad_clip)
                sched.step()
                c_loss += loss
                c_n += 1
                bar.update()
        bar.close()
        hist["epoch"].append(epoch + 1)
        hist["stream_loss"].append(s_loss / max(s_n, 1))
        hist["clip_loss"].append(c_loss / max(c_n, 1) if c_n else None)
        hist["stream_acc"].append(right / max(seen, 1))
        hist["stream_acc_after_change"].append(right_ch / max(seen_ch, 1))
        hist["seconds"].append(time.time() - t0)
        log(f"epoch {epoch + 1}/{cfg.epochs}: stream loss {hist['stream_loss'][-1]:.4f}, "
            f"clip loss {hist['clip_loss'][-1] if c_n else float('nan'):.4f}, stream bin "
            f"accuracy {hist['stream_acc'][-1]:.3f} ({hist['stream_acc_after_change'][-1]:.3f} "
            f"on the first {cfg.change_bins} bins after a change), {hist['seconds'][-1]:.0f} s")
    model.eval()
    hist["config"] = asdict(cfg)
    return hist

"""Training: BPTT with surrogate gradients, AdamW + cosine schedule, with the options that
matter for event streams.

* per-step (early-exit) loss: the classifier also learns to answer after 1/4, 1/2 and 3/4
  of the window, weighted by ``temporal_reg`` (stronger pressure on later prefixes: early bins
  carry less evidence, so demanding the same certainty there hurts);
* firing-rate regularisation: keeps the mean spike rate near ``rate_target``;
* tracking loss: target position (smooth L1, in sensor-size units) and visibility (BCE);
* AMP (bf16) and ``torch.compile`` on CUDA; resume; DDP under ``torchrun``; a progress bar;
  deterministic given the seed on CPU.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .datasets import FrameData
from .hybridnet import HybridNet
from .surrogate import Surrogate, SurrogateSchedule


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-2
    warmup_steps: int = 20
    seed: int = 0
    per_step_loss: float = 0.5
    temporal_reg: float = 1.0          # weight growth across prefixes (0 = equal weights)
    rate_reg: float = 0.0
    rate_target: float = 0.1
    track_weight: float = 1.0
    augment_shift: int = 0             # random spatial shift (pixels of the model input)
    surrogate_schedule: tuple[float, float] | None = None   # alpha start, end
    amp: bool = True
    compile: bool = False
    device: str = "auto"
    log_every: int = 10


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    import random
    random.seed(seed)


def _dist():
    """(rank, world size) under torchrun, initialising the process group once."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def end_distributed() -> int:
    """Tear the DDP process group down after training; this process's rank (0 without DDP).
    Only rank 0 goes on to evaluate and write the checkpoint."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank = torch.distributed.get_rank()
        torch.distributed.destroy_process_group()
        return rank
    return 0


def _shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    if max_shift <= 0:
        return x
    dx, dy = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=gen))
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


@torch.no_grad()
def recalibrate_bn(model: HybridNet, data: FrameData, batch_size: int = 32) -> None:
    """Recompute every batch-norm's running statistics as an exact average over the training
    data with the final weights.

    The running averages collected during training mix statistics of many past weight
    versions; with a hard spike threshold behind every BN, that noise alone moved held-out
    accuracy by several points from epoch to epoch. One pass fixes it.
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [(m.momentum) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None                  # cumulative moving average
    model.train()
    dev = next(model.parameters()).device
    for i in range(0, len(data), batch_size):
        x = data.frames[i:i + batch_size].to(dev).float().transpose(0, 1)
        model(x)
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()


def loss_fn(model: HybridNet, x: torch.Tensor, y: torch.Tensor, tgt: torch.Tensor | None,
            cfg: TrainConfig):
    T = x.shape[0]
    ends = [T]
    if cfg.per_step_loss > 0 and T >= 4:
        ends = sorted({max(1, T // 4), max(1, T // 2), max(1, 3 * T // 4), T})
    outs = model.forward_prefixes(x, ends)
    final = outs[-1]
    loss = F.cross_entropy(final.logits, y)
    if len(outs) > 1:
        w = torch.tensor([(e / T) ** cfg.temporal_reg for e in ends[:-1]], device=x.device)
        w = w / w.sum()
        loss = loss + cfg.per_step_loss * sum(
            wi * F.cross_entropy(o.logits, y) for wi, o in zip(w, outs[:-1]))
    if cfg.rate_reg > 0:                   # mean firing rate over all backbone neurons
        rate = sum(c.sum() for c in final.spikes) / (x.shape[1] * T * model.neuron_count())
        loss = loss + cfg.rate_reg * (rate - cfg.rate_target) ** 2
    if tgt is not None and final.position is not None:
        vis = tgt[:, 2]
        scale = torch.tensor([model.cfg.sensor_width, model.cfg.sensor_height], dtype=x.dtype,
                             device=x.device)
        if vis.sum() > 0:
            d = F.smooth_l1_loss(final.position[vis > 0] / scale, tgt[vis > 0, :2] / scale,
                                 beta=0.05)
            loss = loss + cfg.track_weight * d
        loss = loss + 0.1 * F.binary_cross_entropy_with_logits(final.visible, vis)
    return loss, final.logits


def train(model: HybridNet, data: FrameData, cfg: TrainConfig, val: FrameData | None = None,
          resume: dict | None = None, progress: bool = True) -> dict:
    """Train in place; returns the history (loss, accuracy per epoch, val accuracy).

    ``progress`` shows a bar per epoch; one summary line per epoch is printed regardless.
    """
    seed_everything(cfg.seed)
    rank, world = _dist()
    dev = pick_device(cfg.device)
    model.to(dev)
    if world > 1:                      # same start everywhere; gradients averaged below
        for p in model.parameters():
            torch.distributed.broadcast(p.data, 0)
    if cfg.compile and dev.type == "cuda":
        model.backbone_seq = torch.compile(model.backbone_seq)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(data)
    steps_per_epoch = max(1, math.ceil(n / world / cfg.batch_size))
    total = cfg.epochs * steps_per_epoch

    def lr_at(step):
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        f = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(f, 1.0)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    schedule = SurrogateSchedule(*cfg.surrogate_schedule, total) if cfg.surrogate_schedule \
        else None
    history = {"epoch": [], "loss": [], "train_acc": [], "val_acc": [], "seconds": []}
    start_epoch = 0
    if resume:
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        start_epoch = resume["epoch"]
        history = resume["history"]
    gen = torch.Generator().manual_seed(cfg.seed)
    amp = cfg.amp and dev.type == "cuda"
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        t0 = time.time()
        perm = torch.randperm(n, generator=gen)[rank::world]
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not progress or rank != 0, leave=False)
        tot_loss = correct = seen = 0.0
        for b in bar:
            idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            if len(idx) == 0:
                continue
            x = data.frames[idx].to(dev, non_blocking=True).float().transpose(0, 1)
            x = _shift(x, cfg.augment_shift, gen)
            y = data.labels[idx].to(dev)
            tgt = data.targets[idx].to(dev) if data.targets is not None else None
            if schedule is not None:
                for m in model.modules():
                    if isinstance(m, Surrogate) and not m.learnable:
                        m.set_alpha(schedule.at(step))
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                loss, logits = loss_fn(model, x, y, tgt, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if world > 1:
                for p in model.parameters():
                    if p.grad is not None:
                        torch.distributed.all_reduce(p.grad)
                        p.grad /= world
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            step += 1
            tot_loss += float(loss.detach()) * len(idx)
            correct += float((logits.argmax(1) == y).sum())
            seen += len(idx)
            if b % cfg.log_every == 0:
                bar.set_postfix(loss=f"{tot_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
        history["epoch"].append(epoch + 1)
        history["loss"].append(tot_loss / max(seen, 1))
        history["train_acc"].append(correct / max(seen, 1))
        history["seconds"].append(time.time() - t0)
        if val is not None and len(val):
            from .evaluate import accuracy
            history["val_acc"].append(accuracy(model, val))
        if rank == 0:
            va = f" val_acc={history['val_acc'][-1]:.3f}" if history["val_acc"] else ""
            print(f"epoch {epoch + 1}/{cfg.epochs} loss={history['loss'][-1]:.4f} "
                  f"train_acc={history['train_acc'][-1]:.3f}{va} "
                  f"({history['seconds'][-1]:.0f} s)", flush=True)
    recalibrate_bn(model, data)
    if val is not None and len(val):
        from .evaluate import accuracy
        history["val_acc_recalibrated"] = accuracy(model, val)
        if rank == 0:
            print(f"batch-norm statistics recalibrated: val_acc="
                  f"{history['val_acc_recalibrated']:.3f}", flush=True)
    history["config"] = asdict(cfg)
    history["optimizer"] = opt.state_dict()
    history["scheduler"] = sched.state_dict()
    return history

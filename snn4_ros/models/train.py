"""Training: BPTT with surrogate gradients, AdamW + cosine schedule, with the options that
matter for event streams.

* per-step (early-exit) loss: the classifier also learns to answer after 1/4, 1/2 and 3/4
  of the window, the prefixes weighted by ``(end / T) ** exit_weighting`` (more weight on later
  prefixes: early bins carry less evidence, so demanding the same certainty there hurts).
  This serves early exit; it is not the temporal regulariser below;
* temporal regularisation (TRT, Zhang, Xu & Tao 2025: "a time-decaying regularisation that
  constrains early time steps more strongly"): the readout after every bin t = 1..T is pulled
  towards the label by a squared error ``|softmax(o_t) - onehot(y)|^2`` weighted by
  ``temporal_reg * exp(-temporal_reg_decay * (t - 1))`` -- strongest on the first bin,
  weakening over time, so that the early bins learn robust features (small neuromorphic data
  sets overfit on the late evidence). Off (0) by default;
* online training (``online=True``, SLTT: Meng et al., ICCV 2023): the temporal backprop
  paths (through the membrane recurrence) are cut; each bin is run forward with the neurons'
  state detached, its loss is backpropagated at once and the gradients accumulate, so the
  graph never holds more than one bin of the backbone and training memory does not grow with
  T. The objective is the same sum of per-bin terms as below, except that the early-exit loss
  sits on every bin (a bin without a loss gets no gradient once the temporal path is cut);
* firing-rate regularisation: keeps the mean spike rate near ``rate_target``;
* tracking loss: target position (smooth L1, in sensor-size units) and visibility (BCE);
* AMP (bf16) and ``torch.compile`` on CUDA; resume; DDP under ``torchrun``; a progress bar;
  deterministic given the seed on CPU.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
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
    exit_weighting: float = 1.0        # early-exit prefix weights (end / T) ** this (0: equal)
    temporal_reg: float = 0.0          # TRT strength lambda (0: off); strongest on bin 1
    temporal_reg_decay: float = 0.5    # TRT weight lambda * exp(-decay * (t - 1))
    rate_reg: float = 0.0
    rate_target: float = 0.1
    track_weight: float = 1.0
    augment_shift: int = 0             # random spatial shift (pixels of the model input)
    surrogate_schedule: tuple[float, float] | None = None   # alpha start, end
    online: bool = False               # SLTT-style: spatial gradients per bin, memory O(1) in T
    amp: bool = True
    compile: bool = False
    device: str = "auto"
    log_every: int = 10


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA when present), ``cpu``, ``cuda[:N]``; a device this machine's torch
    cannot use is the user's mistake, said in one line (torch's own error is an assertion
    deep inside the first tensor move)."""
    from ..events.errors import UserError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r}: not a torch device (auto, cpu, cuda, cuda:N)") \
            from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: this torch ({torch.__version__}) sees no CUDA "
                            "GPU; use --device cpu (or auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: only {torch.cuda.device_count()} CUDA "
                            "device(s) here")
    elif dev.type != "cpu":
        raise UserError(f"--device {name}: snn4_ros runs on cpu or cuda")
    return dev


def set_threads(n: int) -> None:
    """``n`` CPU threads for torch's ops and for the parallel neuron kernels (numba).

    On an oversubscribed CPU (a shared machine, other jobs) every parallel op waits at a
    barrier for its slowest thread, and a descheduled thread holds all of them up: there one
    thread per process trains several-fold faster than one per core (bench/train_speed.py
    measures both side by side)."""
    torch.set_num_threads(int(n))
    try:
        import numba

        numba.set_num_threads(min(int(n), numba.config.NUMBA_NUM_THREADS))
    except (ImportError, ValueError):
        pass


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


def trt_weights(T: int, strength: float, decay: float) -> list[float]:
    """TRT weights of bins 1..T: ``strength * exp(-decay * (t - 1))``, decreasing in t."""
    return [strength * math.exp(-decay * t) for t in range(T)]


def loss_fn(model: HybridNet, x: torch.Tensor, y: torch.Tensor, tgt: torch.Tensor | None,
            cfg: TrainConfig):
    T = x.shape[0]
    exits = []
    if cfg.per_step_loss > 0 and T >= 4:
        exits = sorted({max(1, T // 4), max(1, T // 2), max(1, 3 * T // 4)} - {T})
    trt = list(range(1, T + 1)) if cfg.temporal_reg > 0 else []
    ends = sorted(set(exits) | set(trt) | {T})
    outs = dict(zip(ends, model.forward_prefixes(x, ends)))
    final = outs[T]
    loss = F.cross_entropy(final.logits, y)
    if exits:
        w = torch.tensor([(e / T) ** cfg.exit_weighting for e in exits], device=x.device)
        w = w / w.sum()
        loss = loss + cfg.per_step_loss * sum(
            wi * F.cross_entropy(outs[e].logits, y) for wi, e in zip(w, exits))
    if trt:
        onehot = F.one_hot(y, final.logits.shape[1]).to(final.logits.dtype)
        loss = loss + sum(
            w * ((torch.softmax(outs[t].logits, 1) - onehot) ** 2).sum(1).mean()
            for w, t in zip(trt_weights(T, cfg.temporal_reg, cfg.temporal_reg_decay), trt)) / T
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


def detach_state(state):
    """A neuron state (NamedTuple, dict of them, or None) cut from the graph: SLTT drops the
    gradient paths through time, and this is where they are dropped."""
    if state is None:
        return None
    if isinstance(state, dict):
        return {k: detach_state(v) for k, v in state.items()}
    if isinstance(state, tuple):
        return type(state)(*(detach_state(v) for v in state))
    return state.detach() if torch.is_tensor(state) else state


def online_step(model: HybridNet, x: torch.Tensor, y: torch.Tensor, tgt: torch.Tensor | None,
                cfg: TrainConfig) -> tuple[float, torch.Tensor]:
    """One batch of SLTT-style online training: backward runs inside, bin by bin (the caller
    steps the optimiser). Returns the loss value and the last bin's logits.

    At bin t the backbone steps from the previous bin's state, detached; the bridge and heads
    read the window of the last ``window`` bins with only bin t's spikes attached; the bin's
    terms of the objective (the final cross-entropy at t = T, the early-exit cross-entropy on
    every earlier bin weighted by ``(t/T) ** exit_weighting``, the TRT term, the firing-rate
    term and, at t = T, the tracking loss) are backpropagated at once."""
    T, B = x.shape[:2]
    earlier = [(t / T) ** cfg.exit_weighting for t in range(1, T)]
    earlier = [w / sum(earlier) for w in earlier] if earlier else []
    trt = trt_weights(T, cfg.temporal_reg, cfg.temporal_reg_decay) if cfg.temporal_reg > 0 \
        else None
    n_neurons = model.neuron_count()
    states: list = [None] * len(model.backbone)
    attn_state = None
    window: list[torch.Tensor] = []
    total, logits = 0.0, None
    for t in range(T):
        h, spikes = x[t], 0.0
        for i, layer in enumerate(model.backbone):
            h, states[i] = layer.step(h, detach_state(states[i]))
            spikes = spikes + h.sum()
        if model.attn is not None:
            h, attn_state = model.attn.step(h, detach_state(attn_state))
        window = window[-(model.cfg.window - 1):] if model.cfg.window > 1 else []
        seq = torch.stack(window + [h])
        logits, pos, vis, _, _ = model.bridge_heads(seq)
        last = t == T - 1
        loss = F.cross_entropy(logits, y) if last else \
            cfg.per_step_loss * earlier[t] * F.cross_entropy(logits, y)
        if trt is not None:
            onehot = F.one_hot(y, logits.shape[1]).to(logits.dtype)
            loss = loss + trt[t] * ((torch.softmax(logits, 1) - onehot) ** 2).sum(1).mean() / T
        if cfg.rate_reg > 0:          # this bin's rate: (rate_t - target)^2, averaged over bins
            loss = loss + cfg.rate_reg * (spikes / (B * n_neurons) - cfg.rate_target) ** 2 / T
        if last and tgt is not None and pos is not None:
            v = tgt[:, 2]
            scale = torch.tensor([model.cfg.sensor_width, model.cfg.sensor_height],
                                 dtype=x.dtype, device=x.device)
            if v.sum() > 0:
                loss = loss + cfg.track_weight * F.smooth_l1_loss(
                    pos[v > 0] / scale, tgt[v > 0, :2] / scale, beta=0.05)
            loss = loss + 0.1 * F.binary_cross_entropy_with_logits(vis, v)
        if loss.requires_grad:
            loss.backward()
        total += float(loss.detach())
        window.append(h.detach())
    return total, logits.detach()


def backward_step(model: HybridNet, x: torch.Tensor, y: torch.Tensor, tgt: torch.Tensor | None,
                  cfg: TrainConfig, amp: bool = False) -> tuple[float, torch.Tensor]:
    """Forward and backward of one batch, online (``cfg.online``: bin by bin, memory flat in
    T) or through time (BPTT, optionally under bfloat16 autocast); the caller zeroes the
    gradients before and steps the optimiser after. Returns the loss value and the logits.
    One place for what ``train``, ``bench/online.py`` and ``bench/ablation.py`` time."""
    if cfg.online:
        return online_step(model, x, y, tgt, cfg)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        loss, logits = loss_fn(model, x, y, tgt, cfg)
    loss.backward()
    return float(loss.detach()), logits


def train(model: HybridNet, data: FrameData, cfg: TrainConfig, val: FrameData | None = None,
          resume: dict | None = None, progress: bool = True,
          on_epoch: Callable[[int, HybridNet], None] | None = None) -> dict:
    """Train in place; returns the history (loss, accuracy per epoch, val accuracy).

    ``progress`` shows a bar per epoch; one summary line per epoch is printed regardless.
    ``on_epoch(epoch, model)`` is called after every epoch (1-based), e.g. to score a copy of
    the model on held-out data for a convergence curve; it must leave the model's parameters
    and buffers as it found them (score a ``copy.deepcopy``), so that the run trains exactly as
    it would without it.
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
    if schedule is not None and any(isinstance(m, Surrogate) and m.learnable
                                    for m in model.modules()):
        raise ValueError("a surrogate schedule and a learnable surrogate width exclude each "
                         "other (the width is either set by the schedule or learned)")
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
            opt.zero_grad(set_to_none=True)
            loss_value, logits = backward_step(model, x, y, tgt, cfg, amp)
            if world > 1:
                for p in model.parameters():
                    if p.grad is not None:
                        torch.distributed.all_reduce(p.grad)
                        p.grad /= world
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            step += 1
            tot_loss += loss_value * len(idx)
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
        if on_epoch is not None and rank == 0:
            on_epoch(epoch + 1, model)
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

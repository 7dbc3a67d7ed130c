"""ANN-to-SNN conversion with QCFS: train the network as an ANN, run it as a spiking one.

The recipe (Bu et al., "Optimal ANN-SNN conversion for high-accuracy and ultra-low-latency
spiking neural networks", ICLR 2022):

1. **The QCFS twin** of a preset: the same convolutions, batch norms, bridge and heads, with
   every spiking neuron of the backbone replaced by the quantisation-clip-floor-shift
   activation ``h(z) = lam/L clip(floor(z L/lam + 1/2), 0, L)`` (``neurons.QCFS``: L levels,
   a learnable clip ``lam`` per layer). It is trained by the project's trainer (seeded,
   AdamW + cosine, progress bar, batch-norm recalibration) on **the window's events
   accumulated into one frame** (one bin of the whole window, e.g. 300 ms for N-MNIST): an
   ANN has no time axis, and the accumulated frame is what the converted network's firing
   rates see on average. (Per-step training would give the ANN a time axis it then has to
   lose again through the bridge's temporal attention, and make every step's activation a
   separate quantity for the spiking network to match, with T times fewer events each.)
2. **Conversion**: weights copied; each layer's threshold from its ``lam`` (threshold
   balancing, folded into the weights so that spikes stay 0/1 and thresholds 1: the conv
   after layer l-1 is scaled by ``lam[l-1]``, layer l's batch-norm affine divided by
   ``lam[l]``, the last ``lam`` goes into the bridge's first linear maps); IF neurons with
   reset by subtraction, the membrane started at half threshold (QCFS's shift); the window
   cut into T bins, the first layer's weights multiplied by T so that the mean input over
   the T steps is the accumulated frame; the bridge and heads read the backbone's firing
   rate over the window (``bridge_input="rate"``). With a constant input, T = L steps give
   the ANN's activations exactly (tests/test_convert.py).
3. **Error compensation** (one option, ``compensation="signed"``): signed spikes with memory
   (``neurons.IF(signed=True)``): a neuron whose membrane falls below 0 after it has fired
   takes a spike back (-1). Why this one and not optimised membrane initialisation or dual
   thresholds: event bins deliver their input unevenly (N-MNIST's three saccades, a gesture's
   strokes), so a neuron fires on an early burst that later inhibition should cancel -- the
   "unevenness" error, which a better starting membrane cannot remove (QCFS's half threshold
   is already the optimum for an even input) while a -1 spike does. The price: spikes are
   -1/0/1 (each still one addition or subtraction per synapse; synops count both).

Two input codings, measured side by side (``VARIANTS``): ``bins`` -- bin t of the window
drives step t, event-driven, what the streaming runner and the nodes run -- and ``window``
-- the bins' mean presented at every step, a constant current: the direct coding QCFS's
theory assumes (T = L exact), which needs the whole window before the first step. On real
N-MNIST the bins of a few milliseconds carry each pixel's events in bursts; the error that
unevenness causes (a neuron fires on a burst its later, negative input should cancel, or
has to fire more than once in one step) dominates the bins coding, and the signed spikes
take out the first half of it (bench/convert.py).

The converted network is an ordinary snn4 HybridNet (safetensors + card, ``checkpoint.load``,
``StreamingRunner``, ``snn4 eval``/``snn4 replay``). It does not map onto the Loihi 2
profile (``check_loihi`` says why: the chip's CUBA-LIF as models/loihi.py uses it resets to
zero, has no per-channel bias for the batch norm and no initial membrane), and neither do
the SDSA presets (their spike products are not rates) nor the Loihi preset: ``check_convertible``
refuses them with the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..events.errors import UserError
from .datasets import FrameData
from .hybridnet import HybridNet, HybridNetConfig, preset_config

COMPENSATIONS = ("none", "signed")
CODINGS = ("bins", "window")
SWEEP = (1, 2, 4, 8, 16, 32)
# the sweep's columns: (key, input coding, compensation)
VARIANTS = (("none", "bins", "none"), ("signed", "bins", "signed"),
            ("window_none", "window", "none"), ("window_signed", "window", "signed"))


class ConversionError(UserError):
    """A network or setting that cannot be converted; the message says why."""


def check_convertible(cfg: HybridNetConfig) -> None:
    """Raise ConversionError for what has no rate-coded equivalent."""
    problems = []
    if cfg.sdsa:
        problems.append("its spike-driven self-attention multiplies spikes (Q AND mask, K*V): "
                        "a product of two firing rates is not the rate of the product, so "
                        "no QCFS twin converts it")
    if cfg.neuron == "loihi":
        problems.append("its Loihi layers (LoihiConv) have no batch norm and CUBA-LIF neurons "
                        "that reset to zero: a QCFS conversion needs IF neurons with reset by "
                        "subtraction and a membrane started at half threshold")
    if cfg.neuron in ("if", "qcfs"):
        problems.append(f"it is already a {cfg.neuron.upper()} network (convert the preset)")
    if problems:
        raise ConversionError(f"{cfg.preset} cannot be converted: " + "; ".join(problems)
                              + " (convertible: hybridnet-nmnist, hybridnet-s, hybridnet-xs)")


def window_us(cfg: HybridNetConfig) -> int:
    """The time a preset's window covers (its bins times their width)."""
    return int(cfg.window) * int(cfg.bin_us)


def qcfs_config(preset: str | HybridNetConfig, levels: int, lam: float = 3.0,
                **overrides) -> HybridNetConfig:
    """The QCFS twin of a preset: QCFS activations for the neurons, one bin of the whole
    window (the accumulated events), the bridge reading rates."""
    cfg = preset if isinstance(preset, HybridNetConfig) else preset_config(preset, **overrides)
    check_convertible(cfg)
    if int(levels) != levels or not 1 <= levels <= 256:
        raise ConversionError(f"--levels must be an integer in 1..256, got {levels}")
    kw = cfg.to_dict() | {"neuron": "qcfs", "neuron_kwargs": {"levels": int(levels),
                                                              "lam": float(lam)},
                          "window": 1, "bin_us": window_us(cfg), "bridge_input": "rate",
                          "learnable_surrogate": False}
    return HybridNetConfig(**kw)


def snn_config(ann_cfg: HybridNetConfig, steps: int, compensation: str = "none",
               coding: str = "bins") -> HybridNetConfig:
    """The converted network's config: IF neurons, the window cut into ``steps`` bins, fed
    bin by bin (``coding="bins"``) or as their mean at every step (``"window"``)."""
    if coding not in CODINGS:
        raise ConversionError(f"coding must be one of {CODINGS}, got {coding!r}")
    if compensation not in COMPENSATIONS:
        raise ConversionError(f"compensation must be one of {COMPENSATIONS}, got "
                              f"{compensation!r}")
    if ann_cfg.neuron != "qcfs":
        raise ConversionError(f"{ann_cfg.preset}: not a QCFS twin (neuron {ann_cfg.neuron!r}); "
                              "train one with snn4 convert")
    total = window_us(ann_cfg)
    if steps < 1 or total % steps:
        raise ConversionError(f"T={steps} steps do not divide the {total} us window into whole "
                              "microseconds")
    kw = ann_cfg.to_dict() | {"neuron": "if",
                              "neuron_kwargs": {"v_init": 0.5,
                                                "signed": compensation == "signed"},
                              "window": int(steps), "bin_us": total // steps,
                              "bridge_input": "rate", "input_coding": coding}
    return HybridNetConfig(**kw)


def thresholds(ann: HybridNet) -> list[float]:
    """Every backbone layer's learnt clip ``lam``: its threshold after conversion."""
    return [float(layer.neuron.lam.detach().abs().clamp(min=1e-4)) for layer in ann.backbone]


@torch.no_grad()
def convert(ann: HybridNet, steps: int, compensation: str = "none",
            coding: str = "bins") -> HybridNet:
    """The spiking network of a trained QCFS twin, for ``steps`` bins per window."""
    cfg = snn_config(ann.cfg, steps, compensation, coding)
    snn = HybridNet(cfg).to(next(ann.parameters()).dtype)
    state = {k: v for k, v in ann.state_dict().items() if not k.endswith(".neuron.lam")}
    snn.load_state_dict(state)
    lams = thresholds(ann)
    for i, layer in enumerate(snn.backbone):
        # the input of layer i in thresholds of layer i-1 (a spike stands for lam[i-1]); the
        # first layer's input is one bin of T, i.e. 1/T of the accumulated frame on average
        layer.conv.weight.mul_(steps if i == 0 else lams[i - 1])
        layer.bn.weight.div_(lams[i])           # inference BN is affine: z / lam
        layer.bn.bias.div_(lams[i])
    # the bridge reads the last layer's rate r = h / lam: its first linear maps take the lam
    # (ERS's conv of channel mean and max, SAT's temporal conv; both positively homogeneous)
    if snn.ers is not None:
        snn.ers.conv.weight.mul_(lams[-1])
        snn.sat.temporal.weight.mul_(lams[-1])
    else:                                   # the plain-mean bridge: the head's conv reads it
        snn.head[0].weight.mul_(lams[-1])
    return snn.eval()


# ---------------------------------------------------------------------- data on a fine grid
def rebin(data: FrameData, steps: int) -> FrameData:
    """Frames of ``steps`` bins from frames of a multiple of them (sums of adjacent bins,
    counts clipped at 255 as the frame transform clips them): one load serves every T."""
    n, t_fine = data.frames.shape[:2]
    if t_fine % steps:
        raise ValueError(f"{t_fine} bins do not group into {steps}")
    g = t_fine // steps
    out = torch.empty((n, steps, *data.frames.shape[2:]), dtype=torch.uint8)
    for i in range(0, n, 128):
        f = data.frames[i:i + 128]
        s = f.reshape(len(f), steps, g, *f.shape[2:]).to(torch.int32).sum(2)
        out[i:i + 128] = s.clamp_(0, 255).to(torch.uint8)
    return FrameData(out, data.labels, data.classes, data.targets, data.source)


def fine_config(cfg: HybridNetConfig, steps: list[int]) -> HybridNetConfig:
    """The preset's geometry with the finest bins a sweep needs (the least common multiple
    of the steps; every other grid is a sum of these bins)."""
    fine = int(np.lcm.reduce([int(s) for s in steps]))
    total = window_us(cfg)
    if total % fine:
        raise ConversionError(f"the {total} us window does not divide into {fine} bins")
    return HybridNetConfig(**(cfg.to_dict() | {"window": fine, "bin_us": total // fine}))


@torch.no_grad()
def predictions(model: HybridNet, data: FrameData, batch: int = 32) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(data), batch):
        x = data.frames[i:i + batch].float().transpose(0, 1)
        out.append(model(x).logits.argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def sweep(ann: HybridNet, fine: FrameData, steps=SWEEP, variants=VARIANTS,
          log: Callable[[str], None] | None = None) -> dict:
    """Accuracy of the ANN twin (accumulated frames) and of its conversion at every T, with
    and without compensation, fed bin by bin and as a constant current, on the same
    samples; plus how often the SNN agrees with the ANN's answer (what conversion is meant
    to preserve)."""
    labels = fine.labels.numpy()
    p_ann = predictions(ann, rebin(fine, 1))
    rows = []
    for T in steps:
        data_t = rebin(fine, T)
        row = {"T": int(T), "bin_ms": window_us(ann.cfg) / T / 1000}
        for key, coding, comp in variants:
            p = predictions(convert(ann, T, comp, coding), data_t)
            row[key] = {"accuracy": round(float((p == labels).mean()), 4),
                         "agrees_with_ann": round(float((p == p_ann).mean()), 4)}
        rows.append(row)
        if log:
            log(f"  T={T:<3d} " + "  ".join(f"{k}: {row[k]['accuracy']:.4f}"
                                            for k, _, _ in variants))
    return {"n": len(fine), "ann_accuracy": round(float((p_ann == labels).mean()), 4),
            "levels": ann.cfg.neuron_kwargs.get("levels"), "rows": rows}


# ---------------------------------------------------------------------- the whole run
@dataclass
class ConvertRun:
    """Everything ``snn4 convert`` takes."""

    dataset: str
    out: str                               # the converted SNN; the ANN twin goes to OUT_ann
    preset: str = "hybridnet-nmnist"
    levels: int = 8
    steps: int = 8                         # T of the saved SNN
    compensation: str = "signed"           # of the saved SNN (the sweep shows both)
    coding: str = "bins"                   # of the saved SNN (the sweep shows both)
    sweep: tuple[int, ...] = SWEEP
    val: str | None = None
    val_split: float = 0.2
    lam: float = 3.0                       # initial clip of every QCFS layer
    train: dict = field(default_factory=dict)   # TrainConfig fields (epochs, lr, ...)
    progress: bool = True
    command: str = ""


def ann_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + "_ann")


def run_convert(run: ConvertRun, log: Callable[[str], None] = print) -> dict:
    """Load the data once on the finest grid, train the QCFS twin on the accumulated
    frames, convert, sweep T on the held-out samples, save both models with their cards."""
    from . import checkpoint
    from .datasets import load_dataset
    from .evaluate import evaluate
    from .loihi import LoihiCompatibilityError, check_loihi
    from .train import TrainConfig, train

    base = preset_config(run.preset)
    check_convertible(base)
    if run.compensation not in COMPENSATIONS:
        raise ConversionError(f"--compensation must be one of {COMPENSATIONS}")
    steps_all = sorted({int(s) for s in run.sweep} | {int(run.steps)})
    if any(s < 1 for s in steps_all):
        raise ConversionError("time steps must be >= 1")
    ann_cfg = qcfs_config(base, run.levels, run.lam)
    fine_cfg = fine_config(base, steps_all)
    snn_config(ann_cfg, run.steps, run.compensation, run.coding)   # fails before data loads
    tc = TrainConfig(**({"per_step_loss": 0.0} | run.train))
    data = load_dataset(run.dataset, fine_cfg, train=True)
    if run.val:
        val = load_dataset(run.val, fine_cfg, train=False)
        validation = run.val
    elif run.val_split > 0:
        data, val = data.split(run.val_split, seed=tc.seed)
        validation = f"{run.val_split:.0%} of the training data, held out (stratified, seed " \
                     f"{tc.seed})"
    else:
        raise ConversionError("give --val-split or --val: the T sweep needs held-out samples")
    if not len(val):
        raise ConversionError("no held-out samples (--val-split too small for the data)")
    torch.manual_seed(tc.seed)
    ann = HybridNet(ann_cfg)
    log(f"training the QCFS twin of {base.preset} (L={run.levels}, {ann.param_count():,} "
        f"parameters) on {len(data)} samples of {data.source} accumulated over "
        f"{window_us(base) / 1000:g} ms; {len(val)} held out")
    hist = train(ann, rebin(data, 1), tc, val=rebin(val, 1), progress=run.progress)
    ann.cpu().eval()
    log(f"converting (thresholds from lam: {', '.join(f'{v:.3f}' for v in thresholds(ann))});"
        f" sweeping T on the {len(val)} held-out samples")
    table = sweep(ann, val, run.sweep)
    snn = convert(ann, run.steps, run.compensation, run.coding)
    try:
        check_loihi(snn)
        loihi = "maps"
    except LoihiCompatibilityError as exc:
        loihi = "does not map: " + " ".join(str(exc).split("\n")[1:2]).strip()
    ann_metrics = evaluate(ann, rebin(val, 1))
    snn_metrics = evaluate(snn, rebin(val, run.steps))
    keep = ("accuracy", "n", "mean_decision_bins", "synops_per_sample", "macs_per_sample",
            "tracking_error_px_mean")
    training = {"dataset": run.dataset, "samples": len(data), "validation": validation,
                "config": asdict(tc),
                "history": {k: hist[k] for k in ("loss", "train_acc", "val_acc", "seconds")},
                "input": f"the window's events accumulated into one frame "
                         f"({window_us(base) / 1000:g} ms)"}
    ann_base = ann_path(run.out)
    conversion = {"method": "QCFS (Bu et al., ICLR 2022): threshold balancing from the learnt "
                            "clip lam, IF neurons with reset by subtraction, membrane started "
                            "at half threshold",
                  "levels": run.levels, "lam": [round(v, 6) for v in thresholds(ann)],
                  "steps": run.steps, "bin_us": snn.cfg.bin_us,
                  "compensation": run.compensation, "coding": run.coding,
                  "compensation_note": "signed spikes with memory (-1 where the membrane "
                                       "falls below 0 after firing): reduces the unevenness "
                                       "error of event bins" if run.compensation == "signed"
                                       else "none",
                  "ann_twin": ann_base.name, "loihi": loihi,
                  "held_out": {"val": run.val, "val_split": run.val_split, "seed": tc.seed},
                  "sweep": table}
    checkpoint.save(ann, ann_base, {"training": training,
                                    "metrics": {k: ann_metrics[k] for k in keep
                                                if k in ann_metrics},
                                    "qcfs_twin_of": base.preset,
                                    "converted": Path(run.out).name,
                                    "command": run.command})
    from .plots import training_plot
    training_plot(hist, ann_base.with_name(ann_base.name + ".training.png"))
    st, cp = checkpoint.save(snn, run.out, {"training": training,
                                             "metrics": {k: snn_metrics[k] for k in keep
                                                         if k in snn_metrics},
                                             "conversion": conversion,
                                             "command": run.command})
    return {"safetensors": st, "card": cp, "ann": ann_base, "sweep": table, "loihi": loihi,
            "ann_accuracy": ann_metrics["accuracy"], "snn_accuracy": snn_metrics["accuracy"],
            "thresholds": thresholds(ann)}

"""One training run, from dataset specs to a saved checkpoint with its model card: what
``snn4 train`` runs, on one process or on several under ``torchrun`` (DDP).

Kept out of the command line so that the model card's schema, resuming and the DDP teardown
live next to the training they belong to, and a script can train a model the way the CLI
does (``run_training(TrainRun(...))``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from . import checkpoint
from .datasets import FrameData, load_dataset
from .evaluate import evaluate
from .hybridnet import HybridNet, preset_config
from .train import TrainConfig, end_distributed, train

CARD_METRICS = ("accuracy", "n", "mean_decision_bins", "synops_per_sample", "macs_per_sample",
                "tracking_error_px_mean")


@dataclass
class TrainRun:
    """Everything ``snn4 train`` takes; ``train.seed`` also seeds the model and the split."""

    dataset: str                              # dataset spec (models.datasets.load_dataset)
    out: str                                  # checkpoint path without suffix
    preset: str = "hybridnet-s"
    config: dict = field(default_factory=dict)   # HybridNetConfig overrides of the preset
    window: int | None = None                 # time bins per sample (None: the preset's)
    val: str | None = None                    # a separate validation dataset spec
    val_split: float = 0.0                    # else this fraction held out (stratified)
    resume: bool = False                      # continue from ``out``
    train: TrainConfig = field(default_factory=TrainConfig)
    progress: bool = True
    command: str = ""                         # how it was started, for the model card


def model_card(run: TrainRun, data: FrameData, val: FrameData | None, hist: dict,
               metrics: dict) -> dict:
    """The training part of the model card (checkpoint.save adds the architecture)."""
    validation = run.val or (f"{run.val_split:.0%} of the training data, held out "
                             "(stratified)" if val is not None else None)
    return {"training": {"dataset": run.dataset, "samples": len(data), "validation": validation,
                         "config": dict(hist["config"]),
                         "history": {k: hist[k] for k in ("loss", "train_acc", "val_acc",
                                                          "seconds")}},
            "metrics": {k: metrics[k] for k in CARD_METRICS if k in metrics},
            "command": run.command}


def run_training(run: TrainRun, log: Callable[[str], None] = print) -> dict | None:
    """Train, evaluate on the validation data, save the checkpoint, its card, the resume
    state and the training plot. Returns ``{"safetensors", "card", "metrics"}`` on rank 0
    and None on the other DDP ranks (rank 0 alone evaluates and writes)."""
    from .plots import training_plot

    cfg = preset_config(run.preset, **run.config)
    if run.window:
        cfg.window = run.window
    torch.manual_seed(run.train.seed)
    data = load_dataset(run.dataset, cfg, train=True)
    val = None
    if run.val:
        val = load_dataset(run.val, cfg, train=False)
    elif run.val_split > 0:
        data, val = data.split(run.val_split, seed=run.train.seed)
    model = HybridNet(cfg)
    resume = None
    if run.resume:
        model, _ = checkpoint.load(run.out)
        model.train()
        resume = checkpoint.load_resume(run.out)
    if os.environ.get("RANK", "0") == "0":
        log(f"training {cfg.preset} ({model.param_count():,} parameters) on {len(data)} "
            f"samples of {data.source}" + (f", validating on {len(val)}" if val is not None
                                           else ""))
    hist = train(model, data, run.train, val=val, resume=resume, progress=run.progress)
    if end_distributed() != 0:
        return None
    model.cpu().eval()
    metrics = evaluate(model, val) if val is not None and len(val) else {}
    st, cp = checkpoint.save(model, run.out, model_card(run, data, val, hist, metrics))
    checkpoint.save_resume(run.out, hist["optimizer"], hist["scheduler"], run.train.epochs,
                           hist)
    training_plot(hist, Path(st).with_name(Path(st).stem + ".training.png"))
    return {"safetensors": st, "card": cp, "metrics": metrics}

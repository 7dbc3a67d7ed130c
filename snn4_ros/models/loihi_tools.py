"""``snn4 loihi``: float -> fixed conversion with quantisation-aware training, the Lava export,
and the inputs of the bit-exact check.

    snn4 loihi quantize --model FLOAT --out FIXED --dataset SPEC --val SPEC [--qat-epochs N]
    snn4 loihi export --model FIXED [--check-inputs FILE.npz]

``quantize`` reports three accuracies on the validation data -- the float model, the same
weights converted to fixed point (post-training), and after QAT -- and records them in the
fixed model's card, then writes the Lava export next to the checkpoint.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch

from . import checkpoint
from .datasets import clip_frames, load_dataset
from .evaluate import evaluate
from .hybridnet import HybridNet
from .loihi import (LoihiCompatibilityError, check_loihi, export_lava, quantize_model,
                    set_fixed, write_check_file)
from .train import TrainConfig, train


def quantize(model_path: str, out: str, dataset: str, val: str, qat_epochs: int = 5,
             lr: float = 5e-4, batch_size: int = 16, seed: int = 0, progress: bool = True,
             command: str = "") -> dict:
    net, card = checkpoint.load(model_path)
    check_loihi(net)                      # a clear list of what does not map, before any work
    val_data = load_dataset(val, net.cfg, train=False)
    acc_float = evaluate(net, val_data)["accuracy"]
    fixed = copy.deepcopy(net)
    vths = quantize_model(fixed)
    acc_ptq = evaluate(fixed, val_data)["accuracy"]
    hist = None
    if qat_epochs > 0:
        torch.manual_seed(seed)
        data = load_dataset(dataset, net.cfg, train=True)
        tc = TrainConfig(epochs=qat_epochs, batch_size=batch_size, lr=lr, seed=seed,
                         weight_decay=0.0, per_step_loss=0.5)
        fixed.train()
        t0 = time.perf_counter()
        hist = train(fixed, data, tc, val=None, progress=progress)
        hist["seconds_total"] = time.perf_counter() - t0
        fixed.eval()
    res = evaluate(fixed, val_data)
    summary = {"float_accuracy": acc_float, "post_training_fixed_accuracy": acc_ptq,
               "qat_fixed_accuracy": res["accuracy"], "validation": val,
               "drop_points": 100 * (acc_float - res["accuracy"]), "qat_epochs": qat_epochs,
               "thresholds_vth": vths}
    new_card = {"training": dict(card.get("training", {}), loihi_quantization={
                    **summary, "dataset": dataset, "lr": lr,
                    "history": {k: hist[k] for k in ("loss", "train_acc")} if hist else None}),
                "metrics": {k: res[k] for k in ("accuracy", "n", "mean_decision_bins",
                                                "synops_per_sample", "macs_per_sample")},
                "float_model": str(model_path), "command": command,
                "loihi": {"arithmetic": "Lava PyConvModelFixed + PyLifModelBitAcc (fixed_pt)",
                          "weights": "even integers in [-256, 254], weight_exp 0",
                          "thresholds_vth": vths}}
    st, cp = checkpoint.save(fixed, out, new_card)
    export_lava(fixed, Path(out))
    return summary | {"checkpoint": str(st)}


def check_clips(net: HybridNet, real: list[str], synthetic: str | None) -> list:
    """Input clips for the bit-exact check: the first window of each real recording and
    the clips of a synthetic dataset spec, as the model's own frames."""
    from ..events import read_recording

    cfg = net.cfg
    clips = []
    for path in real:
        ea, _, _ = read_recording(path)
        ev = ea.events
        if (ea.width, ea.height) != (cfg.sensor_width, cfg.sensor_height):
            from ..events.frames import rescale_events
            ev = rescale_events(ev, (ea.width, ea.height), (cfg.sensor_width,
                                                             cfg.sensor_height))
        f = clip_frames(ev, cfg, cfg.sensor_width, cfg.sensor_height,
                    int(ev["t"][0]) if len(ev) else 0, cfg.window)
        clips.append((f"real:{Path(path).name}", torch.from_numpy(f)))
    if synthetic:
        data = load_dataset(synthetic, cfg, train=False)
        for i in range(len(data)):
            clips.append((f"{synthetic}#{i} ({data.classes[int(data.labels[i])]})",
                          data.frames[i]))
    return clips


def export(model_path: str, check_inputs: str | None = None, real: list[str] | None = None,
           synthetic: str | None = "synthetic:n=2,seed=2") -> dict:
    net, card = checkpoint.load(model_path)
    set_fixed(net, True)
    st, js = export_lava(net, Path(model_path))
    out = {"safetensors": str(st), "json": str(js)}
    if check_inputs:
        clips = check_clips(net, real or [], synthetic)
        out |= write_check_file(net, clips, check_inputs)
        out["check_inputs"] = check_inputs
    return out


__all__ = ["quantize", "export", "check_clips", "LoihiCompatibilityError"]

"""Checkpoints: safetensors weights + a JSON model card. Nothing is ever unpickled.

``NAME.safetensors`` holds the tensors; ``NAME.json`` (the card) holds the architecture,
preset, classes, input geometry and time bin, training data, metrics and the command that
produced the model. Loading checks both and says what is wrong in words.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from pathlib import Path

import torch

from ..events.errors import UserError
from .hybridnet import HybridNet, HybridNetConfig

CARD_FORMAT = "snn4-hybridnet/1"


class CheckpointError(UserError):
    """A checkpoint that cannot be loaded: missing, corrupted, or for another architecture."""


def paths(base: str | Path) -> tuple[Path, Path]:
    base = Path(base)
    if base.suffix in (".safetensors", ".json"):
        base = base.with_suffix("")
    return base.with_suffix(".safetensors"), base.with_suffix(".json")


def save(model: HybridNet, base: str | Path, card_extra: dict | None = None) -> tuple[Path, Path]:
    from safetensors.torch import save_file

    st_path, card_path = paths(base)
    st_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(st_path), metadata={"format": CARD_FORMAT})
    card = {"format": CARD_FORMAT, "architecture": "SNN4-HybridNet",
            "preset": model.cfg.preset, "config": model.cfg.to_dict(),
            "classes": list(model.cfg.classes),
            "input": {"channels": model.cfg.in_channels, "width": model.cfg.input_width,
                      "height": model.cfg.input_height, "sensor_width": model.cfg.sensor_width,
                      "sensor_height": model.cfg.sensor_height,
                      "downsample": model.cfg.downsample, "bin_us": model.cfg.bin_us,
                      "window_bins": model.cfg.window},
            "parameters": model.param_count(), "macs_per_bin": model.macs_per_step(),
            "weights": st_path.name}
    card.update(card_extra or {})
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    # safetensors creates its file owner-only (0600); a model is shared like its card (the
    # umask's mode), or another user -- a ROS node's -- could read the card but not the weights
    os.chmod(st_path, stat.S_IMODE(os.stat(card_path).st_mode))
    return st_path, card_path


def _check_safetensors(path: Path) -> None:
    """Refuse anything that is not a well-formed safetensors file (pickles included)."""
    raw = path.read_bytes()[:8]
    if len(raw) < 8:
        raise CheckpointError(f"{path}: too short to be a safetensors file")
    n = struct.unpack("<Q", raw)[0]
    if n > 100_000_000:
        raise CheckpointError(f"{path}: not a safetensors file (is it a pickle / .pt?); "
                              "snn4_ros only loads safetensors")
    with open(path, "rb") as f:
        f.seek(8)
        header = f.read(n)
    try:
        json.loads(header)
    except ValueError:
        raise CheckpointError(f"{path}: corrupted safetensors header") from None


def load_card(base: str | Path) -> dict:
    _, card_path = paths(base)
    if not card_path.exists():
        raise CheckpointError(f"{card_path}: model card missing (every checkpoint ships one)")
    try:
        card = json.loads(card_path.read_text())
    except ValueError as exc:
        raise CheckpointError(f"{card_path}: not valid JSON ({exc})") from None
    if card.get("format") != CARD_FORMAT:
        raise CheckpointError(f"{card_path}: unknown card format {card.get('format')!r}")
    return card


def load(base: str | Path, expect_preset: str | None = None,
         map_location: str = "cpu") -> tuple[HybridNet, dict]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    st_path, _ = paths(base)
    if not st_path.exists():
        raise CheckpointError(f"{st_path}: no such checkpoint")
    card = load_card(base)
    if expect_preset is not None and card["preset"] != expect_preset:
        raise CheckpointError(f"{st_path}: checkpoint is preset {card['preset']!r}, "
                              f"expected {expect_preset!r}")
    _check_safetensors(st_path)
    try:
        tensors = load_file(str(st_path), device=map_location)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{st_path}: corrupted safetensors file ({exc})") from None
    cfg = HybridNetConfig(**card["config"])
    model = HybridNet(cfg)
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    shape = [k for k in own if k in tensors and tuple(own[k].shape) != tuple(tensors[k].shape)]
    if missing or extra or shape:
        raise CheckpointError(
            f"{st_path}: weights do not match preset {cfg.preset!r} "
            f"(missing {missing[:3]}, unexpected {extra[:3]}, wrong shape {shape[:3]}); "
            "is it a checkpoint of another preset?")
    model.load_state_dict(tensors)
    for mod in model.modules():                 # keep the channels-last layout
        if isinstance(mod, torch.nn.Conv2d):
            mod.weight.data = mod.weight.data.contiguous(memory_format=torch.channels_last)
    return model.eval(), card


def record_evaluation(base: str | Path, dataset: str, res: dict) -> None:
    """Append an evaluation result (the headline figures) to a model card."""
    _, card_path = paths(base)
    card = load_card(base)
    keep = ("accuracy", "n", "mean_decision_bins", "early_exit_threshold", "synops_per_sample",
            "macs_per_sample", "tracking_error_px_mean", "energy_estimate", "on_training_data")
    entry = {"dataset": dataset, **{k: res[k] for k in keep if k in res}}
    card.setdefault("evaluations", [])
    card["evaluations"] = [e for e in card["evaluations"] if e.get("dataset") != dataset]
    card["evaluations"].append(entry)
    card_path.write_text(json.dumps(card, indent=2) + "\n")


def save_resume(path: str | Path, optimizer_state: dict, scheduler_state: dict, epoch: int,
                history: dict) -> None:
    """Optimiser and schedule state for ``snn4 train --resume``, without pickle: tensors in
    safetensors, the rest in JSON beside them."""
    from safetensors.torch import save_file

    path = Path(path)
    sd = optimizer_state
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    save_file(tensors, str(path.with_suffix(".resume.safetensors")))
    hist = {k: v for k, v in history.items() if k not in ("optimizer", "scheduler")}
    path.with_suffix(".resume.json").write_text(json.dumps(
        {"param_groups": sd["param_groups"], "scalars": scalars, "epoch": epoch,
         "scheduler": scheduler_state,
         "history": hist}, default=float))


def load_resume(path: str | Path) -> dict:
    from safetensors.torch import load_file

    path = Path(path)
    meta_path = path.with_suffix(".resume.json")
    if not meta_path.exists():
        raise CheckpointError(f"{meta_path}: no resume state next to the checkpoint")
    meta = json.loads(meta_path.read_text())
    st_path = path.with_suffix(".resume.safetensors")
    _check_safetensors(st_path)
    tensors = load_file(str(st_path))
    state: dict = {}
    for key, v in list(tensors.items()) + list(meta["scalars"].items()):
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    return {"optimizer": {"state": state, "param_groups": meta["param_groups"]},
            "scheduler": meta["scheduler"], "epoch": meta["epoch"], "history": meta["history"]}

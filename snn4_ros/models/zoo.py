"""Where the shipped models live: the source tree's models/, or share/snn4_ros/models of an
install (colcon or pip), or a folder named by SNN4_MODELS."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..events.errors import UserError, did_you_mean

# The simulator's model: the 11 DVS128-Gesture classes, learned from simulated events only.
DEMO_MODEL = "hybridnet_gesture_synth"
# Opt-in: DEMO_MODEL's backbone with a bridge and heads reading the newest 3 bins, trained
# on simulated gesture streams (models/streams.py, tools/train_models.sh stream): it follows
# a change of gesture sooner, but reads less evidence per decision (bench/onset.py), so it is
# not the default
STREAM_MODEL = "hybridnet_gesture_synth_stream"
# Opt-in: DEMO_MODEL trained end to end on simulated gesture streams, every parameter, reading
# the newest 2 bins (models/stream_train.py, tools/train_models.sh stream-e2e): onset ->
# command within TrueNorth's 105 ms on the labelled bag at its fastest controller setting, but
# below the 95 % bar on isolated clips and with more wrong commands (bench/onset.py), so not
# the default. Its own backbone: the real-camera model (on DEMO_MODEL's) is not built on it
E2E_MODEL = "hybridnet_gesture_synth_e2e"
# The real-camera model: the gestures validated on real recordings (the right-hand wave,
# taught from the 12 real DVS128 clips on DEMO_MODEL's backbone: tools/train_models.sh
# real) or "none". The simulator-only gestures fire on real scenes without a gesture
# (~61 command episodes per minute, bench/realworld.py), so a real camera never gets them.
REAL_MODEL = "hybridnet_gesture_real"


def default_model(source: str | None) -> str:
    """The model a graph runs when none is named: the simulator's for the synthetic source,
    the real-camera model for everything else (a camera, a bag, a recording)."""
    return DEMO_MODEL if str(source or "").startswith("synthetic") else REAL_MODEL


# the controller settings a model card may hold (``card["controller"]``: those the model was
# validated with; ``snn4 replay`` uses them when no --controller is given)
CONTROLLER_KEYS = ("min_confidence", "debounce", "agree_window", "hold_s", "deadman_s")


def model_controller(card: dict | None) -> dict:
    """The controller settings ``card`` says its model was validated with (a subset of
    ``CONTROLLER_KEYS``; a taught model's gesture table is not among them)."""
    c = (card or {}).get("controller") or {}
    return {k: c[k] for k in CONTROLLER_KEYS if k in c}


def model_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("SNN4_MODELS"):
        dirs.append(Path(os.environ["SNN4_MODELS"]))
    dirs.append(Path(__file__).resolve().parents[2] / "models")
    dirs.append(Path(sys.prefix) / "share" / "snn4_ros" / "models")
    # the ament index (what ament_index_python's get_package_share_directory reads), without
    # importing ROS here: the first prefix that registers the package
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        if (Path(prefix) / "share/ament_index/resource_index/packages/snn4_ros").exists():
            dirs.append(Path(prefix) / "share" / "snn4_ros" / "models")
            break
    return dirs


class ModelNotFoundError(UserError, FileNotFoundError):
    """A ``--model`` that names no shipped model and no checkpoint file."""


def shipped_models() -> dict[str, dict]:
    """name -> its model card (``classes``, ``preset``, ...) for every model in
    ``model_dirs()`` (the first of a name wins). Lava exports and ``snn4 train --resume``
    state (optimiser tensors) are not models of their own."""
    out: dict[str, dict] = {}
    for d in model_dirs():
        for st in sorted(d.glob("*.safetensors")) if d.is_dir() else []:
            if st.stem in out or st.name.endswith((".lava.safetensors",
                                                  ".resume.safetensors")):
                continue
            try:
                out[st.stem] = json.loads(st.with_suffix(".json").read_text())
            except (OSError, ValueError):
                out[st.stem] = {}
    return out


def find_model(name: str = DEMO_MODEL) -> Path:
    """The checkpoint base path (without suffix) of a shipped model, by name or path."""
    p = Path(name)
    if p.with_suffix(".safetensors").exists() or p.suffix == ".safetensors" and p.exists():
        return p.with_suffix("")
    for d in model_dirs():
        if (d / f"{name}.safetensors").exists():
            return d / name
    names = list(shipped_models())
    raise ModelNotFoundError(
        f"no model {name!r}{did_you_mean(name, names)} (shipped models: "
        f"{', '.join(names) or 'none; train them with make models'}; or a path to a "
        "MODEL.safetensors with its MODEL.json card)")


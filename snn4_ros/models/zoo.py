"""Where the shipped models live: the source tree's models/, or share/snn4_ros/models of an
install (colcon or pip), or a folder named by SNN4_MODELS."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..events.errors import UserError, did_you_mean

DEMO_MODEL = "hybridnet_gesture_synth"


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
    ``model_dirs()`` (the first of a name wins). Lava exports are not models of their own."""
    out: dict[str, dict] = {}
    for d in model_dirs():
        for st in sorted(d.glob("*.safetensors")) if d.is_dir() else []:
            if st.stem in out or st.name.endswith(".lava.safetensors"):
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

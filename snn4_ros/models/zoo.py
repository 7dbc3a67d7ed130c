"""Where the shipped models live: the source tree's models/, or share/snn4_ros/models of an
install (colcon or pip), or a folder named by SNN4_MODELS."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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


def find_model(name: str = DEMO_MODEL) -> Path:
    """The checkpoint base path (without suffix) of a shipped model, by name or path."""
    p = Path(name)
    if p.with_suffix(".safetensors").exists() or p.suffix == ".safetensors" and p.exists():
        return p.with_suffix("")
    for d in model_dirs():
        if (d / f"{name}.safetensors").exists():
            return d / name
    raise FileNotFoundError(f"model {name!r} not found in {', '.join(map(str, model_dirs()))}; "
                            "train it with tools/train_models.sh")

"""The graph description (``config/*.yaml``) shared by launch files and ``snn4 up``."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def config_dirs() -> list[Path]:
    dirs = [Path(__file__).resolve().parents[2] / "config",
            Path(sys.prefix) / "share" / "snn4_ros" / "config"]
    try:
        from ament_index_python.packages import get_package_share_directory
        dirs.append(Path(get_package_share_directory("snn4_ros")) / "config")
    except Exception:  # not in a ROS install's index
        pass
    return dirs


def load_graph(name_or_path: str = "perception") -> dict:
    """The ``nodes`` mapping of a graph YAML, by name (config/NAME.yaml) or path."""
    p = Path(name_or_path)
    if not p.exists():
        p = next((d / f"{name_or_path}.yaml" for d in config_dirs()
                  if (d / f"{name_or_path}.yaml").exists()), p)
    if not p.exists():
        raise FileNotFoundError(f"graph description {name_or_path!r} not found in "
                                f"{', '.join(map(str, config_dirs()))}")
    data = yaml.safe_load(p.read_text()) or {}
    nodes = data.get("nodes")
    if not isinstance(nodes, dict) or not nodes:
        raise ValueError(f"{p}: no 'nodes' mapping")
    return nodes


def node_parameters(nodes: dict, overrides: dict | None = None) -> dict[str, dict]:
    """Parameters per node name, with ``overrides`` (same shape) applied on top."""
    out = {name: dict(spec.get("parameters") or {}) for name, spec in nodes.items()}
    for name, params in (overrides or {}).items():
        out.setdefault(name, {}).update(params)
    return out

"""The graph description (``config/*.yaml``) shared by launch files and ``snn4 up``."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from .parameters import NODE_PARAMETERS, ParameterError, check_parameters


def config_dirs() -> list[Path]:
    dirs = [Path(__file__).resolve().parents[2] / "config",
            Path(sys.prefix) / "share" / "snn4_ros" / "config"]
    try:
        from ament_index_python.packages import get_package_share_directory
        dirs.append(Path(get_package_share_directory("snn4_ros")) / "config")
    except Exception:  # not in a ROS install's index
        pass
    return dirs


def _graph_file(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if not p.exists():
        p = next((d / f"{name_or_path}.yaml" for d in config_dirs()
                  if (d / f"{name_or_path}.yaml").exists()), p)
    return p


def graph_topology(name_or_path: str = "perception") -> str:
    """How ``snn4 up`` arranges the nodes in processes (the YAML's ``topology``):
    ``source_process`` (default: the event source in its own process, inference and
    control in one) or ``single`` (everything in one process, one interpreter lock)."""
    p = _graph_file(name_or_path)
    data = (yaml.safe_load(p.read_text()) or {}) if p.exists() else {}
    return str(data.get("topology") or "source_process")


def load_graph(name_or_path: str = "perception") -> dict:
    """The ``nodes`` mapping of a graph YAML, by name (config/NAME.yaml) or path."""
    p = Path(name_or_path)
    if not p.exists():
        p = next((d / f"{name_or_path}.yaml" for d in config_dirs()
                  if (d / f"{name_or_path}.yaml").exists()), p)
    if not p.exists():
        raise FileNotFoundError(f"graph description {name_or_path!r} not found in "
                                f"{', '.join(map(str, config_dirs()))}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParameterError(f"{p}: not valid YAML ({' '.join(str(exc).split())})") from None
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(nodes, dict) or not nodes:
        raise ParameterError(f"{p}: no 'nodes' mapping (see config/perception.yaml)")
    for name, spec in nodes.items():
        if not isinstance(spec, dict) or "executable" not in spec:
            raise ParameterError(f"{p}: node {name!r} has no executable (one of "
                                 f"{', '.join(NODE_PARAMETERS)})")
    checked = check_parameters({n: s.get("parameters") or {} for n, s in nodes.items()},
                               executables(nodes), str(p))
    return {n: {**s, "parameters": checked.get(n, {})} for n, s in nodes.items()}


def executables(nodes: dict) -> dict[str, str]:
    """Node name -> executable, for ``parameters.check_parameters``."""
    return {name: spec["executable"] for name, spec in nodes.items()}


def check_overrides(nodes: dict, overrides: dict, where: str = "--param") -> dict:
    """``overrides`` ({node: {name: value}}) checked against the graph's nodes and their
    declared parameters: unknown names and bad values are a ParameterError, at once."""
    return check_parameters(overrides, executables(nodes), where)


def node_parameters(nodes: dict, overrides: dict | None = None) -> dict[str, dict]:
    """Parameters per node name, with ``overrides`` (same shape, checked) applied on top."""
    out = {name: dict(spec.get("parameters") or {}) for name, spec in nodes.items()}
    for name, params in check_overrides(nodes, overrides or {}).items():
        out.setdefault(name, {}).update(params)
    return out


def ros_parameters(nodes: dict, namespace: str = "snn4") -> dict:
    """The description's parameters as a standard ``ros__parameters`` mapping keyed by fully
    qualified node name (``/NS/NODE``; ``**`` for any namespace): what ``--params-file``,
    ``ros2 param load`` and ``ros2 launch ... params_file:=`` read and ``ros2 param dump``
    writes. Launch-only keys (executable, remappings, optional, lava) are not parameters."""
    ns = namespace.strip("/")
    prefix = "/**/" if ns == "**" else (f"/{ns}/" if ns else "/")
    return {f"{prefix}{name}": {"ros__parameters": dict(spec.get("parameters") or {})}
            for name, spec in nodes.items() if spec.get("parameters")}


def load_ros_parameters(path: str | Path) -> dict[str, dict]:
    """Parameters per node name from a ``ros__parameters`` file (``ros2 param dump`` output,
    ``snn4 params`` output): ``/ns/node``, ``node`` and ``/**/node`` keys all count for
    ``node``."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParameterError(f"{path}: not YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: not a ros__parameters file (NODE: ros__parameters: ...)")
    out: dict[str, dict] = {}
    for key, body in data.items():
        if not isinstance(body, dict) or "ros__parameters" not in body:
            raise ParameterError(f"{path}: {key!r} has no ros__parameters")
        out.setdefault(str(key).rsplit("/", 1)[-1], {}).update(body["ros__parameters"] or {})
    return out

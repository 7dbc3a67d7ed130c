"""Where the Lava venv and the Lava-side code live, and how to start the bridge node.

Lava needs Python 3.10 and numpy<2, so the bridge runs in its own venv (``make lava-env``
-> ``hw/.lava-venv``; elsewhere set ``SNN4_LAVA_PYTHON``) as its own process, talking to the
inference node over ROS topics. Nothing here imports torch or rclpy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..events.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


class LavaEnvMissing(UserError, RuntimeError):
    """No Python with Lava to run the bridge or the bit-exact check."""


def _hw_dirs() -> list[Path]:
    """hw/ of the source tree, then share/snn4_ros/hw of an install: the ament index's (a
    colcon install tree, where sys.prefix is the interpreter's, not the package's) and the
    interpreter prefix's (pip)."""
    dirs = [ROOT / "hw"]
    try:
        from ament_index_python.packages import get_package_share_directory
        dirs.append(Path(get_package_share_directory("snn4_ros")) / "hw")
    except Exception:  # not in a ROS install's index
        pass
    dirs.append(Path(sys.prefix) / "share" / "snn4_ros" / "hw")
    return dirs


def hw_dir() -> Path:
    for d in _hw_dirs():
        if (d / "snn4_lava").is_dir() and (d / "lava_run.py").is_file():
            return d
    raise LavaEnvMissing("the Lava-side code (hw/snn4_lava, hw/lava_run.py) is not installed "
                         f"(looked in {', '.join(map(str, _hw_dirs()))})")


def lava_python() -> Path:
    """SNN4_LAVA_PYTHON, else the source tree's hw/.lava-venv, else the venv recorded in an
    install tree when the package was built (hw/lava_python.txt, written by setup.py)."""
    env = os.environ.get("SNN4_LAVA_PYTHON")
    cands = [Path(env)] if env else []
    cands += [ROOT / "hw" / ".lava-venv" / "bin" / "python"]
    for d in _hw_dirs()[1:]:
        rec = d / "lava_python.txt"
        if rec.is_file():
            cands.append(Path(rec.read_text().strip()))
    for c in cands:
        if c.exists():
            return c
    raise LavaEnvMissing(
        f"no Lava venv (looked for {', '.join(map(str, cands))}): create it with "
        "`make lava-env` (Python 3.10, lava-nc 0.10.0, numpy<2 and the ROS 2 wheels), or "
        "point SNN4_LAVA_PYTHON (or the launch argument lava_python:=) at a Python that has "
        "lava-nc")


def bridge_command(model_base: str | Path, board_host: str = "",
                   extra: dict | None = None) -> tuple[list[str], dict]:
    """argv and environment of the ``lava_bridge`` node for an exported model."""
    args = [str(lava_python()), str(hw_dir() / "lava_run.py"), "bridge", "--ros-args",
            "-p", f"model:={model_base}"]
    if board_host:
        args += ["-p", f"board_host:={board_host}"]
    for k, v in (extra or {}).items():
        args += ["-p", f"{k}:={v}"]
    env = clean_env()
    # topics.py and worker.py, which the bridge loads from their files (no snn4_ros there)
    env["SNN4_ROS_SHARED"] = str(Path(__file__).resolve().parent)
    return args, env


def clean_env() -> dict:
    """This environment without the main venv: the ROS wheels put their library folders on
    LD_LIBRARY_PATH when rclpy is imported, and Python 3.11's type support must not be
    what the Lava venv's rclpy (3.10) loads."""
    venv = str(Path(sys.prefix))
    env = {}
    for k, v in os.environ.items():
        if k in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "_ROS_WHEELS_BOOTSTRAP_COMPLETE"):
            continue
        if k in ("LD_LIBRARY_PATH", "PATH", "AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH"):
            v = os.pathsep.join(p for p in v.split(os.pathsep) if p and venv not in p)
            if not v:
                continue
        env[k] = v
    return env

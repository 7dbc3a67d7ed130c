"""ros2 launch snn4_ros perception.launch.py [namespace:=snn4] [camera_name:=event_camera] ...

Starts the nodes of config/<graph>.yaml -- the same description `snn4 up` runs in one process
-- as processes in the namespace ``namespace``, with relative topics:

  events (in)  <- events_topic (default /<camera_name>/events, where the ros-event-camera
                  drivers publish)
  gesture, tracks (vision_msgs), debug/event_frame, debug/attention, lava/* (Loihi graph)
  cmd_vel (out) -> cmd_vel_topic (default <namespace>/cmd_vel: a twist_mux input, see
                  config/twist_mux.yaml), TwistStamped (cmd_vel_type:=stamped) or Twist

Safe by default: a plain launch starts no event source and waits for a camera driver. The
built-in sources are opt-in (source:=synthetic, source:=BAG, source:=camera[:SERIAL]); from a
simulated or recorded source the controller publishes only zero unless simulated_motion:=true
is given as well (asked twice). Parameters: the description's, then model:=/device:=, then
params_file:= (a standard ros__parameters file, e.g. from `ros2 param dump` or `snn4 params`).
A bad argument (unknown graph, missing model, cuda without a GPU) stops the launch at once.
"""

from __future__ import annotations

import os
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

ARGS = [
    ("graph", "perception", "config/<graph>.yaml (or a path) naming the nodes to start"),
    ("namespace", "snn4", "namespace of the pipeline's nodes and topics"),
    ("camera_name", "event_camera", "the camera driver's name: its events are "
     "/<camera_name>/events (ros-event-camera drivers' convention)"),
    ("events_topic", "", "EventPacket input (default /<camera_name>/events; with source:=... "
     "the built-in source publishes <namespace>/<camera_name>/events)"),
    ("source", "", "built-in event source: synthetic[:seed=S], a bag/recording path, "
     "camera[:SERIAL]; empty (default): none, wait for a camera driver"),
    ("simulated_motion", "false", "let a synthetic or recorded source move the robot "
     "(the second switch; never needed for a live camera)"),
    ("realtime", "true", "pace recordings to the wall clock"),
    ("loop", "false", "play a recording again from its start when it ends, its time "
     "continuing (ros2 bag play --loop)"),
    ("model", "", "shipped model name or checkpoint path (default: the description's, "
     "hybridnet_gesture_real; with source:=synthetic the simulator's hybridnet_gesture_synth)"),
    ("device", "", "cpu | cuda | cuda:N (default: the description's)"),
    ("cmd_vel_topic", "cmd_vel", "controller output (relative: in the namespace)"),
    ("cmd_vel_type", "stamped", "stamped (geometry_msgs/TwistStamped, Jazzy's "
     "diff_drive_controller) or twist (geometry_msgs/Twist)"),
    ("cmd_vel_guard", "false", "relay the controller's commands through the cmd_vel_guard "
     "node, which sends zero when the controller falls silent (killed): for a base without "
     "a command timeout of its own"),
    ("use_sim_time", "false", "use /clock (rosbag play --clock)"),
    ("params_file", "", "ros__parameters YAML applied on top of the description's "
     "(ros2 param dump / snn4 params output)"),
    ("lava_python", "", "Python of the Lava venv for the Loihi graph (default: "
     "SNN4_LAVA_PYTHON, the source tree's hw/.lava-venv, or the one recorded at build time)"),
    ("dashboard", "false", "start the HTTP dashboard node (config: dashboard)"),
]


class LaunchArgumentError(ValueError):
    """A launch argument that cannot work; the message says what to change."""


def _flag(context, name: str) -> bool:
    v = LaunchConfiguration(name).perform(context).strip().lower()
    if v not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise LaunchArgumentError(f"{name}:={v!r}: use true or false")
    return v in ("true", "1", "yes", "on")


def _find_graph(share: Path, graph: str) -> Path:
    p = Path(graph)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    p = share / "config" / f"{graph}.yaml"
    if p.exists():
        return p
    known = sorted(c.stem for c in (share / "config").glob("*.yaml")
                   if "nodes:" in c.read_text())
    raise LaunchArgumentError(f"graph:={graph!r} not found: use one of {', '.join(known)} "
                              f"(config/<graph>.yaml in {share}) or a path to a graph YAML")


def _check_model(share: Path, model: str) -> Path:
    """The checkpoint (base path) must exist before any process starts; found the way
    snn4_ros.models.zoo does, without importing torch into the launch process."""
    p = Path(model)
    if p.with_suffix(".safetensors").exists():
        return p.with_suffix("")
    dirs = [Path(os.environ["SNN4_MODELS"])] if os.environ.get("SNN4_MODELS") else []
    dirs.append(share / "models")
    for d in dirs:
        if (d / f"{model}.safetensors").exists():
            return d / model
    shipped = sorted({f.stem for d in dirs for f in d.glob("*.safetensors") if "." not in f.stem})
    raise LaunchArgumentError(f"model:={model!r} not found: use one of {', '.join(shipped)} "
                              f"(in {', '.join(map(str, dirs))}) or a path to a .safetensors "
                              "checkpoint")


def _check_device(device: str) -> None:
    if device == "cpu":
        return
    if not (device == "cuda" or device.startswith("cuda:") and device[5:].isdigit()):
        raise LaunchArgumentError(f"device:={device!r}: use cpu, cuda or cuda:N")
    import torch                 # only for a CUDA request: ~5 s, and the answer is definite

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    idx = int(device[5:]) if ":" in device else 0
    if idx >= n:
        why = ("this torch has no CUDA support" if torch.version.cuda is None
               else f"{n} CUDA device(s) visible")
        raise LaunchArgumentError(f"device:={device}: {why} (torch {torch.__version__}); use "
                                  "device:=cpu, or run where a GPU is visible (docker run "
                                  "--gpus all with docker/Dockerfile.cuda)")


def launch_setup(context, *args, **kwargs):
    from snn4_ros.models.zoo import REAL_MODEL, default_model
    from snn4_ros.ros.description import load_graph, node_parameters

    share = Path(get_package_share_directory("snn4_ros"))
    get = lambda name: LaunchConfiguration(name).perform(context).strip()  # noqa: E731
    graph_file = _find_graph(share, get("graph"))
    nodes = load_graph(str(graph_file))
    params = node_parameters(nodes)
    ns = get("namespace").strip("/")
    source, camera = get("source"), get("camera_name").strip("/")
    sim_motion, realtime = _flag(context, "simulated_motion"), _flag(context, "realtime")
    loop = _flag(context, "loop")
    use_sim_time, dashboard = _flag(context, "use_sim_time"), _flag(context, "dashboard")
    guard = _flag(context, "cmd_vel_guard")
    events_topic = get("events_topic") or (f"{camera}/events" if source else f"/{camera}/events")
    cmd_type = get("cmd_vel_type").lower()
    if cmd_type not in ("stamped", "twist"):
        raise LaunchArgumentError(f"cmd_vel_type:={cmd_type!r}: use stamped or twist")
    params_file = get("params_file")
    if params_file and not Path(params_file).is_file():
        raise LaunchArgumentError(f"params_file:={params_file!r} does not exist")
    inf = params.setdefault("snn4_inference", {})
    if get("model"):
        inf["model"] = get("model")
        if "lava_bridge" in params:
            params["lava_bridge"]["model"] = get("model")
    elif source.startswith("synthetic") and inf.get("model") == REAL_MODEL:
        inf["model"] = default_model(source)     # the simulator's gestures for the simulator
    if get("device"):
        inf["device"] = get("device")
    _check_model(share, str(inf.get("model", REAL_MODEL)))
    _check_device(str(inf.get("device", "cpu")))
    if source:
        from snn4_ros.events.errors import UserError
        from snn4_ros.events.sources import check_source
        try:
            check_source(source)
        except UserError as exc:
            msg = str(exc)
            raise LaunchArgumentError(msg.replace(f"source {source!r}", f"source:={source!r}", 1)
                                      if msg.startswith("source ") else
                                      f"source:={source!r}: {msg}") from None
    live = not source or source.startswith("camera")
    ctrl = params.setdefault("gesture_controller", {})
    ctrl["stamped"] = cmd_type == "stamped"
    # a simulated or recorded source moves nothing unless asked a second time
    ctrl["motion_enabled"] = bool(live or sim_motion)

    actions = [LogInfo(msg=(
        f"snn4: graph {graph_file.stem} in /{ns}, events from {events_topic}"
        + (f" ({'built-in source ' + source})" if source else " (waiting for a camera driver)")
        + f", {'TwistStamped' if cmd_type == 'stamped' else 'Twist'} on {get('cmd_vel_topic')}"
        + ("" if ctrl["motion_enabled"] else
           "; motion disabled: simulated input (add simulated_motion:=true to move)")))]
    common = {"use_sim_time": use_sim_time}
    remap = [("events", events_topic), ("cmd_vel", get("cmd_vel_topic"))]
    for name, spec in nodes.items():
        if name == "event_source" and not source:
            continue
        if spec.get("optional") and not (name == "dashboard" and dashboard):
            continue
        p = dict(params.get(name, {}))
        if spec.get("lava"):         # the Lava bridge: Python 3.10 in its own venv
            if "model" in p:
                p["model"] = str(_check_model(share, str(p["model"])))
            actions.append(_lava_bridge(name, p, ns, get("lava_python"), use_sim_time))
            continue
        if name == "event_source":
            p.update(source=source, realtime=realtime, loop=loop)
            p.setdefault("frame_id", camera)
        extra = list((spec.get("remappings") or {}).items())
        node_remap = remap
        if guard and spec["executable"] == "gesture_controller":   # the guard relays it
            node_remap = [("events", events_topic), ("cmd_vel", "cmd_vel_unguarded")]
        actions.append(Node(       # the launch arguments' remappings first: the first match wins
            package="snn4_ros", executable=spec["executable"], name=name, namespace=ns,
            parameters=[p, common] + ([params_file] if params_file else []),
            remappings=node_remap + extra, output="screen"))
    if guard:
        actions.append(Node(
            package="snn4_ros", executable="cmd_vel_guard", name="cmd_vel_guard", namespace=ns,
            parameters=[{"stamped": cmd_type == "stamped"}, common]
            + ([params_file] if params_file else []),
            remappings=[("cmd_vel_in", "cmd_vel_unguarded"),
                        ("cmd_vel_out", get("cmd_vel_topic"))], output="screen"))
    return actions


def _lava_bridge(name: str, p: dict, ns: str, python: str, use_sim_time: bool):
    """The bridge is a Python 3.10 process (hw/lava_run.py), started with the environment
    bridge_command cleans of this venv's paths (its rclpy must not load ours)."""
    from snn4_ros.ros.lava_env import bridge_command

    if python:
        os.environ["SNN4_LAVA_PYTHON"] = python
    cmd, env = bridge_command(p["model"], p.get("board_host", ""),
                              {"use_sim_time": str(use_sim_time).lower()})
    cmd += ["-r", f"__ns:=/{ns}", "-r", f"__node:={name}"]
    return ExecuteProcess(cmd=cmd, env=env, output="screen", name=name,
                          sigterm_timeout="15")


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(n, default_value=d, description=h) for n, d, h in ARGS]
        + [OpaqueFunction(function=launch_setup)])

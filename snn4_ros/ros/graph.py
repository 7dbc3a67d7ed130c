"""``snn4 up``: the perception graph in one process (where ``ros2 launch`` is missing).

The same nodes as ``launch/perception.launch.py`` -- event_source -> snn4_inference ->
gesture_controller -- run in one single-threaded executor with their parameters from the
graph description (``config/perception.yaml``); the dashboard and the Lava bridge run as
child processes that die with it. Ends after ``duration_s`` if given and always sends a
zero command on the way out. How one node runs as its own process (signals, spin, shutdown)
is in ``lifecycle``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.parameter import Parameter

from .lifecycle import die_with_parent, freeze_startup_heap, raise_on_sigterm


def _params(d: dict) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in d.items()]


def start_dashboard(params: dict, remappings: dict | None = None,
                    namespace: str = "") -> subprocess.Popen:
    """The dashboard node as its own process (its HTTP clients never compete with the
    inference for the interpreter lock); the token travels in the environment."""
    args = [sys.executable, "-m", "snn4_ros.ros.dashboard_node", "--ros-args"]
    if namespace:
        args += ["-r", f"__ns:=/{namespace.strip('/')}"]
    for k, v in params.items():
        args += ["-p", f"{k}:={json.dumps(v) if isinstance(v, str) and not v else v}"]
    for k, v in (remappings or {}).items():
        args += ["-r", f"{k}:={v}"]
    return subprocess.Popen(args, env=dict(os.environ), preexec_fn=die_with_parent)


def start_bridge(params: dict, namespace: str = "") -> subprocess.Popen:
    """The Lava bridge node for ``backend: lava`` (Python 3.10, its own venv and process)."""
    from ..models.zoo import find_model
    from .lava_env import bridge_command

    inf = params.get("snn4_inference", {})
    bp = params.get("lava_bridge", {})
    args, env = bridge_command(find_model(bp.get("model") or inf.get("model")),
                               bp.get("board_host", ""))
    if namespace:
        args += ["-r", f"__ns:=/{namespace.strip('/')}"]
    return subprocess.Popen(args, env=env, preexec_fn=die_with_parent)


class SourceProcess:
    """The event_source node as its own process (``topology: source_process``), seen
    through its /diagnostics: the simulator, encoding and publishing never compete with
    inference for this interpreter's lock."""

    def __init__(self, params: dict, remappings: dict, context=None, namespace: str = ""):
        self.source = str(params.get("source", "synthetic"))
        self.realtime = bool(params.get("realtime", True))
        self.packets = 0
        self.error: str | None = None
        self.finished = threading.Event()
        self.real_time_factor_total: float | None = None
        args = [sys.executable, "-m", "snn4_ros.ros.event_source_node", "--ros-args"]
        for k, v in params.items():
            args += ["-p", f"{k}:={json.dumps(v) if isinstance(v, str) and not v else v}"]
        for k, v in (remappings or {}).items():
            args += ["-r", f"{k}:={v}"]
        if namespace:
            args += ["-r", f"__ns:=/{namespace.strip('/')}"]
        self.proc = subprocess.Popen(args, env=dict(os.environ), preexec_fn=die_with_parent)
        kw = {"context": context} if context is not None else {}
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.node import Node
        self.node = Node("snn4_up_source_proxy", **kw)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)

    def _on_diag(self, msg) -> None:
        for st in msg.status:
            if not st.name.startswith("event_source"):
                continue
            v = {kv.key: kv.value for kv in st.values}
            self.packets = int(v.get("packets", self.packets))
            if v.get("real_time_factor_total"):
                self.real_time_factor_total = float(v["real_time_factor_total"])
            level = st.level[0] if isinstance(st.level, bytes) else int(st.level)
            if level == 2:
                self.error = st.message
            if st.message == "source ended" or level == 2:
                self.finished.set()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.proc.returncode not in (0, None, -15) and self.error is None \
                and not self.finished.is_set():
            self.error = f"event_source exited with {self.proc.returncode}"


def run_graph(source: str | None = None, duration_s: float | None = None,
              params: dict | None = None, on_cmd=None, context=None,
              graph: str = "perception", report=None, dashboard: bool = False,
              namespace: str = "snn4", simulated_motion: bool = False,
              until=None) -> dict:
    """Run the graph; ``on_cmd(command)`` sees every new controller command and
    ``report(inference, controller, source)`` is called once a second. ``dashboard``
    also starts the graph's ``dashboard`` node (its own process). The nodes live in
    ``namespace`` like under ``ros2 launch`` (topics /snn4/gesture, /snn4/cmd_vel, events on
    /snn4/event_camera/events). A synthetic or recorded source moves nothing (the
    controller publishes zeros) unless ``simulated_motion`` -- or the controller parameter
    ``motion_enabled`` in ``params`` -- asks for it a second time. ``until(inference,
    controller, source)`` ends the run as soon as it is true (``duration_s`` then is a
    cap): a test waits for what it checks, not for a wall-clock time that a busy machine
    fills with less."""
    from ..models.zoo import default_model
    from .controller_node import ControllerNode
    from .description import graph_topology, load_graph, node_parameters
    from .event_source_node import EventSourceNode
    from .inference_node import InferenceNode

    nodes_desc = load_graph(graph)
    asked = "motion_enabled" in (params or {}).get("gesture_controller", {})
    model_named = "model" in (params or {}).get("snn4_inference", {})
    params = dict(params or {})
    topology = str((params.pop("graph", None) or {}).get("topology")
                   or graph_topology(graph))
    params = node_parameters(nodes_desc, params)
    if topology not in ("single", "source_process"):
        raise ValueError(f"topology {topology!r}: choose single or source_process")
    if source is not None:
        params["event_source"]["source"] = source
    spec = str(params["event_source"].get("source", ""))
    if not model_named and spec.startswith("synthetic"):
        # the simulator's gestures for the simulator (models/zoo.py: default_model)
        params.setdefault("snn4_inference", {})["model"] = default_model(spec)
    ctrl_p = params.setdefault("gesture_controller", {})
    if not asked:
        ctrl_p["motion_enabled"] = spec.startswith("camera") or simulated_motion
    ns = namespace.strip("/")
    own = context is None
    if own:
        # our own handlers: SIGTERM / SIGINT end the loop below while the context is still
        # valid, so the zero command on the way out can be published
        from rclpy.signals import SignalHandlerOptions
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        raise_on_sigterm()
    kw = {"context": context} if context is not None else {}

    def remaps(name):
        pairs = {"events": "event_camera/events",
                 **((nodes_desc.get(name) or {}).get("remappings") or {})}
        args = [a for k, v in pairs.items() for a in ("-r", f"{k}:={v}")]
        return {"cli_args": ["--ros-args", *args], "namespace": ns}

    src_p = params.get("event_source", {})
    bridge = None
    if params.get("snn4_inference", {}).get("backend") == "lava":
        bridge = start_bridge(params, ns)  # the Lava venv's process, before the client node
    nodes = [InferenceNode(parameter_overrides=_params(params.get("snn4_inference", {})),
                           **remaps("snn4_inference"), **kw),
             ControllerNode(parameter_overrides=_params(params.get("gesture_controller", {})),
                            **remaps("gesture_controller"), **kw)]
    src_proc = None
    if topology == "single":
        nodes.append(EventSourceNode(parameter_overrides=_params(src_p),
                                     **remaps("event_source"), **kw))
    else:
        src_proc = SourceProcess(src_p, {"events": "event_camera/events", **(
            (nodes_desc.get("event_source") or {}).get("remappings") or {})}, context, ns)
        nodes.append(src_proc.node)
    if getattr(nodes[0], "freeze_gc", True):
        freeze_startup_heap()
    # One executor thread: rclpy's MultiThreadedExecutor thrashed the GIL here (the source
    # fell to 1/12 of real time); each callback is short and the source has its own thread.
    ex = SingleThreadedExecutor(**kw)
    for n in nodes:
        ex.add_node(n)
    inf, ctrl = nodes[:2]
    src = nodes[2] if src_proc is None else src_proc
    dash = None
    if dashboard:
        dash_p = dict(params.get("dashboard", {}))
        dash = start_dashboard(dash_p, (nodes_desc.get("dashboard") or {}).get("remappings"),
                               ns)
    # the duration counts from the first packet the inference node gets (a source in its
    # own process needs a few seconds to start; up to startup_s on a loaded machine)
    startup_s = 120.0
    t_up = time.monotonic()
    t_end = None
    def spin():
        try:
            ex.spin()
        except (ExternalShutdownException, rclpy.executors.ShutdownException, RuntimeError):
            pass

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    last = None
    t_report = time.monotonic()
    try:
        while t_end is None or time.monotonic() < t_end:
            time.sleep(0.02)
            if t_end is None and duration_s is not None and (
                    inf.first_packet_wall is not None or src.error is not None
                    or time.monotonic() - t_up > startup_s):
                t_end = (inf.first_packet_wall or time.monotonic()) + duration_s
            if not rclpy.ok(context=context):      # SIGTERM / SIGINT (docker stop, systemd)
                break
            if report is not None and time.monotonic() - t_report >= 1.0:
                t_report = time.monotonic()
                report(inf, ctrl, src)
            if on_cmd is not None and ctrl.last is not None and ctrl.last is not last:
                last = ctrl.last
                on_cmd(last)
            if until is not None and until(inf, ctrl, src):
                break
            if src.finished.is_set() and not src.source.startswith(("synthetic", "camera")):
                time.sleep(1.0)          # a finite recording: let the last packets through
                break
    except KeyboardInterrupt:
        pass
    finally:
        t_loop_end = time.monotonic()
        ctrl.stop_robot()
        if src_proc is not None:
            src_proc.stop()
            # let what is on the way through (bounded): the counts below are then final
            t_drain, last_n = time.monotonic() + 5.0, -1
            while time.monotonic() < t_drain and (inf.processed != last_n or len(inf.backlog)):
                last_n = inf.processed
                time.sleep(0.3)
        if dash is not None:
            dash.terminate()
            try:
                dash.wait(timeout=5)
            except subprocess.TimeoutExpired:
                dash.kill()
        ex.shutdown(timeout_sec=1.0)
        spinner.join(timeout=2.0)
        # real time: bins that reached the network of the bins the wall clock closed since
        # the source began streaming (less the one still open)
        bin_s = inf.net.cfg.bin_us / 1e6
        streamed = t_loop_end - inf.first_packet_wall if inf.first_packet_wall else 0.0
        expected = max(int(streamed / bin_s) - 1, 1) if src.realtime and \
            src.source.startswith(("synthetic", "camera")) and streamed > 0 else None
        delivered = inf.bins              # shed (skipped) bins are not delivered
        summary = {"published": src.packets, "dropped": inf.dropped, "bins": inf.bins,
                   "bins_expected": expected,
                   "real_time_factor": round(delivered / expected, 3) if expected else None,
                   "topology": topology,
                   "source_real_time_factor": round(
                       (src.pacer.real_time_factor() if src_proc is None
                        else src.real_time_factor_total) or 0, 3),
                   "skipped_bins": inf.shed.skipped_bins,
                   "shed_fraction": round(inf.shed.shed_fraction(), 6),
                   "events": inf.decoder.stats.events,
                   "packets": inf.decoder.stats.packets,
                   "lost_packets": inf.decoder.stats.seq_gaps,    # on the way (DDS)
                   "nonzero_commands": ctrl.nonzero,
                   "source_error": src.error}
        for n in nodes:
            ex.remove_node(n)
            n.destroy_node()
        ex.shutdown()
        if bridge is not None:            # after the client node: no half-answered bins
            bridge.terminate()
            try:
                bridge.wait(timeout=15)
            except subprocess.TimeoutExpired:
                bridge.kill()
        if own:
            rclpy.shutdown()
    return summary

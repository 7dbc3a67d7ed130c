"""``snn4 up``: the perception graph in one process (where ``ros2 launch`` is missing).

The same nodes as ``launch/perception.launch.py`` -- event_source -> snn4_inference ->
gesture_controller -- run in one multi-threaded executor with their parameters from
``config/perception.yaml``-style dictionaries; ends after ``duration_s`` if given and always
sends a zero command on the way out. (Launch files, the CLI entry and cross-process tests
come with the ROS runtime issue.)
"""

from __future__ import annotations

import threading
import time

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.parameter import Parameter


def _params(d: dict) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in d.items()]


def run_graph(source: str = "synthetic", duration_s: float | None = None,
              params: dict | None = None, on_cmd=None, context=None) -> dict:
    from .controller import ControllerNode
    from .event_source import EventSourceNode
    from .inference import InferenceNode

    params = params or {}
    own = context is None
    if own:
        rclpy.init()
    kw = {"context": context} if context is not None else {}
    src_p = {"source": source, **params.get("event_source", {})}
    nodes = [InferenceNode(parameter_overrides=_params(params.get("snn4_inference", {})), **kw),
             ControllerNode(parameter_overrides=_params(params.get("gesture_controller", {})),
                            **kw),
             EventSourceNode(parameter_overrides=_params(src_p), **kw)]
    # One executor thread: rclpy's MultiThreadedExecutor thrashed the GIL here (the source
    # fell to 1/12 of real time); each callback is short and the source has its own thread.
    ex = SingleThreadedExecutor(**kw)
    for n in nodes:
        ex.add_node(n)
    inf, ctrl, src = nodes
    t_end = None if duration_s is None else time.monotonic() + duration_s
    def spin():
        try:
            ex.spin()
        except (ExternalShutdownException, rclpy.executors.ShutdownException, RuntimeError):
            pass

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    last = None
    try:
        while t_end is None or time.monotonic() < t_end:
            time.sleep(0.02)
            if on_cmd is not None and ctrl.last is not None and ctrl.last is not last:
                last = ctrl.last
                on_cmd(last)
            if src.finished.is_set() and not src.source.startswith(("synthetic", "camera")):
                time.sleep(1.0)          # a finite recording: let the last packets through
                break
    except KeyboardInterrupt:
        pass
    finally:
        ctrl.stop_robot()
        ex.shutdown(timeout_sec=1.0)
        spinner.join(timeout=2.0)
        summary = {"published": src.packets, "bins": inf.bins, "events": inf.decoder.stats.events,
                   "packets": inf.decoder.stats.packets, "nonzero_commands": ctrl.nonzero,
                   "source_error": src.error}
        for n in nodes:
            ex.remove_node(n)
            n.destroy_node()
        ex.shutdown()
        if own:
            rclpy.shutdown()
    return summary

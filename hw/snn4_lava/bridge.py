"""``lava_bridge`` node (runs in the Lava venv): event frames in, backbone spikes out.

Subscribes to ``/snn4/lava/frames`` (``snn4_msgs/SpikeFrame``: bin N, the model's input
frame ``[C, H, W]``), steps the exported spiking backbone once per frame in Lava, and answers
on ``/snn4/lava/spikes`` with a SpikeFrame of the same bin and stamp: the last layer's spikes
``[C', H', W']`` and every layer's spike count (for synop counts). The inference node with
``backend:=lava`` runs the bridge attention and ANN heads.

The wire format (``interfaces/snn4_msgs``), the topics and QoS (``snn4_ros/ros/topics.py``)
and the bounded worker loop (``snn4_ros/ros/worker.py``) are the inference node's own: the
two modules are loaded from their files (``shared``), as this venv has no snn4_ros (torch,
Python 3.11).

On start it looks for a Loihi 2 board (``lava.utils.loihi.is_installed()`` and the
``board_host`` parameter) and otherwise runs Lava's bit-accurate CPU simulation, saying
which in the log and in ``/diagnostics``. lava-nc's own hardware path raises a NameError
where lava-loihi is missing; it is never taken then.
"""

from __future__ import annotations

import array
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np


def shared(name: str):
    """``snn4_ros/ros/NAME.py`` (standard library and rclpy only), loaded from its file: from
    ``SNN4_ROS_SHARED`` (set by ``bridge_command``), else next to this source tree."""
    folder = Path(os.environ.get("SNN4_ROS_SHARED")
                  or Path(__file__).resolve().parents[2] / "snn4_ros" / "ros")
    spec = importlib.util.spec_from_file_location(f"snn4_ros_shared_{name}",
                                                  folder / f"{name}.py")
    if spec is None or not (folder / f"{name}.py").exists():
        raise SystemExit(f"lava_bridge: {folder / (name + '.py')} not found (set "
                         "SNN4_ROS_SHARED to the snn4_ros/ros folder)")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def main(args=None) -> None:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.executors import ExternalShutdownException
    from rclpy.node import Node
    from rclpy.signals import SignalHandlerOptions
    from snn4_msgs.msg import SpikeFrame

    from .network import LavaBackbone

    topics, worker = shared("topics"), shared("worker")

    class Bridge(Node):
        def __init__(self, net: LavaBackbone, model: str, host: str):
            super().__init__("lava_bridge")
            d = lambda text: ParameterDescriptor(description=text)  # noqa: E731
            self.declare_parameter("model", model, d(
                "model base path (MODEL.lava.safetensors / MODEL.lava.json)"))
            self.declare_parameter("board_host", host, d(
                "Loihi 2 board host (used only when lava-loihi is installed)"))
            self.net = net
            self.get_logger().info(f"Lava backbone ({len(self.net.layers)} layers) running on "
                                   f"{self.net.mode}; start-up {self.net.startup_s:.2f} s")
            self.pub = self.create_publisher(SpikeFrame, topics.LAVA_SPIKES_TOPIC,
                                             topics.LAVA_QOS)
            self.diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
            self.frames = 0
            self.step_ms: list[float] = []
            # Lava steps in order, off the executor thread; the queue is bounded like the
            # inference node's (a bridge that falls behind drops the oldest frames, counted)
            self.worker = worker.BoundedWorker(
                self._step, maxlen=int(topics.LAVA_QOS.depth),
                on_error=lambda e: self.get_logger().error(f"frame dropped: {e}"),
                name="lava_bridge")
            self.create_subscription(SpikeFrame, topics.LAVA_FRAMES_TOPIC, self.worker.put,
                                     topics.LAVA_QOS)
            self.create_timer(1.0, self._diagnostics)

        def _step(self, msg) -> None:
            W, H, C = self.net.layers[0].in_shape
            if (msg.channels, msg.height, msg.width) != (C, H, W):
                raise ValueError(f"frame {msg.channels}x{msg.height}x{msg.width}, the "
                                 f"model's input is {C}x{H}x{W}")
            x = np.frombuffer(bytes(msg.data), np.uint8).reshape(C, H, W)
            t0 = time.perf_counter()
            spikes = self.net.step(x.transpose(2, 1, 0))
            self.step_ms.append((time.perf_counter() - t0) * 1e3)
            last = spikes[-1].transpose(2, 1, 0)                    # (W,H,C) -> (C,H,W)
            out = SpikeFrame()
            out.header = msg.header
            out.bin = msg.bin
            out.channels, out.height, out.width = (int(v) for v in last.shape)
            out.data = array.array("B", np.ascontiguousarray(last).astype(np.uint8).tobytes())
            out.layer_spike_counts = [int(s.sum()) for s in spikes]
            self.pub.publish(out)
            self.frames += 1

        def _diagnostics(self) -> None:
            arr = DiagnosticArray()
            arr.header.stamp = self.get_clock().now().to_msg()
            st = DiagnosticStatus()
            w = self.worker
            st.level = DiagnosticStatus.ERROR if w.errors else DiagnosticStatus.OK
            st.name = "lava_bridge: backbone"
            st.hardware_id = self.net.backend
            st.message = self.net.mode
            lat = np.percentile(self.step_ms[-500:], [50, 99]) if self.step_ms else (0, 0)
            self.step_ms = self.step_ms[-500:]
            st.values = [KeyValue(key=k, value=str(v)) for k, v in {
                "backend": f"lava:{self.net.backend}", "frames": self.frames,
                "errors": w.errors, "last_error": w.last_error, "dropped": w.dropped,
                "queue": len(w), "step_p50_ms": f"{lat[0]:.2f}",
                "step_p99_ms": f"{lat[1]:.2f}"}.items()]
            arr.status = [st]
            self.diag.publish(arr)

        def close(self) -> None:
            self.worker.stop()
            self.net.close()

    # Lava forks its runtime processes: do it before rclpy starts DDS threads (a fork of a
    # process with live DDS threads crashed at shutdown). So read the two parameters here.
    argv = list(args or sys.argv)
    params = {a.split(":=", 1)[0]: a.split(":=", 1)[1] for a in argv if ":=" in a}
    model, host = params.get("model", ""), params.get("board_host", "")
    if not model:
        raise SystemExit("lava_bridge: set the model parameter (--ros-args -p model:=BASE) to "
                         "an exported model (snn4 loihi export --model MODEL)")
    net = LavaBackbone(model, board_host=host or None)
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    node = Bridge(net, model, host)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.get_logger().info("stopping")
        node.close()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        import os
        os._exit(0)        # skip Lava's exit handlers: its runtime was torn down above


if __name__ == "__main__":
    main(sys.argv)

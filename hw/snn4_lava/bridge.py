"""``lava_bridge`` node (runs in the Lava venv): event frames in, backbone spikes out.

Subscribes to ``/snn4/lava/frames`` (``sensor_msgs/Image``, mono8, the model's input
frame ``[C, H, W]`` stacked as ``C*H`` rows; ``frame_id`` = ``bin=N``), steps the exported
spiking backbone once per frame in Lava, and publishes the last layer's spikes on
``/snn4/lava/spikes`` (mono8, ``[C', H', W']`` stacked the same way, the frame's header, and
``frame_id`` = ``bin=N;counts=c0,c1,...`` with every layer's spike count for synop counts).
The inference node with ``backend:=lava`` runs the bridge attention and ANN heads.

On start it looks for a Loihi 2 board (``lava.utils.loihi.is_installed()`` and the
``board_host`` parameter) and otherwise runs Lava's bit-accurate CPU simulation, saying
which in the log and in ``/diagnostics``. lava-nc's own hardware path raises a NameError
where lava-loihi is missing; it is never taken then.
"""

from __future__ import annotations

import array
import sys
import threading
import time
from collections import deque

import numpy as np


def main(args=None) -> None:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.executors import ExternalShutdownException
    from rclpy.node import Node
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import Image

    from .network import LavaBackbone

    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                     reliability=ReliabilityPolicy.RELIABLE)

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
            self.pub = self.create_publisher(Image, "/snn4/lava/spikes", qos)
            self.diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
            self.create_subscription(Image, "/snn4/lava/frames", self._on_frame, qos)
            self.queue: deque = deque()
            self.cv = threading.Condition()
            self.errors = self.frames = 0
            self.step_ms: list[float] = []
            self.last_error = ""
            self.stop = False
            self.worker = threading.Thread(target=self._work, daemon=True)
            self.worker.start()
            self.create_timer(1.0, self._diagnostics)

        def _on_frame(self, msg) -> None:
            with self.cv:
                self.queue.append(msg)
                self.cv.notify()

        def _work(self) -> None:
            """Lava steps in order, off the executor thread."""
            while not self.stop:
                with self.cv:
                    while not self.queue and not self.stop:
                        self.cv.wait(0.1)
                    if self.stop:
                        return
                    msg = self.queue.popleft()
                try:
                    self._step(msg)
                except Exception as exc:              # counted, reported, keep running
                    self.errors += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    self.get_logger().error(f"frame dropped: {self.last_error}")

        def _step(self, msg) -> None:
            spec0 = self.net.layers[0]
            W, H, C = spec0.in_shape
            if msg.encoding != "mono8" or (msg.height, msg.width) != (C * H, W):
                raise ValueError(f"frame {msg.encoding} {msg.height}x{msg.width}, expected "
                                 f"mono8 {C * H}x{W}")
            x = np.frombuffer(bytes(msg.data), np.uint8).reshape(C, H, W)
            t0 = time.perf_counter()
            spikes = self.net.step(x.transpose(2, 1, 0))
            self.step_ms.append((time.perf_counter() - t0) * 1e3)
            last = spikes[-1].transpose(2, 1, 0)                    # (W,H,C) -> (C,H,W)
            out = Image()
            out.header.stamp = msg.header.stamp
            counts = ",".join(str(int(s.sum())) for s in spikes)
            out.header.frame_id = f"{msg.header.frame_id};counts={counts}"
            out.height, out.width = last.shape[0] * last.shape[1], last.shape[2]
            out.encoding, out.step = "mono8", last.shape[2]
            out.data = array.array("B", np.ascontiguousarray(last).tobytes())
            self.pub.publish(out)
            self.frames += 1

        def _diagnostics(self) -> None:
            arr = DiagnosticArray()
            arr.header.stamp = self.get_clock().now().to_msg()
            st = DiagnosticStatus()
            st.level = DiagnosticStatus.ERROR if self.errors else DiagnosticStatus.OK
            st.name = "lava_bridge: backbone"
            st.hardware_id = self.net.backend
            st.message = self.net.mode
            lat = np.percentile(self.step_ms[-500:], [50, 99]) if self.step_ms else (0, 0)
            self.step_ms = self.step_ms[-500:]
            st.values = [KeyValue(key=k, value=str(v)) for k, v in {
                "backend": f"lava:{self.net.backend}", "frames": self.frames,
                "errors": self.errors, "last_error": self.last_error,
                "queue": len(self.queue), "step_p50_ms": f"{lat[0]:.2f}",
                "step_p99_ms": f"{lat[1]:.2f}"}.items()]
            arr.status = [st]
            self.diag.publish(arr)

        def close(self) -> None:
            self.stop = True
            with self.cv:
                self.cv.notify_all()
            self.worker.join(timeout=2.0)
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

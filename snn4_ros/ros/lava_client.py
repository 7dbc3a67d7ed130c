"""The inference node's side of ``backend:=lava``: frames to the Lava bridge, spikes back.

Each closed time bin's frame goes out on ``/snn4/lava/frames`` (mono8, ``[C, H, W]`` stacked
as ``C*H`` rows, ``frame_id`` = ``bin=N``, the packet's stamp); the bridge (``hw/snn4_lava``,
in the Lava venv) steps the backbone once and answers on ``/snn4/lava/spikes`` with the last
stage's spikes and every layer's spike count. The call blocks the inference worker thread
(never the executor) until the answer for bin N arrives or ``timeout_s`` passes.
"""

from __future__ import annotations

import array
import threading

import numpy as np
import torch
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

FRAMES_TOPIC = "/snn4/lava/frames"
SPIKES_TOPIC = "/snn4/lava/spikes"
QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                 reliability=ReliabilityPolicy.RELIABLE)


class LavaBridgeError(RuntimeError):
    """No bridge, or no answer from it in time."""


class LavaClient:
    def __init__(self, node, out_shape: tuple[int, int, int], timeout_s: float = 2.0):
        from sensor_msgs.msg import Image

        self.node = node
        self.out_shape = out_shape                 # (C, H, W) of the last stage
        self.timeout_s = timeout_s
        self.pub = node.create_publisher(Image, FRAMES_TOPIC, QOS)
        node.create_subscription(Image, SPIKES_TOPIC, self._on_spikes, QOS)
        self.cv = threading.Condition()
        self.replies: dict[int, object] = {}
        self.n = 0
        self.timeouts = 0

    def _on_spikes(self, msg) -> None:
        fields = dict(kv.split("=", 1) for kv in msg.header.frame_id.split(";") if "=" in kv)
        try:
            n = int(fields["bin"])
        except (KeyError, ValueError):
            return
        with self.cv:
            self.replies[n] = (msg, fields.get("counts", ""))
            self.cv.notify_all()

    def __call__(self, frame: torch.Tensor, stamp_ns: int):
        from sensor_msgs.msg import Image

        if self.pub.get_subscription_count() == 0:
            raise LavaBridgeError(
                f"no Lava bridge subscribes to {FRAMES_TOPIC}: start it with `ros2 launch "
                "snn4_ros loihi.launch.py` (or `snn4 up --param snn4_inference.backend=lava`); "
                "it runs in the Lava venv, created by `make lava-env`")
        f = frame[0].to(torch.uint8).cpu().numpy()                 # [C, H, W]
        msg = Image()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
        msg.header.frame_id = f"bin={self.n}"
        msg.height, msg.width = f.shape[0] * f.shape[1], f.shape[2]
        msg.encoding, msg.step = "mono8", f.shape[2]
        msg.data = array.array("B", np.ascontiguousarray(f).tobytes())
        n = self.n
        self.n += 1
        self.pub.publish(msg)
        with self.cv:
            if not self.cv.wait_for(lambda: n in self.replies, self.timeout_s):
                self.timeouts += 1
                raise LavaBridgeError(f"the Lava bridge did not answer bin {n} within "
                                      f"{self.timeout_s:g} s")
            reply, counts = self.replies.pop(n)
            for old in [k for k in self.replies if k < n]:       # late answers: discard
                del self.replies[old]
        C, H, W = self.out_shape
        if (reply.height, reply.width) != (C * H, W):
            raise LavaBridgeError(f"bridge answered {reply.height}x{reply.width}, the model's "
                                  f"last stage is {C}x{H}x{W}: another model?")
        s = np.frombuffer(bytes(reply.data), np.uint8).reshape(1, C, H, W)
        counts_t = [torch.tensor([float(c)]) for c in counts.split(",") if c]
        return torch.from_numpy(s.astype(np.float32)), counts_t

"""The inference node's side of ``backend:=lava``: frames to the Lava bridge, spikes back.

Each closed time bin's frame goes out on ``/snn4/lava/frames`` as a ``snn4_msgs/SpikeFrame``
(the wire format, defined once in ``interfaces/snn4_msgs``: bin number, stamp, ``[C, H, W]``
bytes); the bridge (``hw/snn4_lava``, in the Lava venv) steps the backbone once and answers
on ``/snn4/lava/spikes`` with a SpikeFrame of the same bin: the last stage's spikes and every
layer's spike count. The call blocks the inference worker thread (never the executor) until
the answer for bin N arrives or ``timeout_s`` passes.
"""

from __future__ import annotations

import array
import threading

import numpy as np
import torch

from .topics import LAVA_FRAMES_TOPIC, LAVA_QOS, LAVA_SPIKES_TOPIC


class LavaBridgeError(RuntimeError):
    """No bridge, or no answer from it in time."""


class LavaClient:
    """The spiking backbone as a remote call: ``client(frame, stamp_ns) -> (last-stage
    spikes [1, C, H, W], per-layer spike counts)``, what ``PerceptionPipeline`` takes as
    ``backbone``."""

    def __init__(self, node, out_shape: tuple[int, int, int], timeout_s: float = 2.0):
        from snn4_msgs.msg import SpikeFrame

        self.node = node
        self.out_shape = out_shape                 # (C, H, W) of the last stage
        self.timeout_s = timeout_s
        self.pub = node.create_publisher(SpikeFrame, LAVA_FRAMES_TOPIC, LAVA_QOS)
        node.create_subscription(SpikeFrame, LAVA_SPIKES_TOPIC, self._on_spikes, LAVA_QOS)
        self.cv = threading.Condition()
        self.replies: dict[int, object] = {}
        self.n = 0
        self.timeouts = 0

    def _on_spikes(self, msg) -> None:
        with self.cv:
            self.replies[int(msg.bin)] = msg
            self.cv.notify_all()

    def __call__(self, frame: torch.Tensor, stamp_ns: int):
        from snn4_msgs.msg import SpikeFrame

        if self.pub.get_subscription_count() == 0:
            raise LavaBridgeError(
                f"no Lava bridge subscribes to {LAVA_FRAMES_TOPIC}: start it with `ros2 launch "
                "snn4_ros loihi.launch.py` (or `snn4 up --param snn4_inference.backend=lava`); "
                "it runs in the Lava venv, created by `make lava-env`")
        f = frame[0].to(torch.uint8).cpu().numpy()                 # [C, H, W]
        msg = SpikeFrame()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
        n = self.n
        msg.bin = n
        msg.channels, msg.height, msg.width = (int(v) for v in f.shape)
        msg.data = array.array("B", np.ascontiguousarray(f).tobytes())
        self.n += 1
        self.pub.publish(msg)
        with self.cv:
            if not self.cv.wait_for(lambda: n in self.replies, self.timeout_s):
                self.timeouts += 1
                raise LavaBridgeError(f"the Lava bridge did not answer bin {n} within "
                                      f"{self.timeout_s:g} s")
            reply = self.replies.pop(n)
            for old in [k for k in self.replies if k < n]:       # late answers: discard
                del self.replies[old]
        C, H, W = self.out_shape
        if (reply.channels, reply.height, reply.width) != (C, H, W):
            raise LavaBridgeError(f"bridge answered {reply.channels}x{reply.height}x"
                                  f"{reply.width}, the model's last stage is {C}x{H}x{W}: "
                                  "another model?")
        s = np.frombuffer(bytes(reply.data), np.uint8).reshape(1, C, H, W)
        counts = [torch.tensor([float(c)]) for c in reply.layer_spike_counts]
        return torch.from_numpy(s.astype(np.float32)), counts

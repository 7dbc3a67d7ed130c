"""``snn4_inference`` node: EventPackets -> streaming HybridNet -> gestures and tracks.

Subscribes best-effort (matches reliable and best-effort drivers), decodes any encoding with
the core decoder (lenient: bad packets are counted and reported, the node keeps running),
windows events into the model's time bins and steps the streaming runner once per closed
bin. Publishes ``vision_msgs/Classification`` (all class scores) and
``vision_msgs/Detection2DArray`` (the tracked target) stamped with the header stamp of the
last packet used.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from rclpy.node import Node

from ..events import FrameStream, Packet, PacketDecoder
from ..models import checkpoint
from ..models.data import frame_config
from ..models.hybridnet import StreamingRunner
from ..models.zoo import find_model
from .common import (EVENTS_SUB_QOS, EVENTS_TOPIC, GESTURE_TOPIC, RESULT_QOS, TRACKS_TOPIC,
                     declare, diagnostic, publish_diagnostics)


class InferenceNode(Node):
    def __init__(self, **kwargs):
        super().__init__("snn4_inference", **kwargs)
        from diagnostic_msgs.msg import DiagnosticArray
        from event_camera_msgs.msg import EventPacket
        from vision_msgs.msg import Classification, Detection2DArray

        self.model_name = declare(self, "model", "hybridnet_gesture_synth",
                                  "shipped model name or checkpoint path")
        self.backend = declare(self, "backend", "torch", "torch (lava: see the Loihi bridge)")
        self.device = declare(self, "device", "cpu", "cpu or cuda")
        self.threads = declare(self, "threads", 1, "torch CPU threads", 1, 64)
        if self.backend != "torch":
            raise ValueError(f"backend {self.backend!r} is not available in this node")
        torch.set_num_threads(self.threads)
        net, self.card = checkpoint.load(find_model(self.model_name))
        self.net = net.to(self.device)
        self.runner = StreamingRunner(self.net)
        self.decoder = PacketDecoder(strict=False)
        self.frames: FrameStream | None = None
        self.cfg = frame_config(self.net.cfg)
        self.sub = self.create_subscription(EventPacket, declare(
            self, "events_topic", EVENTS_TOPIC, "input EventPacket topic"), self._on_packet,
            EVENTS_SUB_QOS)
        self.pub_cls = self.create_publisher(Classification, GESTURE_TOPIC, RESULT_QOS)
        self.pub_det = self.create_publisher(Detection2DArray, TRACKS_TOPIC, RESULT_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.bins = 0
        self.geometry_errors = 0
        self.lat_ms: list[float] = []
        self.last_packet_wall: float | None = None
        self.create_timer(1.0, self._diagnostics)

    def _on_packet(self, msg) -> None:
        t0 = time.perf_counter()
        self.last_packet_wall = time.monotonic()
        pkt = Packet.from_msg(msg)
        sw, sh = self.net.cfg.sensor_width, self.net.cfg.sensor_height
        if (pkt.width, pkt.height) != (sw, sh):
            self.geometry_errors += 1
            if self.geometry_errors == 1:
                self.get_logger().error(f"packets are {pkt.width}x{pkt.height}, the model "
                                        f"expects {sw}x{sh}; dropping them")
            return
        ea = self.decoder.decode(pkt, where=f"seq={pkt.seq}")
        if self.frames is None:
            self.frames = FrameStream(self.cfg, sw, sh)
        frames, _ = self.frames.push(ea.events)
        for f in frames:
            out = self.runner.step(torch.from_numpy(f[None]).to(self.device))
            self.bins += 1
            self._publish(out, msg.header)
        if len(frames):
            self.lat_ms.append((time.perf_counter() - t0) * 1e3)

    def _publish(self, out, header) -> None:
        from vision_msgs.msg import (Classification, Detection2D, Detection2DArray,
                                     ObjectHypothesis, ObjectHypothesisWithPose)

        probs = torch.softmax(out.logits[0].float(), -1).cpu().numpy()
        cls = Classification()
        cls.header = header
        order = np.argsort(-probs)
        cls.results = [ObjectHypothesis(class_id=self.net.cfg.classes[i], score=float(probs[i]))
                       for i in order]
        self.pub_cls.publish(cls)
        if out.position is None:
            return
        arr = Detection2DArray()
        arr.header = header
        vis = float(torch.sigmoid(out.visible[0]))
        x, y = (float(v) for v in out.position[0])
        det = Detection2D()
        det.header = header
        det.id = "target"
        det.bbox.center.position.x, det.bbox.center.position.y = x, y
        det.bbox.size_x = det.bbox.size_y = 10.0
        h = ObjectHypothesisWithPose()
        h.hypothesis.class_id = "target"
        h.hypothesis.score = vis
        h.pose.pose.position.x, h.pose.pose.position.y = x, y
        det.results = [h]
        arr.detections = [det]
        self.pub_det.publish(arr)

    def _diagnostics(self) -> None:
        from diagnostic_msgs.msg import DiagnosticStatus as S

        st = self.decoder.stats
        stale = self.last_packet_wall is None or time.monotonic() - self.last_packet_wall > 1.0
        bad = st.skipped_packets + st.out_of_range + st.truncated_bytes + self.geometry_errors
        level = S.STALE if stale else (S.WARN if bad or st.seq_gaps else S.OK)
        msg = "no event packets" if stale else ("bad input counted" if bad else "running")
        lat = np.percentile(self.lat_ms, [50, 99]) if self.lat_ms else (float("nan"),) * 2
        self.lat_ms = self.lat_ms[-1000:]
        publish_diagnostics(self, self.diag_pub, [diagnostic(
            self, "inference", level[0], msg,
            {"model": self.card["preset"], "backend": f"{self.backend}:{self.device}",
             "bins": self.bins, "events": st.events, "packets": st.packets,
             "seq_gaps": st.seq_gaps, "skipped_packets": st.skipped_packets,
             "geometry_errors": self.geometry_errors, "last_error": st.last_error,
             "latency_p50_ms": f"{lat[0]:.2f}", "latency_p99_ms": f"{lat[1]:.2f}"})])

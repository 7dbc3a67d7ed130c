"""The hot path from EventPacket to model outputs, in one place (no rclpy).

``PerceptionPipeline.process(packet)`` decodes (lenient: problems are counted), maps other
sensor sizes onto the model's, windows the events into the model's time bins and steps the
streaming HybridNet once per closed bin. The inference node, ``snn4 demo`` and replay all
call this, so they compute exactly the same thing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..events import FrameStream, Packet, PacketDecoder, PacketEncoder, make_events
from ..events.errors import UserError
from ..events.frames import rescale_events
from ..models.hybridnet import HybridNet, HybridOutput, StreamingRunner


@dataclass
class BinResult:
    frame: np.ndarray              # [2, H, W] counts of the bin
    output: HybridOutput
    snn_s: float = 0.0             # stage times of this bin: spiking backbone,
    head_s: float = 0.0            # bridge (ERS + SAT) + ANN heads


@dataclass
class Decision:
    """What one bin's output means downstream: class scores, top class, tracked target.
    The inference node publishes exactly this; replay scores exactly this."""

    probs: np.ndarray                       # [classes] softmax scores
    top: int
    confidence: float
    position: tuple[float, float] | None    # target (x, y) in model pixels
    visibility: float | None                # target visibility probability

    @classmethod
    def of(cls, out: HybridOutput) -> "Decision":
        probs = torch.softmax(out.logits[0].float(), -1).cpu().numpy()
        top = int(probs.argmax())
        pos = vis = None
        if out.position is not None:
            pos = tuple(float(v) for v in out.position[0])
            vis = float(torch.sigmoid(out.visible[0].float()))
        return cls(probs, top, float(probs[top]), pos, vis)


class GeometryError(UserError):
    """A packet whose sensor size the pipeline cannot use (counted, never fatal)."""


class PerceptionPipeline:
    """EventPackets in, one ``BinResult`` per closed time bin out: decoder, geometry check and
    rescaling, windowing into the model's frames and the streaming HybridNet, with their
    counters (bad data, geometry errors, time jumps). One object per stream: it keeps the
    decoder's, the windowing's and every neuron's state between packets, so the inference
    node, ``snn4 demo`` and both replays compute exactly the same decisions."""

    def __init__(self, net: HybridNet, device: str = "cpu", rescale: bool = True,
                 strict: bool = False, backbone=None):
        """``backbone(frame [1, C, H, W], stamp_ns) -> (last-stage spikes, layer counts)``
        replaces the local spiking backbone (the Lava bridge for ``backend:=lava``)."""
        self.net = net.to(device).eval()
        self.remote_backbone = backbone
        self.device = device
        self.rescale = rescale
        self.runner = StreamingRunner(self.net)
        self.cfg = net.cfg.frame_config()
        self.model_geometry = (net.cfg.sensor_width, net.cfg.sensor_height)
        self.max_gap_ns = net.cfg.window * net.cfg.bin_us * 1000
        self.decoder = PacketDecoder(strict=strict)
        self.frames = FrameStream(self.cfg, *self.model_geometry)
        self.stream_geometry: tuple[int, int] | None = None
        self.geometry_errors = 0
        self.time_jumps = 0
        self.bins = 0
        self.timing = (0.0, 0.0)        # seconds of the last packet: (decode, windowing)

    def warm_up(self) -> None:
        """First calls load the compiled decoders and allocate model buffers (~0.5 s): do
        them before packets arrive instead of stalling the first second of a stream."""
        ev = make_events([0, 1000], [1, 2], [1, 2], [0, 1])
        for enc in ("evt3", "libcaer_cmp"):
            PacketDecoder(strict=False).decode(PacketEncoder(enc, 8, 8).encode(ev))
        c = self.net.cfg
        if self.remote_backbone is None:      # the remote backbone keeps its own state
            self.runner.step(torch.zeros(1, c.in_channels, c.input_height, c.input_width,
                                         device=self.device))
            self.runner.reset()

    def _check_geometry(self, pkt: Packet) -> tuple[int, int]:
        geom = (int(pkt.width), int(pkt.height))
        if self.stream_geometry is None:
            if geom != self.model_geometry and not self.rescale:
                raise GeometryError(f"packets are {geom[0]}x{geom[1]}, the model expects "
                                    f"{self.model_geometry[0]}x{self.model_geometry[1]} and "
                                    "rescaling is off")
            self.stream_geometry = geom
        elif geom != self.stream_geometry:
            raise GeometryError(f"packet seq={pkt.seq} is {geom[0]}x{geom[1]}, the stream "
                                f"started as {self.stream_geometry[0]}x"
                                f"{self.stream_geometry[1]}")
        return geom

    def process(self, pkt: Packet) -> list[BinResult]:
        """Outputs for every time bin this packet closes (often none, sometimes several)."""
        try:
            geom = self._check_geometry(pkt)
        except GeometryError:
            self.geometry_errors += 1
            raise
        t_dec = time.perf_counter()
        ea = self.decoder.decode(pkt, where=f"seq={pkt.seq}")
        t_win = time.perf_counter()
        ev = rescale_events(ea.events, geom, self.model_geometry)
        t0 = self.frames.t0_ns
        if len(ev) and t0 is not None and (int(ev["t"][0]) < t0
                                           or int(ev["t"][0]) - t0 > self.max_gap_ns):
            # time went back, or leapt ahead by more than a window (a camera restart, a
            # roll-over): restart instead of stepping through hundreds of empty bins
            self.time_jumps += 1
            self.frames = FrameStream(self.cfg, *self.model_geometry)
            self.runner.reset()
        frames, _ = self.frames.push(ev)
        self.timing = (t_win - t_dec, time.perf_counter() - t_win)
        out = []
        for f in frames:
            x = torch.from_numpy(f[None]).to(self.device)
            if self.remote_backbone is None:
                o = self.runner.step(x)
                out.append(BinResult(f, o, *self.runner.timing))
            else:
                t0 = time.perf_counter()
                spikes, counts = self.remote_backbone(x, pkt.stamp_ns)
                t1 = time.perf_counter()
                o = self.runner.heads_step(spikes.to(self.device), counts)
                out.append(BinResult(f, o, t1 - t0, time.perf_counter() - t1))
            self.bins += 1
        return out

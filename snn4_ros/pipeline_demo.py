"""`snn4 demo` / `make demo`: the synthetic DVS through the event pipeline and the SNN.

Synthetic camera -> EventPacket encoder -> decoder -> time-bin frames -> streaming
SNN4-HybridNet (the shipped model), paced in real time, printing one line of live statistics
and the current decision per second. The ROS graph and the dashboard plug in behind it.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .events import FrameStream, PacketDecoder, PacketEncoder
from .events.sources import iter_source
from .models import checkpoint
from .models.data import frame_config
from .models.hybridnet import StreamingRunner
from .models.zoo import find_model


def run_demo(duration_s: float | None = None, seed: int = 0, encoding: str = "evt3",
             model: str = "hybridnet_gesture_synth", out=print) -> int:
    torch.set_num_threads(1)
    net, card = checkpoint.load(find_model(model))
    runner = StreamingRunner(net)
    cfg = frame_config(net.cfg)
    enc = dec = frames = None
    n_ev = n_pkt = n_bins = correct = decided = 0
    lat, infer = [], []
    t_print = time.monotonic()
    out(f"snn4 demo: synthetic 128x128 DVS -> {encoding} EventPackets -> "
        f"{cfg.bin_us // 1000} ms frames -> {card['preset']} ({card['parameters']:,} parameters, "
        f"streaming) (Ctrl-C to stop)")
    label = {}
    for chunk in iter_source(f"synthetic:{seed}", chunk_us=2000, realtime=True,
                             duration_s=duration_s):
        if enc is None:
            enc = PacketEncoder(encoding, chunk.width, chunk.height, frame_id="event_camera")
            dec = PacketDecoder(strict=True)
            frames = FrameStream(cfg, chunk.width, chunk.height)
        t0 = time.perf_counter()
        ea = dec.decode(enc.encode(chunk.events))
        fr, _ = frames.push(ea.events)
        lat.append(time.perf_counter() - t0)
        label = chunk.label or label           # no reset at gesture changes: a live system
                                               # does not know when a gesture starts
        for f in fr:
            t1 = time.perf_counter()
            o = runner.step(torch.from_numpy(f[None]))
            infer.append(time.perf_counter() - t1)
            n_bins += 1
        n_ev += len(ea)
        n_pkt += 1
        now = time.monotonic()
        if now - t_print >= 1.0 and infer:
            p = torch.softmax(o.logits, -1)[0]
            conf, cls = p.max(0)
            name = net.cfg.classes[int(cls)]
            ok = name == label.get("name")
            settled = label.get("t_ns", 0) - label.get("gesture_start_ns", 0) > \
                net.cfg.window * net.cfg.bin_us * 1000      # a full window into the gesture
            decided += settled
            correct += ok and settled
            gx, gy, _ = label.get("target", (np.nan, np.nan, False))
            tx, ty = (float(v) for v in o.position[0]) if o.position is not None else (np.nan,) * 2
            out(f"{n_ev / (now - t_print):8,.0f} ev/s {n_pkt / (now - t_print):4.0f} pkt/s "
                f"{n_bins:3d} bins  decode p50 {np.median(lat) * 1e3:4.2f} ms  "
                f"snn p50 {np.median(infer) * 1e3:5.2f} ms  "
                f"truth={label.get('name', '?'):<15} snn={name:<15} p={float(conf):.2f} "
                f"{'ok ' if ok else '-- '} target=({tx:5.1f},{ty:5.1f}) truth=({gx:5.1f},{gy:5.1f}) "
                f"[{correct}/{decided} settled agree]")
            n_ev = n_pkt = n_bins = 0
            lat.clear()
            infer.clear()
            t_print = now
    return 0

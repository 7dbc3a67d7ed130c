"""``snn4 demo``: the synthetic DVS through the event pipeline and the SNN, in one process
without ROS (``make demo`` runs the ROS graph instead: ``snn4 up --dashboard``).

Synthetic camera -> EventPacket encoder -> ``PerceptionPipeline`` (the inference node's
code: decoder, time-bin frames, streaming SNN4-HybridNet), paced in real time, printing one
line of live statistics and the current decision per second.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..events import PacketEncoder
from ..events.sources import iter_source
from ..models import checkpoint
from ..models.zoo import find_model
from ..runtime.pipeline import PerceptionPipeline
from ..runtime.realtime import behind_real_time


def run_demo(duration_s: float | None = None, seed: int = 0, encoding: str = "evt3",
             model: str = "hybridnet_gesture_synth", out=print) -> int:
    torch.set_num_threads(1)
    net, card = checkpoint.load(find_model(model))
    pipe = PerceptionPipeline(net, strict=True)      # the inference node's code path
    pipe.warm_up()
    enc = None
    n_ev = n_pkt = n_bins = correct = decided = 0
    infer = []
    t_print = time.monotonic()
    out(f"snn4 demo: synthetic 128x128 DVS -> {encoding} EventPackets -> "
        f"{pipe.cfg.bin_us // 1000} ms frames -> {card['preset']} ({card['parameters']:,} "
        "parameters, streaming) (Ctrl-C to stop)")
    label = {}
    for chunk in iter_source(f"synthetic:seed={seed}", chunk_us=2000, realtime=True,
                             duration_s=duration_s):
        if enc is None:
            enc = PacketEncoder(encoding, chunk.width, chunk.height, frame_id="event_camera")
        t0 = time.perf_counter()
        results = pipe.process(enc.encode(chunk.events))
        if results:
            infer.append((time.perf_counter() - t0) / len(results))
            o = results[-1].output
            n_bins += len(results)
        label = chunk.label or label           # no reset at gesture changes: a live system
                                               # does not know when a gesture starts
        n_ev += len(chunk.events)
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
            behind = behind_real_time(n_bins * pipe.cfg.bin_us / 1e6, now - t_print)
            out(f"{n_ev / (now - t_print):8,.0f} ev/s {n_pkt / (now - t_print):4.0f} pkt/s "
                f"{n_bins:3d} bins  packet->decision p50 {np.median(infer) * 1e3:5.2f} ms  "
                f"truth={label.get('name', '?'):<15} snn={name:<15} p={float(conf):.2f} "
                f"{'ok ' if ok else '-- '} target=({tx:5.1f},{ty:5.1f}) truth=({gx:5.1f},{gy:5.1f}) "
                f"[{correct}/{decided} settled agree]" + (f"  WARNING {behind}" if behind else ""))
            n_ev = n_pkt = n_bins = 0
            infer.clear()
            t_print = now
    return 0

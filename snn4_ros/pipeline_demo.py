"""`snn4 demo` / `make demo`: the synthetic DVS streamed through the event pipeline.

Synthetic camera -> EventPacket encoder -> decoder -> time-bin frames, paced in real time,
printing one line of live statistics per second. Later stages (inference, controller,
dashboard) plug in behind the frames.
"""

from __future__ import annotations

import time

import numpy as np

from .events import FrameConfig, FrameStream, PacketDecoder, PacketEncoder
from .events.sources import iter_source


def run_demo(duration_s: float | None = None, seed: int = 0, encoding: str = "evt3",
             out=print) -> int:
    enc = dec = frames = None
    cfg = FrameConfig(bin_us=10_000, downsample=2)
    n_ev = n_pkt = n_frames = 0
    lat = []
    t_print = time.monotonic()
    out(f"snn4 demo: synthetic 128x128 DVS -> {encoding} EventPackets -> decoder -> "
        f"{cfg.bin_us // 1000} ms frames at 64x64 (Ctrl-C to stop)")
    for chunk in iter_source(f"synthetic:{seed}", chunk_us=2000, realtime=True,
                             duration_s=duration_s):
        if enc is None:
            enc = PacketEncoder(encoding, chunk.width, chunk.height, frame_id="event_camera")
            dec = PacketDecoder(strict=True)
            frames = FrameStream(cfg, chunk.width, chunk.height)
        t0 = time.perf_counter()
        pkt = enc.encode(chunk.events)
        ea = dec.decode(pkt)
        fr, _ = frames.push(ea.events)
        lat.append(time.perf_counter() - t0)
        n_ev += len(ea)
        n_pkt += 1
        n_frames += len(fr)
        now = time.monotonic()
        if now - t_print >= 1.0:
            label = chunk.label or {}
            tx, ty, _ = label.get("target", (np.nan, np.nan, False))
            out(f"{n_ev / (now - t_print):9,.0f} ev/s  {n_pkt / (now - t_print):5.0f} pkt/s  "
                f"{n_frames:3d} frames  decode+frame p50 {np.median(lat) * 1e3:5.2f} ms  "
                f"gesture={label.get('name', '?'):<16} target=({tx:5.1f},{ty:5.1f})  "
                f"gaps={dec.stats.seq_gaps}")
            n_ev = n_pkt = n_frames = 0
            lat.clear()
            t_print = now
    return 0

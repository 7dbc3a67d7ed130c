"""Labelled recordings from the synthetic DVS: a ROS 2 bag of EventPackets + a labels CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .bags import BagWriter
from .codecs import PacketEncoder
from .synthetic import GESTURES, GestureSimulator


def record_synthetic(out: str | Path, gestures: int = 11, seed: int = 0, gesture_s: float = 2.0,
                     encoding: str = "evt3", storage: str = "mcap", packet_us: int = 2000,
                     topic: str = "/event_camera/events") -> dict:
    """Write ``gestures`` consecutive gestures (cycling through all classes in a seeded order)
    as EventPackets of ``packet_us`` each; labels go to ``<out>.labels.csv`` as
    ``start,end,class`` rows in the bag's clock (ns): header stamps and log times are
    ``t_offset + sensor time``, while event times stay sensor time (from 0), as with a real
    camera whose clock starts at power-on."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    order = [int(g) for g in np.concatenate([rng.permutation(len(GESTURES))
                                             for _ in range(-(-gestures // len(GESTURES)))])]
    order = order[:gestures]
    sim = GestureSimulator(seed=seed)
    enc = PacketEncoder(encoding, sim.sensor.width, sim.sensor.height, frame_id="event_camera")
    t_offset = 1_700_000_000 * 10**9        # a plausible wall-clock origin for the bag
    rows, n_ev, n_msg = [], 0, 0
    stream = sim.stream(gesture_s=gesture_s, gestures=order)
    steps_per_packet = max(1, packet_us // sim.scene_cfg.dt_us)
    steps_total = int(round(gestures * gesture_s * 1e6 / sim.scene_cfg.dt_us))
    cur, start = None, None
    with BagWriter(out, storage) as bag:
        buf = []
        for i in range(steps_total):
            ev, label = next(stream)
            if label["gesture"] != cur:
                if cur is not None:
                    rows.append((start, label["gesture_start_ns"] + t_offset, GESTURES[cur]))
                cur, start = label["gesture"], label["gesture_start_ns"] + t_offset
            buf.append(ev)          # event times stay sensor time, as a camera's do
            if len(buf) == steps_per_packet or i == steps_total - 1:
                chunk = np.concatenate(buf)
                buf = []
                stamp = int(label["t_ns"]) + t_offset
                bag.write_packet(enc.encode(chunk, stamp_ns=stamp), topic, log_time_ns=stamp)
                n_ev += len(chunk)
                n_msg += 1
        rows.append((start, sim.t_ns + t_offset, GESTURES[cur]))
    labels = out.parent / f"{out.name}.labels.csv"
    with open(labels, "w") as f:
        f.write("start,end,class\n")
        for a, b, c in rows:
            f.write(f"{a},{b},{c}\n")
    return {"bag": str(out), "labels": str(labels), "messages": n_msg, "events": n_ev,
            "gestures": [r[2] for r in rows], "encoding": encoding}

"""Labelled recordings from the synthetic DVS: a ROS 2 bag of EventPackets + a labels CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .bags import BagWriter
from .errors import UserError, did_you_mean
from .codecs import PacketEncoder
from .synthetic import GESTURES, GestureSimulator


def record_synthetic(out: str | Path, gestures: int = 11, seed: int = 0, gesture_s: float = 2.0,
                     encoding: str = "evt3", storage: str = "mcap", packet_us: int = 2000,
                     topic: str = "/event_camera/events", progress: bool = False,
                     classes: list[str] | None = None) -> dict:
    """Write ``gestures`` consecutive gestures (cycling through all classes in a seeded order,
    or through ``classes`` in the order given) as EventPackets of ``packet_us`` each; labels
    go to ``<out>.labels.csv`` as ``start,end,class`` rows in the bag's clock (ns): header
    stamps and log times are ``t_offset + sensor time``, while event times stay sensor time
    (from 0), as with a real camera whose clock starts at power-on. Refuses to touch an
    existing bag or labels file (nothing is lost); ``progress`` shows a bar in seconds of
    recording."""
    out = Path(out)
    labels = out.parent / f"{out.name}.labels.csv"
    for p in (out, labels):
        if p.exists():
            raise UserError(f"{p} already exists: choose another --out, or delete it first "
                            "(nothing is overwritten)")
    if gestures < 1 or gesture_s <= 0:
        raise UserError(f"want at least one gesture of more than 0 s, got {gestures} x "
                        f"{gesture_s} s")
    unknown = [c for c in classes or () if c not in GESTURES]
    if unknown:
        raise UserError(f"no gesture class {unknown[0]!r}{did_you_mean(unknown[0], GESTURES)}"
                        f" (classes: {', '.join(GESTURES)})")
    out.parent.mkdir(parents=True, exist_ok=True)    # out/ of a fresh clone
    if classes:
        order = [GESTURES.index(classes[i % len(classes)]) for i in range(gestures)]
    else:
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
    from tqdm import tqdm
    bar = tqdm(total=round(gestures * gesture_s, 1), unit="s", desc=f"recording {out.name}",
               disable=not progress, leave=False,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s of "
                          "recording [{elapsed}<{remaining}]")
    with BagWriter(out, storage) as bag, bar:
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
                done_s = (i + 1) * sim.scene_cfg.dt_us / 1e6
                bar.update(done_s - bar.n)
        rows.append((start, sim.t_ns + t_offset, GESTURES[cur]))
    with open(labels, "w") as f:
        f.write("start,end,class\n")
        for a, b, c in rows:
            f.write(f"{a},{b},{c}\n")
    return {"bag": str(out), "labels": str(labels), "messages": n_msg, "events": n_ev,
            "gestures": [r[2] for r in rows], "encoding": encoding}

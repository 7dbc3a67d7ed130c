"""Event-layer throughput: decoders per encoding and events->frames, beside tonic.

    python bench/events.py [--quick]

Decoding is measured on real recordings from ../shared/data, replicated into one long
stream (large buffers) and as the bag's own packets (per-packet overhead included). The
last line printed is one JSON object with every figure (M events/s).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "bench"))
from _common import Run  # noqa: E402

from snn4_ros.events import (FrameConfig, Packet, PacketDecoder, PacketEncoder,  # noqa: E402
                             events_to_frames, events_to_voxel_grid, make_events)
from snn4_ros.events.bags import iter_bag  # noqa: E402


def best_of(fn, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def decode_rate(packets, n_events, repeat=5):
    def run():
        dec = PacketDecoder()
        for p in packets:
            dec.decode(p)
    return n_events / best_of(run, repeat) / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller inputs (for a smoke run)")
    args = ap.parse_args()
    reps = 10 if args.quick else 60
    rep = 1 if args.quick else 3       # best-of repeats, the same for ours and tonic's
    run = Run("events").__enter__()
    out = {"best_of": rep}

    # ---- evt3: the real Prophesee bag (vectors, triggers), its own packets and one long stream
    pk = [m.packet for m in iter_bag(SHARED / "rosbag2/evt3_trigger")]
    dec = PacketDecoder()
    n_bag = sum(len(dec.decode(p)) for p in pk)
    out["evt3_packets_mev_s"] = round(decode_rate(pk, n_bag), 1)
    big = Packet("evt3", 1280, 720, b"".join(bytes(p.payload()) for p in pk) * reps)
    n_big = len(PacketDecoder(strict=False).decode(big))
    out["evt3_mev_s"] = round(decode_rate([big], n_big, 3), 1)
    out["evt3_events"] = n_big

    # ---- libcaer (real bag) and libcaer_cmp / mono (real events re-encoded)
    pk = [m.packet for m in iter_bag(SHARED / "rosbag2/libcaer_rollover")]
    dec = PacketDecoder()
    parts = [dec.decode(p).events for p in pk]
    ev = np.concatenate(parts)
    out["libcaer_packets_mev_s"] = round(decode_rate(pk, len(ev)), 1)
    for enc_name in ("libcaer_cmp", "mono"):
        enc = PacketEncoder(enc_name, 640, 480)
        own = [enc.encode(e) for e in parts]
        out[f"{enc_name}_packets_mev_s"] = round(decode_rate(own, len(ev)), 1)
        # one long stream: the same events, time-shifted copies, in 100 ms packets
        k = max(reps // 6, 2)
        span = int(ev["t"][-1] - ev["t"][0]) + 1000
        long = np.concatenate([ev] * k)
        long["t"] = np.concatenate([ev["t"] + i * span for i in range(k)])
        enc = PacketEncoder(enc_name, 640, 480)
        edges = np.searchsorted(long["t"], np.arange(long["t"][0], long["t"][-1], 100_000_000))
        chunks = [enc.encode(c) for c in np.split(long, edges[1:]) if len(c)]
        out[f"{enc_name}_mev_s"] = round(decode_rate(chunks, len(long), 3), 1)
    enc = PacketEncoder("libcaer_cmp", 640, 480)
    own = [enc.encode(e) for e in parts]
    out["libcaer_cmp_bytes_per_event"] = round(sum(len(p.payload()) for p in own) / len(ev), 2)

    # ---- events -> frames, against tonic.ToFrame (np.add.at) on the same 128x128 events
    import tonic.transforms as T

    rng = np.random.default_rng(0)
    n = 2_000_000 if args.quick else 10_000_000
    t_us = np.sort(rng.integers(0, 1_600_000, n))
    ev = make_events(t_us * 1000, rng.integers(0, 128, n), rng.integers(0, 128, n),
                     rng.integers(0, 2, n))
    cfg = FrameConfig(bin_us=100_000)
    t0 = int(ev["t"][0])
    frames = events_to_frames(ev, 16, cfg, 128, 128, t0_ns=t0)
    tev = np.zeros(n, dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
    tev["x"], tev["y"], tev["t"], tev["p"] = ev["x"], ev["y"], t_us, ev["p"]
    to_frame = T.ToFrame(sensor_size=(128, 128, 2), time_window=100_000)
    ref = to_frame(tev)
    k = min(len(ref), 16)           # tonic drops the last, incomplete window
    out["frames_match_tonic"] = bool(np.array_equal(ref[:k], frames[:k]))
    out["frames_mev_s"] = round(n / best_of(lambda: events_to_frames(ev, 16, cfg, 128, 128,
                                                                   t0_ns=t0), rep) / 1e6, 1)
    out["tonic_frames_mev_s"] = round(n / best_of(lambda: to_frame(tev), rep) / 1e6, 1)
    out["frames_vs_tonic"] = round(out["frames_mev_s"] / out["tonic_frames_mev_s"], 1)
    to_vox = T.ToVoxelGrid(sensor_size=(128, 128, 2), n_time_bins=16)
    out["voxel_mev_s"] = round(n / best_of(lambda: events_to_voxel_grid(ev, 16, cfg, 128, 128,
                                                                       t0_ns=0), rep) / 1e6, 1)
    out["tonic_voxel_mev_s"] = round(n / best_of(lambda: to_vox(tev), rep) / 1e6, 1)
    out["voxel_vs_tonic"] = round(out["voxel_mev_s"] / out["tonic_voxel_mev_s"], 1)
    out["cpu"] = f"{__import__('os').cpu_count()} cores"

    w = max(len(k) for k in out)
    for k, v in out.items():
        print(f"{k:<{w}}  {v}")
    run.emit(out)


if __name__ == "__main__":
    main()

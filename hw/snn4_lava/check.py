"""``make lava-check``: the torch fixed-point emulation vs Lava, spike train by spike train.

    python -m snn4_lava.check CHECK.npz MODEL_BASE

``CHECK.npz`` (written by ``snn4 loihi export --check-inputs``) holds N input clips and the
torch emulation's spikes of every layer for each. Each clip runs through a fresh Lava
network (``fixed_pt``, CPU) for T + layers steps; a clip matches when every layer's spike
train equals the emulation's bit for bit. Prints per-step times and, last,
``bit-exact: MATCHED/TOTAL``. Exit status 1 unless all match.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .network import LavaBackbone


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("npz")
    ap.add_argument("model", help="model base path (MODEL.lava.safetensors / .lava.json)")
    ap.add_argument("--limit", type=int, default=0, help="check only the first N clips")
    ap.add_argument("--connection", default="sparse", choices=["sparse", "conv"],
                    help="Lava process for the convolutions (Sparse or Conv)")
    args = ap.parse_args(argv)
    with np.load(args.npz, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    frames, names = data["frames"], data["names"]
    n = len(frames) if not args.limit else min(args.limit, len(frames))
    layers = sum(1 for k in data if k.startswith("ref_layer"))
    matched, step_s, startup = 0, [], []
    print(f"{n} clips x {frames.shape[1]} bins, {layers} layers: Lava fixed_pt "
          f"({args.connection} connections) vs torch emulation")
    for i in range(n):
        T = frames.shape[1]
        steps = T + layers
        net = LavaBackbone(args.model, connection=args.connection, num_steps=steps)
        startup.append(net.startup_s)
        got = [[] for _ in range(layers)]
        zero = np.zeros(net.layers[0].in_shape)
        t0 = time.perf_counter()
        for t in range(steps):
            x = frames[i, t].transpose(2, 1, 0) if t < T else zero       # (C,H,W) -> (W,H,C)
            for k, s in enumerate(net.step(x)):
                got[k].append(s)
        step_s.append((time.perf_counter() - t0) / steps)
        net.close()
        diffs = []
        for k in range(layers):
            ref = data[f"ref_layer{k}"][i]
            out = np.stack(got[k])
            if not np.array_equal(ref, out):
                bad = np.flatnonzero((ref != out).reshape(steps, -1).any(1))
                diffs.append(f"layer {k}: {int((ref != out).sum())} spikes differ, first at "
                             f"step {bad[0]}")
        ok = not diffs
        matched += ok
        spikes = int(sum(data[f"ref_layer{k}"][i].sum() for k in range(layers)))
        print(f"  {str(names[i]):<48} {'MATCH' if ok else 'DIFF '} {spikes:7d} spikes"
              + ("" if ok else "  " + "; ".join(diffs)), flush=True)
    tt = data.get("torch_step_s")
    print(f"per step: Lava fixed_pt simulation ({args.connection}) "
          f"{np.median(step_s) * 1e3:.2f} ms (median; "
          f"start-up {np.median(startup) * 1e3:.0f} ms per network)"
          + (f", torch emulation {float(tt) * 1e3:.2f} ms" if tt is not None else ""))
    print(f"bit-exact: {matched}/{n}")
    return 0 if matched == n else 1


if __name__ == "__main__":
    sys.exit(main())

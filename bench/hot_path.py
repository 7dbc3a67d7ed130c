"""The inference hot path per bin, stage by stage.

    python bench/hot_path.py [--repeats 200]

Per-bin stage times of the streaming HybridNet (spiking backbone, and the bridge: ERS, SAT,
then the ANN heads), timed round-robin so load falls on every stage alike. A rewrite of the
SAT's Conv3d as shifted multiply-adds was measured here slower than PyTorch's Conv3d
(1.28 vs 0.93 ms) and is not shipped. The last line is one JSON object, also written to
bench/results/hot_path.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from _common import Run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()

    import torch

    from snn4_ros.models import checkpoint
    from snn4_ros.models.hybridnet import StreamingRunner
    from snn4_ros.models.zoo import find_model

    torch.set_num_threads(1)
    with Run("hot_path") as run:
        net, _ = checkpoint.load(find_model("hybridnet_gesture_synth"))
        net.eval()
        runner = StreamingRunner(net)
        c = net.cfg
        torch.manual_seed(0)
        x = (torch.rand(1, c.in_channels, c.input_height, c.input_width) < 0.05).float()
        for _ in range(c.window):
            runner.step(x)
        s = torch.stack(runner.buffer)
        with torch.no_grad():
            w, _ = net.ers(s)
            dense, _ = net.sat(w)

        def heads():
            h = net.head(dense)
            net.classifier(h.mean(dim=(2, 3)))
            if c.tracking:
                net.heat(h)
                net.vis(h.mean(dim=(2, 3)))
        stages = {"backbone": lambda: runner.backbone_step(x), "ers": lambda: net.ers(s),
                  "sat": lambda: net.sat(w), "heads": heads}
        ts = {k: [] for k in stages}
        with torch.no_grad():
            for _ in range(args.repeats):
                for k, fn in stages.items():
                    t0 = time.perf_counter()
                    fn()
                    ts[k].append(time.perf_counter() - t0)
        ms = {k: round(statistics.median(v) * 1e3, 3) for k, v in ts.items()}
        bridge_heads = ms["ers"] + ms["sat"] + ms["heads"]
        print(f"per bin (median of {args.repeats}, round-robin): " +
              ", ".join(f"{k} {v} ms" for k, v in ms.items()), flush=True)
        run.emit({"stage_ms": ms, "bridge_heads_ms": round(bridge_heads, 3),
                  "bridge_heads_over_backbone": round(bridge_heads / ms["backbone"], 2)})


if __name__ == "__main__":
    main()

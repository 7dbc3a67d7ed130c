"""The inference hot path per bin, stage by stage.

    python bench/hot_path.py [--repeats 200]

Per-bin stage times of the streaming HybridNet (spiking backbone, and the bridge: ERS, SAT,
then the ANN heads), timed round-robin so load falls on every stage alike. Then one whole
step back to back, once per 40 ms as a live node runs it, and so with the step rehearsed
just before (``prewarm``): on this VM code idle for tens of milliseconds runs from cold
caches, and that, not the arithmetic, is most of a live bin's time. Measured here and not
shipped: TorchScript freezing of the bridge and heads (1.97 -> 1.48 ms back to back, 9.7 ->
8.8 ms paced) and ``torch.compile`` (1.68 -> 1.20 ms back to back, 9.9 -> 11.0 ms paced, and
~40 s of compilation at every start). A rewrite of the
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
    ap.add_argument("--paced-bins", type=int, default=100,
                    help="steps per variant in the paced measurement (40 ms apart)")
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
        paced = _paced(runner, x, args.paced_bins)
        print("one whole step, " + ", ".join(f"{k} {v} ms" for k, v in paced.items()),
              flush=True)
        run.emit({"stage_ms": ms, "bridge_heads_ms": round(bridge_heads, 3),
                  "bridge_heads_over_backbone": round(bridge_heads / ms["backbone"], 2),
                  "paced_step_ms": paced, "paced_bins": args.paced_bins,
                  "paced_over_back_to_back": round(paced["paced"] / paced["back_to_back"], 2),
                  "prewarmed_over_paced": round(paced["paced_prewarmed"] / paced["paced"], 2)})


def _paced(runner, x, n: int) -> dict:
    """Median time of one whole streaming step (backbone, bridge, heads): back to back; once
    per 40 ms bin as a live node runs it (the wait spent asleep); and the same with the
    step rehearsed 5 ms before (``StreamingRunner.rehearse``, what ``prewarm`` does).
    Rounds alternate so that the machine's load falls on the three alike."""
    import time

    import torch

    zero = torch.zeros_like(x)
    ts: dict = {"back_to_back": [], "paced": [], "paced_prewarmed": []}
    with torch.no_grad():
        for _ in range(n):
            for k in ts:
                if k == "back_to_back":
                    runner.step(x)
                else:
                    time.sleep(0.035 if k == "paced_prewarmed" else 0.04)
                    if k == "paced_prewarmed":
                        runner.rehearse(zero)
                        time.sleep(0.005)
                t0 = time.perf_counter()
                runner.step(x)
                ts[k].append(time.perf_counter() - t0)
    return {k: round(statistics.median(v) * 1e3, 3) for k, v in ts.items()}


if __name__ == "__main__":
    main()

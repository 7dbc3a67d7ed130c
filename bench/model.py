"""The same 3-conv SNN in snn4_ros, snnTorch, SpikingJelly (multi-step) and Norse, side by side.

    python bench/model.py [--quick]          (make bench-env installs the peers)

Architecture for everyone: [conv3x3 s2 -> BN -> LIF] x 3 (2->16->32->64 channels) on
[T=16, B, 2, 64, 64] inputs, then a linear read-out of the mean spike map (11 classes).
LIF: beta 0.5 (tau 2), threshold 1, hard reset to 0, reset detached, arctan surrogate.
Peers are configured to the same dynamics as peer-frameworks.md records:
snnTorch Leaky(reset_mechanism="zero", reset_delay=False), SpikingJelly LIFNode(tau=2,
decay_input=False, detach_reset=True, step_mode="m"), Norse LIFBoxCell (no current state).

Figures: ms per window at B=1 (inference), samples/s at B=32 (inference), samples/s of a
BPTT training step at B=16 (forward, backward, AdamW), and snn4's streaming per-bin latency.
The process runs with the same malloc settings for everyone (``tune_allocator``). The last
line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snn4_ros.models.layers import SpikingConv  # noqa: E402
from snn4_ros.models.neurons import LIF  # noqa: E402
from snn4_ros.models.allocator import tune_allocator  # noqa: E402
from snn4_ros.models.surrogate import Surrogate  # noqa: E402

T, C_IN, H, W, N_CLS = 16, 2, 64, 64, 11
CH = (16, 32, 64)


def convs():
    out, c = [], C_IN
    for ch in CH:
        out.append((nn.Conv2d(c, ch, 3, 2, 1, bias=False), nn.BatchNorm2d(ch)))
        c = ch
    return out


# ------------------------------------------------------------------ snn4_ros
class Snn4Net(nn.Module):
    def __init__(self):
        super().__init__()
        layers, c = [], C_IN
        for ch in CH:
            layers.append(SpikingConv(c, ch, LIF(tau=2.0, surrogate=Surrogate("arctan", 2.0)), 3, 2))
            c = ch
        self.layers = nn.ModuleList(layers)
        self.fc = nn.Linear(CH[-1] * 8 * 8, N_CLS)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.fc(x.mean(0).flatten(1))

    @torch.no_grad()
    def stream_step(self, x, states):
        for i, layer in enumerate(self.layers):
            x, states[i] = layer.step(x, states[i])
        return x, states


# ------------------------------------------------------------------ snnTorch
def snntorch_net():
    import snntorch as snn
    from snntorch import surrogate

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.ModuleList([nn.Sequential(cv, bn) for cv, bn in convs()])
            self.lif = nn.ModuleList([snn.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero",
                                                reset_delay=False,
                                                spike_grad=surrogate.atan(alpha=2.0))
                                      for _ in CH])
            self.fc = nn.Linear(CH[-1] * 64, N_CLS)

        def forward(self, x):
            mems = [lif.init_leaky() for lif in self.lif]
            acc = 0
            for t in range(x.shape[0]):
                h = x[t]
                for i, (c, lif) in enumerate(zip(self.c, self.lif)):
                    h, mems[i] = lif(c(h), mems[i])
                acc = acc + h
            return self.fc((acc / x.shape[0]).flatten(1))
    return Net()


# ------------------------------------------------------------------ SpikingJelly
def spikingjelly_net():
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            mods = []
            for cv, bn in convs():
                mods += [layer.SeqToANNContainer(cv, bn),
                         neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=1.0, v_reset=0.0,
                                        detach_reset=True, surrogate_function=surrogate.ATan(),
                                        step_mode="m")]
            self.body = nn.Sequential(*mods)
            self.fc = nn.Linear(CH[-1] * 64, N_CLS)
            functional.set_step_mode(self, "m")
            self._functional = functional

        def forward(self, x):
            self._functional.reset_net(self)
            return self.fc(self.body(x).mean(0).flatten(1))
    return Net()


# ------------------------------------------------------------------ Norse
def norse_net():
    import norse.torch as norse

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.ModuleList([nn.Sequential(cv, bn) for cv, bn in convs()])
            p = norse.LIFBoxParameters(tau_mem_inv=torch.tensor(500.0), v_th=torch.tensor(1.0),
                                       v_reset=torch.tensor(0.0), v_leak=torch.tensor(0.0))
            self.lif = nn.ModuleList([norse.LIFBoxCell(p, dt=0.001) for _ in CH])
            self.fc = nn.Linear(CH[-1] * 64, N_CLS)

        def forward(self, x):
            states = [None] * len(self.lif)
            acc = 0
            for t in range(x.shape[0]):
                h = x[t]
                for i, (c, lif) in enumerate(zip(self.c, self.lif)):
                    h, states[i] = lif(c(h), states[i])
                acc = acc + h
            return self.fc((acc / x.shape[0]).flatten(1))
    return Net()


def time_it(fn, n, warmup=2):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def measure(net: nn.Module, quick: bool) -> dict:
    torch.manual_seed(0)
    x1 = (torch.rand(T, 1, C_IN, H, W) < 0.05).float()
    x32 = (torch.rand(T, 32, C_IN, H, W) < 0.05).float()
    x16 = (torch.rand(T, 16, C_IN, H, W) < 0.05).float()
    y16 = torch.randint(0, N_CLS, (16,))
    net.eval()
    with torch.no_grad():
        b1 = time_it(lambda: net(x1), 10 if quick else 40)
        b32 = time_it(lambda: net(x32), 2 if quick else 6)
    net.train()
    opt = torch.optim.AdamW(net.parameters(), 1e-3)

    def train_step():
        opt.zero_grad()
        nn.functional.cross_entropy(net(x16), y16).backward()
        opt.step()
    tr = time_it(train_step, 2 if quick else 6, warmup=1)
    return {"infer_b1_ms": b1 * 1e3, "infer_b32_samples_s": 32 / b32, "train_samples_s": 16 / tr}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    tune_allocator()
    torch.set_num_threads(torch.get_num_threads())
    rows = {}
    ours = Snn4Net()
    rows["snn4_ros"] = measure(ours, args.quick)
    # streaming: one 4 ms bin at a time through the same network, state carried
    ours.eval()
    states = [None] * 3
    xb = (torch.rand(1, C_IN, H, W) < 0.05).float()
    rows["snn4_ros"]["stream_bin_ms"] = time_it(lambda: ours.stream_step(xb, states), 200) * 1e3
    for name, make in (("snntorch", snntorch_net), ("spikingjelly", spikingjelly_net),
                       ("norse", norse_net)):
        try:
            rows[name] = measure(make(), args.quick)
        except ImportError as exc:
            rows[name] = {"error": f"not installed ({exc}); run make bench-env"}
    peers = [v for k, v in rows.items() if k != "snn4_ros" and "error" not in v]
    out = {"shape": [T, "B", C_IN, H, W], "threads": torch.get_num_threads()}
    for k, v in rows.items():
        print(f"{k:<14} " + "  ".join(f"{m} {x:8.2f}" if isinstance(x, float) else f"{m} {x}"
                                       for m, x in v.items()))
    o = rows["snn4_ros"]
    out.update({"infer_b1_ms": round(o["infer_b1_ms"], 2),
                "infer_b32_samples_s": round(o["infer_b32_samples_s"], 1),
                "train_samples_s": round(o["train_samples_s"], 1),
                "stream_bin_ms": round(o["stream_bin_ms"], 3)})
    if peers:
        bi = min(peers, key=lambda v: v["infer_b1_ms"])
        bt = max(peers, key=lambda v: v["train_samples_s"])
        bb = max(peers, key=lambda v: v["infer_b32_samples_s"])
        out.update({"infer_b1_ms_best_peer": round(bi["infer_b1_ms"], 2),
                    "infer_b32_samples_s_best_peer": round(bb["infer_b32_samples_s"], 1),
                    "train_samples_s_best_peer": round(bt["train_samples_s"], 1),
                    "infer_speedup": round(bi["infer_b1_ms"] / o["infer_b1_ms"], 2),
                    "train_speedup": round(o["train_samples_s"] / bt["train_samples_s"], 2)})
    out["peers"] = {k: {m: round(x, 2) for m, x in v.items()} if "error" not in v else v
                    for k, v in rows.items() if k != "snn4_ros"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()

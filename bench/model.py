"""The same 3-conv SNN in snn4_ros, snnTorch, SpikingJelly (multi-step) and Norse, side by side.

    python bench/model.py [--quick] [--rounds N]     (make bench-env installs the peers)

Architecture for everyone: [conv3x3 s2 -> BN -> LIF] x 3 (2->16->32->64 channels) on
[T=16, B, 2, 64, 64] inputs, then a linear read-out of the mean spike map (11 classes).

Like with like:
* Dynamics: every neuron computes v = 0.5 v + x, spike at v > 1, hard reset to 0, reset
  detached -- snnTorch ``Leaky(beta=0.5, reset_mechanism="zero", reset_delay=False)``,
  SpikingJelly ``LIFNode(tau=2, decay_input=False, detach_reset=True)``, Norse
  ``LIFBoxCell(tau_mem_inv=500, dt=1e-3, v_th=0.5)`` (Norse integrates v += 0.5 (x - v), i.e.
  half our membrane, so its threshold is halved). The bench checks that the four produce the
  same spike trains on the same input (``dynamics_match``) before timing anything.
  Surrogates stay each framework's own (arctan; Norse has none, its SuperSpike is used).
* Two configurations, each in its own fresh process (malloc settings are per process) with
  all four frameworks timed round-robin, call by call, with equal repeat counts -- on a
  shared or slow machine the load then falls on everyone alike:
  ``user`` -- how each framework's users run it (default glibc malloc, NCHW tensors; snn4_ros
  converts to channels-last inside its layers, which is how our users get it) -- and
  ``tuned`` -- the same malloc settings for all (``tune_allocator``: no mmap for large blocks)
  and channels-last inputs and conv weights for every peer.
* The speed goals (inference >= 3x, training >= 1.5x the best peer) count against the best
  *tuned* peer; the ratios against the user configuration are printed beside them.

Figures: ms per window at B=1 (inference), samples/s at B=32 (inference), samples/s of a
BPTT training step at B=16 (forward, backward, AdamW), and snn4's streaming per-bin latency.
The last line printed is one JSON object, also written to bench/results/model.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import Run  # noqa: E402

from snn4_ros.models.layers import SpikingConv  # noqa: E402
from snn4_ros.models.neurons import LIF  # noqa: E402
from snn4_ros.models.allocator import tune_allocator  # noqa: E402
from snn4_ros.models.surrogate import Surrogate  # noqa: E402

T, C_IN, H, W, N_CLS = 16, 2, 64, 64, 11
CH = (16, 32, 64)
FRAMEWORKS = ("snn4_ros", "snntorch", "spikingjelly", "norse")
CONFIGS = ("user", "tuned")


def convs():
    out, c = [], C_IN
    for ch in CH:
        out.append((nn.Conv2d(c, ch, 3, 2, 1, bias=False), nn.BatchNorm2d(ch)))
        c = ch
    return out


# ------------------------------------------------------------------ neurons (one layer each)
def lif_snn4():
    return LIF(tau=2.0, surrogate=Surrogate("arctan", 2.0))


def lif_snntorch():
    import snntorch as snn
    from snntorch import surrogate
    return snn.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero", reset_delay=False,
                     spike_grad=surrogate.atan(alpha=2.0))


def lif_spikingjelly(step_mode="m"):
    from spikingjelly.activation_based import neuron, surrogate
    return neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=1.0, v_reset=0.0,
                          detach_reset=True, surrogate_function=surrogate.ATan(),
                          step_mode=step_mode)


def norse_params():
    import norse.torch as norse
    # Norse: v += dt * tau_mem_inv * (x - v) = 0.5 v + 0.5 x, i.e. half of our v = 0.5 v + x;
    # a halved threshold gives the same spikes (and the same hard reset to 0)
    return norse.LIFBoxParameters(tau_mem_inv=torch.tensor(500.0), v_th=torch.tensor(0.5),
                                  v_reset=torch.tensor(0.0), v_leak=torch.tensor(0.0))


def lif_norse():
    import norse.torch as norse
    return norse.LIFBoxCell(norse_params(), dt=0.001)


def dynamics_check() -> dict:
    """Spike trains of each framework's neuron on one input sequence, against ours."""
    torch.manual_seed(0)
    x = torch.rand(T, 4096) * 1.5
    with torch.no_grad():
        ref = lif_snn4()(x)
        out = {}
        for name, make in (("snntorch", lif_snntorch), ("norse", lif_norse)):
            try:
                cell, st, s = make(), None, []
                if name == "snntorch":
                    st = cell.init_leaky()
                for t in range(T):
                    z, st = cell(x[t], st)
                    s.append(z)
                out[name] = bool(torch.equal(torch.stack(s), ref))
            except ImportError:
                out[name] = None
        try:
            from spikingjelly.activation_based import functional
            n = lif_spikingjelly()
            functional.reset_net(n)
            out["spikingjelly"] = bool(torch.equal(n(x), ref))
        except ImportError:
            out["spikingjelly"] = None
    out["spike_rate"] = round(float(ref.mean()), 3)
    return out


# ------------------------------------------------------------------ networks
class Snn4Net(nn.Module):
    def __init__(self):
        super().__init__()
        layers, c = [], C_IN
        for ch in CH:
            layers.append(SpikingConv(c, ch, lif_snn4(), 3, 2))
            c = ch
        self.layers = nn.ModuleList(layers)
        self.fc = nn.Linear(CH[-1] * 8 * 8, N_CLS)
        for m in self.modules():       # what HybridNet and checkpoint.load do
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


class StepLoopNet(nn.Module):
    """snnTorch's and Norse's idiom: a Python loop over time steps, a cell per layer."""

    def __init__(self, make_lif, init_state):
        super().__init__()
        self.c = nn.ModuleList([nn.Sequential(cv, bn) for cv, bn in convs()])
        self.lif = nn.ModuleList([make_lif() for _ in CH])
        self.init_state = init_state
        self.fc = nn.Linear(CH[-1] * 64, N_CLS)

    def forward(self, x):
        states = [self.init_state(lif) for lif in self.lif]
        acc = 0
        for t in range(x.shape[0]):
            h = x[t]
            for i, (c, lif) in enumerate(zip(self.c, self.lif)):
                h, states[i] = lif(c(h), states[i])
            acc = acc + h
        return self.fc((acc / x.shape[0]).flatten(1))


def snntorch_net():
    return StepLoopNet(lif_snntorch, lambda lif: lif.init_leaky())


def norse_net():
    return StepLoopNet(lif_norse, lambda lif: None)


def spikingjelly_net():
    from spikingjelly.activation_based import functional, layer

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            mods = []
            for cv, bn in convs():
                mods += [layer.SeqToANNContainer(cv, bn), lif_spikingjelly()]
            self.body = nn.Sequential(*mods)
            self.fc = nn.Linear(CH[-1] * 64, N_CLS)
            functional.set_step_mode(self, "m")
            self._functional = functional

        def forward(self, x):
            self._functional.reset_net(self)
            return self.fc(self.body(x).mean(0).flatten(1))
    return Net()


MAKERS = {"snn4_ros": Snn4Net, "snntorch": snntorch_net, "spikingjelly": spikingjelly_net,
          "norse": norse_net}


# ------------------------------------------------------------------ timing
def channels_last_seq(x: torch.Tensor) -> torch.Tensor:
    """[T, B, C, H, W] stored as [T, B, H, W, C]: every x[t] (and x.flatten(0, 1)) is a
    channels-last 4-D tensor, the layout the peers' convolutions get in ``tuned``."""
    return x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)


def setup(name: str, config: str):
    """The network and its inputs in the configuration's layout (same seed for everyone)."""
    torch.manual_seed(0)
    net = MAKERS[name]()
    x1 = (torch.rand(T, 1, C_IN, H, W) < 0.05).float()
    x32 = (torch.rand(T, 32, C_IN, H, W) < 0.05).float()
    x16 = (torch.rand(T, 16, C_IN, H, W) < 0.05).float()
    y16 = torch.randint(0, N_CLS, (16,))
    if config == "tuned" and name != "snn4_ros":
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)
        x1, x32, x16 = (channels_last_seq(x) for x in (x1, x32, x16))
    opt = torch.optim.AdamW(net.parameters(), 1e-3)

    def train_step():
        net.train()
        opt.zero_grad()
        nn.functional.cross_entropy(net(x16), y16).backward()
        opt.step()

    def infer(x):
        net.eval()
        with torch.no_grad():
            net(x)
    return net, {"b1": lambda: infer(x1), "b32": lambda: infer(x32), "train": train_step}


def interleaved(fns: dict, n: int, warmup: int) -> dict:
    """Median seconds per call of each function, timed round-robin: on a shared machine the
    load then falls on every framework alike (what makes the ratios comparable)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    ts = {k: [] for k in fns}
    for _ in range(n):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in ts.items()}


def measure_config(config: str, quick: bool) -> dict:
    """Every framework in this process, in one configuration, timed interleaved."""
    if config == "tuned":
        tune_allocator()
    nets, fns, rows = {}, {}, {}
    for f in FRAMEWORKS:
        try:
            nets[f], fns[f] = setup(f, config)
        except ImportError as exc:
            rows[f] = {"error": f"not installed ({exc}); run make bench-env"}
    reps = (10, 2, 2) if quick else (40, 6, 6)
    res = {}
    for (phase, scale), n in zip((("b1", 1e3), ("b32", 1), ("train", 1)), reps):
        res[phase] = interleaved({f: fns[f][phase] for f in fns}, n, 1 if phase != "b1" else 3)
    for f in fns:
        rows[f] = {"infer_b1_ms": res["b1"][f] * 1e3, "infer_b32_samples_s": 32 / res["b32"][f],
                   "train_samples_s": 16 / res["train"][f]}
    ours = nets.get("snn4_ros")
    if ours is not None:
        # streaming: one bin at a time through the same network, state carried
        ours.eval()
        states = [None] * 3
        xb = (torch.rand(1, C_IN, H, W) < 0.05).float()
        rows["snn4_ros"]["stream_bin_ms"] = interleaved(
            {"s": lambda: ours.stream_step(xb, states)}, 200, 5)["s"] * 1e3
    rows["repeats"] = list(reps)
    return rows


def child(config: str, quick: bool, threads: int) -> dict:
    torch.set_num_threads(threads)
    return measure_config(config, quick)


def run_child(config: str, quick: bool, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", config, "--threads", str(threads)] \
        + (["--quick"] if quick else [])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        err = {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
        return {f: err for f in FRAMEWORKS}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat the whole sweep (interleaved) and keep the median per figure")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.quick, args.threads)))
        return
    with Run("model") as run:
        check = dynamics_check()
        print("same spikes as snn4_ros's LIF:", check, flush=True)
        raw: dict = {f: {c: [] for c in CONFIGS} for f in FRAMEWORKS}
        for _ in range(args.rounds):
            for config in CONFIGS:
                got = run_child(config, args.quick, args.threads)
                for f in FRAMEWORKS:
                    r = got.get(f, {"error": "no result"})
                    raw[f][config].append(r)
                    print(f"{f:<13} {config:<6} " + "  ".join(
                        f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in r.items()), flush=True)
        rows = {}
        for f in FRAMEWORKS:
            rows[f] = {}
            for c in CONFIGS:
                ok = [r for r in raw[f][c] if "error" not in r]
                if not ok:
                    rows[f][c] = raw[f][c][-1]
                    continue
                rows[f][c] = {k: round(statistics.median(r[k] for r in ok), 3)
                              for k in ok[0] if isinstance(ok[0][k], float)}
        out = {"shape": [T, "B", C_IN, H, W], "threads": args.threads, "rounds": args.rounds,
               "repeats_b1_b32_train": [10, 2, 2] if args.quick else [40, 6, 6],
               "dynamics_match": check, "rows": rows}
        o = rows["snn4_ros"]["tuned"]
        if "error" not in o:
            out.update({"infer_b1_ms": o["infer_b1_ms"],
                        "infer_b32_samples_s": o["infer_b32_samples_s"],
                        "train_samples_s": o["train_samples_s"],
                        "stream_bin_ms": o["stream_bin_ms"]})
            for c in CONFIGS:
                peers = {f: rows[f][c] for f in FRAMEWORKS[1:] if "error" not in rows[f][c]}
                if not peers:
                    continue
                bi = min(peers, key=lambda f: peers[f]["infer_b1_ms"])
                bb = max(peers, key=lambda f: peers[f]["infer_b32_samples_s"])
                bt = max(peers, key=lambda f: peers[f]["train_samples_s"])
                sfx = "" if c == "tuned" else "_vs_user"
                out.update({
                    f"best_peer_infer_b1{sfx}": bi,
                    f"infer_speedup{sfx}": round(peers[bi]["infer_b1_ms"] / o["infer_b1_ms"], 2),
                    f"best_peer_infer_b32{sfx}": bb,
                    f"infer_b32_speedup{sfx}": round(o["infer_b32_samples_s"]
                                                     / peers[bb]["infer_b32_samples_s"], 2),
                    f"best_peer_train{sfx}": bt,
                    f"train_speedup{sfx}": round(o["train_samples_s"]
                                                 / peers[bt]["train_samples_s"], 2)})
            if "infer_speedup" in out:
                out["goal_infer_3x"] = out["infer_speedup"] >= 3.0
                out["goal_train_1_5x"] = out["train_speedup"] >= 1.5
        run.emit(out)


if __name__ == "__main__":
    main()

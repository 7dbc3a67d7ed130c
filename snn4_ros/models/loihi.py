"""The Loihi 2 profile of the spiking backbone, and its exact fixed-point arithmetic in torch.

A ``LoihiConv`` layer is what Lava's ``Conv`` + ``LIF`` processes compute, one time step at
a time, and nothing the chip cannot:

* binary input spikes (the first layer thresholds the event counts: an event is a spike);
* ``Conv`` (``PyConvModelFixed``): integer weights, the sum wrapped to 24 bits, sent **one
  step later** (each Conv sends last step's result, then computes this step's), no bias, no
  batch norm; ``weight_exp`` is 0 (the CPU model ignores it, so the scale lives in ``vth``);
  weights are even integers in [-256, 254]: 8-bit mixed-sign weights lose their lowest bit
  on the chip (Dense's ``(w >> 1) << 1``), so every weight is one the chip can hold exactly;
* ``LIF`` (``PyLifModelBitAcc``), in its order: ``u = trunc0(u (4096 - (du + 1)) / 4096)``,
  ``u += a << 6``, one wrap at 2^23, ``v = clip(trunc0(v (4096 - dv) / 4096) + u,
  +-(2^23 - 1))``, spike where ``v > vth << 6`` (strict), ``v = 0`` after a spike, ``u`` kept.

``fixed=False`` runs the same network in float (``du_f = (du + 1) / 4096``, ``dv_f =
dv / 4096``, threshold ``vth / scale``): the model one trains first. ``quantize`` converts it
(weights x ``scale`` -> even integers, ``vth = round(scale)``), and with ``fixed=True`` the
forward pass is the chip's integer arithmetic -- exact in float64, whose 53-bit mantissa
holds every intermediate -- while the backward pass goes through straight-through
estimators and the surrogate spike gradient: quantisation-aware training.
``hw/snn4_lava`` builds the same layers as Lava processes from the checkpoint and checks
the spike trains bit for bit (``make lava-check``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..events.errors import UserError
from .layers import ConvCounts
from .surrogate import Surrogate

W_MIN, W_MAX = -256, 254          # even: exact under the chip's mixed-sign 8-bit weights
V_LIM = 2 ** 23 - 1
WRAP = 2 ** 24


class LoihiState(NamedTuple):
    a: torch.Tensor        # synaptic input computed last step, delivered this step
    u: torch.Tensor
    v: torch.Tensor


class LoihiCompatibilityError(UserError):
    """A network (or checkpoint) that does not map onto Loihi 2; the message lists why."""


def _ste(exact: torch.Tensor, smooth: torch.Tensor) -> torch.Tensor:
    """``exact`` forward, ``smooth``'s gradient backward."""
    return smooth + (exact - smooth).detach()


def _trunc_decay(x: torch.Tensor, keep: int) -> torch.Tensor:
    """``trunc0(x * keep / 4096)`` as the chip computes it (sign * (|x * keep| >> 12))."""
    smooth = x * (keep / 4096.0)
    return _ste(torch.trunc(smooth), smooth)


def _wrap(x: torch.Tensor, bits: int) -> torch.Tensor:
    base = 2 ** bits
    return torch.remainder(x + base // 2, base) - base // 2


class LoihiConv(ConvCounts, nn.Module):
    """Conv + CUBA-LIF with the chip's arithmetic (see the module docstring)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1,
                 du: int = 2047, dv: int = 1024, surrogate: Surrogate | None = None,
                 binary_input: bool = False):
        super().__init__()
        for name, val in (("du", du), ("dv", dv)):
            if not (isinstance(val, int) and 0 <= val <= 4095):
                raise LoihiCompatibilityError(f"{name} must be a 12-bit integer, got {val!r}")
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False)
        nn.init.kaiming_uniform_(self.conv.weight, a=1.0)
        self.kernel, self.stride = kernel, stride
        self.du, self.dv = du, dv
        self.spike = surrogate if surrogate is not None else Surrogate()
        self.binary_input = binary_input
        # float weights x scale -> integer weights; threshold vth = round(scale) (float: 1.0)
        self.register_buffer("scale", torch.tensor(0.0, dtype=torch.float64))
        self.fixed = False

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self.fixed = float(self.scale) > 0       # a quantised checkpoint runs in fixed point

    # ------------------------------------------------------------------ quantisation
    @property
    def vth(self) -> int:
        return int(torch.round(self.scale).item())

    def quantize(self, scale: float | None = None) -> None:
        """Fix the integer scale (default: the largest weight maps to the largest even
        integer) and switch to the fixed-point forward pass."""
        if scale is None:
            wmax = float(self.conv.weight.detach().abs().max())
            scale = (W_MAX / wmax) if wmax > 0 else 1.0
        if not 1 <= round(scale) <= 2 ** 17 - 1:
            raise LoihiCompatibilityError(f"threshold {round(scale)} outside Loihi's 17 bits "
                                          "(weights too small or too large)")
        self.scale.fill_(float(scale))
        self.fixed = True

    def weight_int(self) -> torch.Tensor:
        """Even integers in [-256, 254] (straight-through rounding for training)."""
        smooth = self.conv.weight * self.scale.float()
        exact = torch.clamp(2 * torch.round(smooth / 2), W_MIN, W_MAX)
        return _ste(exact, smooth)

    # ------------------------------------------------------------------ dynamics
    def _input(self, x: torch.Tensor) -> torch.Tensor:
        if self.binary_input:
            return _ste((x > 0).to(x.dtype), torch.clamp(x, 0, 1))
        return x

    def synapse(self, x: torch.Tensor) -> torch.Tensor:
        x = self._input(x)
        if not self.fixed:
            return self.conv(x)
        # float32 is exact here: |sum| <= 256 * fan-in << 2^24
        a = F.conv2d(x.float(), self.weight_int(), None, self.stride, self.kernel // 2)
        return _ste(_wrap(a.detach().double(), 24), a.double())

    def init_state(self, a: torch.Tensor) -> LoihiState:
        z = torch.zeros_like(a, dtype=torch.float64 if self.fixed else a.dtype)
        return LoihiState(z, z, z)

    def neuron(self, a: torch.Tensor, u: torch.Tensor, v: torch.Tensor):
        if not self.fixed:
            u = u * (1 - (self.du + 1) / 4096) + a
            v = v * (1 - self.dv / 4096) + u
            s = self.spike(v - 1.0)
            return s, u, v * (1 - s.detach())
        vth6 = float(self.vth * 64)
        u = _trunc_decay(u, 4096 - (self.du + 1)) + a * 64
        u = _ste(torch.where(u > 2 ** 23, u - WRAP, torch.where(u <= -2 ** 23, u + WRAP, u)), u)
        v = torch.clamp(_trunc_decay(v, 4096 - self.dv) + u, -V_LIM, V_LIM)
        s = self.spike((v - vth6) / vth6)
        return s, u, v * (1 - s.detach())

    def step(self, x: torch.Tensor, state: LoihiState | None):
        """One time step: deliver last step's synaptic input, integrate, spike."""
        a_new = self.synapse(x)
        if state is None:
            state = self.init_state(a_new)
        s, u, v = self.neuron(state.a, state.u, state.v)
        return s.float() if self.fixed else s, LoihiState(a_new, u, v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes [T, B, C, H, W] for input [T, B, C_in, H_in, W_in] (one step of delay)."""
        T, B = x.shape[:2]
        a = self.synapse(x.reshape(T * B, *x.shape[2:]))
        a = a.reshape(T, B, *a.shape[1:])
        a = torch.cat([torch.zeros_like(a[:1]), a[:-1]])          # the Conv's one-step delay
        u = v = torch.zeros_like(a[0])
        out = []
        for t in range(T):
            s, u, v = self.neuron(a[t], u, v)
            out.append(s)
        s = torch.stack(out)
        return s.float() if self.fixed else s

    def lava_params(self) -> dict:
        """What Lava needs, as integers (weights in Lava's (C_out, W, H, C_in) layout with
        the kernel flipped: Lava's Conv is a true convolution, torch's a correlation)."""
        w = self.weight_int().detach().round().to(torch.int32)          # [C_out, C_in, H, W]
        lava_w = torch.flip(w, dims=(2, 3)).permute(0, 3, 2, 1).contiguous()
        return {"weight": lava_w, "vth": self.vth, "du": self.du, "dv": self.dv,
                "stride": self.stride, "padding": self.kernel // 2,
                "binary_input": self.binary_input}


def set_fixed(model: nn.Module, fixed: bool) -> None:
    for m in model.modules():
        if isinstance(m, LoihiConv):
            if fixed and float(m.scale) == 0:
                raise LoihiCompatibilityError("quantize() the model before running it in "
                                              "fixed point")
            m.fixed = fixed


def quantize_model(model: nn.Module) -> list[int]:
    """Float -> fixed point for every Loihi layer; returns the thresholds chosen."""
    layers = [m for m in model.modules() if isinstance(m, LoihiConv)]
    check_loihi(model)
    for m in layers:
        m.quantize()
    return [m.vth for m in layers]


def check_loihi(model: nn.Module) -> None:
    """Raise LoihiCompatibilityError listing everything in the spiking part that does not
    map onto Loihi 2 (neuron types, attention blocks, weight ranges)."""
    problems = []
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        raise LoihiCompatibilityError("not a HybridNet: no spiking backbone")
    for i, layer in enumerate(backbone):
        if not isinstance(layer, LoihiConv):
            neuron = type(getattr(layer, "neuron", layer)).__name__
            if neuron == "IF":          # a converted network (models/convert.py)
                problems.append(
                    f"backbone.{i}: converted IF neurons (reset by subtraction, membrane "
                    "started at half threshold, per-channel bias from batch norm"
                    + (", signed spikes" if getattr(layer.neuron, "signed", False) else "")
                    + "); the Loihi profile's CUBA-LIF resets to zero and has neither bias "
                    "nor initial membrane here")
                continue
            problems.append(f"backbone.{i}: {type(layer).__name__} with {neuron} neurons and "
                            "batch norm (Loihi profile layers are LoihiConv: conv + CUBA-LIF, "
                            "no batch norm)")
        elif float(layer.scale) > 0 and not 1 <= layer.vth <= 2 ** 17 - 1:
            problems.append(f"backbone.{i}: threshold vth {layer.vth} outside Loihi's 17 bits")
        elif float(layer.scale) > 0:
            # the forward pass clips to 8 bits; a layer that clips much has lost its scale
            w = (layer.conv.weight.detach() * float(layer.scale)).abs()
            clipped = float((w > 256.5).float().mean())
            if clipped > 0.05:
                problems.append(f"backbone.{i}: {clipped:.0%} of the weights exceed 8 bits "
                                "after scaling (re-quantize)")
    if getattr(model, "attn", None) is not None:
        problems.append("attn: spike-driven self-attention (SDSA) has no Loihi mapping here")
    if problems:
        raise LoihiCompatibilityError("the network does not map onto Loihi 2:\n  "
                                      + "\n  ".join(problems))


# ---------------------------------------------------------------------- export for Lava
def export_lava(model: nn.Module, base) -> tuple:
    """``BASE.lava.safetensors`` (integer weights in Lava's layout) + ``BASE.lava.json``
    (per layer: vth, du, dv, stride, padding, input and output shapes in Lava's (W, H, C)).
    The Lava side (Python 3.10, no torch) builds its processes from these two files alone."""
    import json
    from pathlib import Path

    from safetensors.numpy import save_file

    check_loihi(model)
    layers = list(model.backbone)
    if any(float(m.scale) == 0 for m in layers):
        raise LoihiCompatibilityError("export a quantised model (snn4 loihi quantize)")
    cfg = model.cfg
    h, w, c = cfg.input_height, cfg.input_width, cfg.in_channels
    tensors, meta = {}, []
    for i, (m, (c_out, h_out, w_out)) in enumerate(zip(layers, cfg.stage_shapes())):
        p = m.lava_params()
        tensors[f"layer{i}.weight"] = p.pop("weight").numpy()
        meta.append(p | {"in_shape": [w, h, c], "out_shape": [w_out, h_out, c_out]})
        h, w, c = h_out, w_out, c_out
    base = Path(base)
    st = base.parent / f"{base.name}.lava.safetensors"
    js = base.parent / f"{base.name}.lava.json"
    save_file(tensors, str(st))
    js.write_text(json.dumps({"preset": cfg.preset, "layers": meta,
                              "note": "weights: Lava Conv layout (C_out, W, H, C_in), kernel "
                                      "flipped; inputs: (W, H, C) frames, any value > 0 is a "
                                      "spike"}, indent=1))
    return st, js


@torch.no_grad()
def reference_spikes(model: nn.Module, frames: torch.Tensor) -> list[torch.Tensor]:
    """Every backbone layer's spikes for one sample ``[T, C, H, W]`` in fixed point, run
    for ``T + layers`` steps (zeros after the input: the pipeline delay flushes through);
    returned in Lava's layout ``[steps, W, H, C]`` as uint8."""
    layers = list(model.backbone)
    steps = frames.shape[0] + len(layers)
    states = [None] * len(layers)
    out = [[] for _ in layers]
    zero = torch.zeros_like(frames[0])
    for t in range(steps):
        x = (frames[t] if t < frames.shape[0] else zero)[None].float()
        for i, m in enumerate(layers):
            x, states[i] = m.step(x, states[i])
            out[i].append(x[0])
    return [torch.stack(o).permute(0, 3, 2, 1).to(torch.uint8).contiguous() for o in out]


def write_check_file(model: nn.Module, clips: list[tuple[str, torch.Tensor]], path) -> dict:
    """The inputs and the emulation's spikes for ``make lava-check`` (an .npz, no pickles)."""
    import time

    import numpy as np

    model.eval()
    set_fixed(model, True)
    refs: list[list] = []
    t0 = time.perf_counter()
    steps = 0
    for _, frames in clips:
        r = reference_spikes(model, frames)
        refs.append(r)
        steps += r[0].shape[0]
    torch_step_s = (time.perf_counter() - t0) / max(steps, 1)
    arrays = {"frames": np.stack([f.numpy().astype(np.uint8) for _, f in clips]),
              "names": np.array([n for n, _ in clips]),
              "torch_step_s": np.array(torch_step_s)}
    for k in range(len(refs[0])):
        arrays[f"ref_layer{k}"] = np.stack([r[k].numpy() for r in refs])
    np.savez_compressed(path, **arrays)
    return {"clips": len(clips), "torch_step_s": torch_step_s}

"""Spiking neurons with explicit state: ``step(x, state) -> (spikes, state)``.

Every neuron is an ``nn.Module`` holding its parameters; state is never stored in the module,
so one network can serve many streams and a streaming runner owns the state it carries from
bin to bin. ``forward(x_seq)`` runs the multi-step recurrence over ``[T, B, ...]`` for
training (and, without autograd, a fused in-place loop for inference).

Neurons:
* ``LIF``      v = beta v + x; spike at v > threshold; hard (v=0) or soft (v-=threshold) reset
* ``PLIF``     LIF with a learnable decay per layer (Fang et al. 2021)
* ``ALIF``     adaptive threshold threshold + b a, a = rho a + s (LSNN, Bellec et al. 2018)
* ``TCLIF``    two compartments, dendrite and soma (TC-LIF, Zhang et al. 2024)
* ``CUBALIF``  current-based LIF as Lava / Loihi 2 define it: u = u (1-du) + x,
               v = v (1-dv) + u + bias, spike at v > vth, v = 0 after a spike. The Loihi issue
               replaces its float arithmetic by the chip's fixed point (``hw/``).
* ``IF``       integrate-and-fire, reset by subtraction, membrane started at ``v_init``
               thresholds; optionally signed spikes: the neuron of ANN-to-SNN conversion
* ``QCFS``     not a spiking neuron: the quantisation-clip-floor-shift activation of the ANN
               a converted network is trained as (Bu et al., ICLR 2022; models/convert.py)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from . import lif_kernels as _k
from .surrogate import Surrogate

_NO_SAVE = np.empty((0, 0), np.float32)


class LIFState(NamedTuple):
    v: torch.Tensor


class ALIFState(NamedTuple):
    v: torch.Tensor
    a: torch.Tensor


class TCLIFState(NamedTuple):
    d: torch.Tensor
    v: torch.Tensor
    s: torch.Tensor


class CUBAState(NamedTuple):
    u: torch.Tensor
    v: torch.Tensor


class Neuron(nn.Module):
    """Common multi-step driver: subclasses define ``init_state`` and ``step``."""

    def __init__(self, threshold: float = 1.0, surrogate: Surrogate | None = None,
                 detach_reset: bool = True):
        super().__init__()
        if threshold <= 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        self.threshold = float(threshold)
        self.spike = surrogate if surrogate is not None else Surrogate()
        self.detach_reset = detach_reset

    def init_state(self, x: torch.Tensor):
        raise NotImplementedError

    def step(self, x: torch.Tensor, state):
        raise NotImplementedError

    def _reset_spikes(self, s: torch.Tensor) -> torch.Tensor:
        return s.detach() if self.detach_reset else s

    def forward(self, x_seq: torch.Tensor, state=None):
        """Spikes ``[T, ...]`` for inputs ``[T, ...]``; the final state too if asked for one."""
        st = self.init_state(x_seq[0]) if state is None else state
        out = []
        for t in range(x_seq.shape[0]):
            s, st = self.step(x_seq[t], st)
            out.append(s)
        spikes = torch.stack(out)
        return (spikes, st) if state is not None else spikes


class LIF(Neuron):
    """Leaky integrate-and-fire. ``tau`` >= 1 gives beta = 1 - 1/tau."""

    def __init__(self, tau: float = 2.0, threshold: float = 1.0, reset: str = "hard",
                 surrogate: Surrogate | None = None, detach_reset: bool = True):
        super().__init__(threshold, surrogate, detach_reset)
        if tau < 1:
            raise ValueError(f"tau must be >= 1 (in time steps), got {tau}")
        if reset not in ("hard", "soft"):
            raise ValueError(f"reset must be 'hard' or 'soft', got {reset!r}")
        self.tau = float(tau)
        self.reset = reset

    def decay(self) -> torch.Tensor | float:
        return 1.0 - 1.0 / self.tau

    def init_state(self, x: torch.Tensor) -> LIFState:
        return LIFState(torch.zeros_like(x))

    def step(self, x: torch.Tensor, state: LIFState):
        v = state.v * self.decay() + x
        s = self.spike(v - self.threshold)
        r = self._reset_spikes(s)
        v = v * (1 - r) if self.reset == "hard" else v - r * self.threshold
        return s, LIFState(v)

    def forward(self, x_seq: torch.Tensor, state=None):
        if type(self) is not LIF:
            return super().forward(x_seq, state)
        if not torch.is_grad_enabled():
            return self._infer(x_seq, state)
        if self.detach_reset and not self.spike.learnable:
            # one autograd node; from a given state (truncated BPTT over chunks of a stream,
            # models/stream_train.py) the state is an input without a gradient
            s, v = _LIFSequence.apply(x_seq, float(self.decay()), self.threshold,
                                      self.reset == "hard", self.spike.kind,
                                      float(self.spike.alpha),
                                      None if state is None else state.v.detach())
            return s if state is None else (s, LIFState(v))
        return super().forward(x_seq, state)

    @torch.no_grad()
    def _infer(self, x_seq: torch.Tensor, state=None):
        """The same recurrence as ``step``: one compiled loop on CPU, in-place ops on GPU."""
        beta, th = float(self.decay()), self.threshold
        xa, back = _k.flat_view(x_seq) if state is None else (None, None)
        if xa is not None:
            spikes = np.empty_like(xa)
            v = np.zeros(xa.shape[1], np.float32)
            _k.lif_forward(xa, np.float32(beta), np.float32(th), self.reset == "hard", v, spikes,
                           _NO_SAVE, np.empty_like(v))
            return back(spikes)
        v = torch.zeros_like(x_seq[0]) if state is None else state.v.clone()
        out = torch.empty_like(x_seq)
        mask = torch.empty_like(v, dtype=torch.bool)
        for t in range(x_seq.shape[0]):
            v.mul_(beta).add_(x_seq[t])
            torch.gt(v, th, out=mask)
            out[t].copy_(mask)
            if self.reset == "hard":
                v.masked_fill_(mask, 0.0)
            else:
                v.sub_(out[t], alpha=th)
        return (out, LIFState(v)) if state is not None else out


class _LIFSequence(torch.autograd.Function):
    """The whole LIF recurrence as one autograd node, with a hand-written backward.

    Autograd over T per-step graphs costs a dozen small tensors per step; here forward keeps
    only the pre-reset membrane and the spikes, and backward runs one elementwise loop:
        dL/dv[t] = dL/ds[t] sg'(v[t] - th) + dL/du[t] du/dv,   du/dv = 1 - s (hard) or 1 (soft)
        dL/du[t-1] = beta dL/dv[t],   dL/dx[t] = dL/dv[t]
    (resets detached, as ``detach_reset=True`` defines them).
    """

    @staticmethod
    def forward(ctx, x, beta, th, hard, kind, alpha, v0=None):
        """Spikes of ``x`` [T, ...] from membrane ``v0`` (None: rest) and the membrane after
        the last step (no gradient: a truncation point of BPTT)."""
        ctx.cfg = (beta, th, hard, kind, alpha)
        xa, back = _k.flat_view(x)
        v0c = None
        if v0 is not None:                      # v0 in x[0]'s memory order, as flat_view reads x
            v0c = torch.empty_like(x[0]).copy_(v0)
        if xa is not None:                      # CPU: one compiled loop
            spikes = np.empty_like(xa)
            v_pre = np.empty_like(xa)
            v = np.zeros(xa.shape[1], np.float32)
            if v0c is not None:
                va, _ = _k.flat_view(v0c[None])
                if va is None:
                    raise ValueError("LIF state and input in different memory layouts")
                v = np.ascontiguousarray(va[0])
            v_out = np.empty_like(v)
            _k.lif_forward(xa, np.float32(beta), np.float32(th), hard, v, spikes, v_pre, v_out)
            s_t, v_t = back(spikes), back(v_pre)
            ctx.save_for_backward(v_t, s_t)
            v_last = torch.empty_like(x[0])     # x[0]'s layout, filled through its flat view
            _k.flat_view(v_last[None])[0][0] = v_out
            ctx.mark_non_differentiable(v_last)
            return s_t, v_last
        v_pre = torch.empty_like(x)
        spikes = torch.empty_like(x)
        u = torch.zeros_like(x[0]) if v0c is None else v0c
        for t in range(x.shape[0]):
            v = u * beta + x[t]
            s = (v > th).to(x.dtype)
            v_pre[t] = v
            spikes[t] = s
            u = v * (1 - s) if hard else v - s * th
        ctx.save_for_backward(v_pre, spikes)
        v_last = u.detach().clone()
        ctx.mark_non_differentiable(v_last)
        return spikes, v_last

    @staticmethod
    def backward(ctx, grad_s, grad_v_last=None):
        from .surrogate import derivative

        v_pre, spikes = ctx.saved_tensors
        beta, th, hard, kind, alpha = ctx.cfg
        va, back = _k.flat_view(v_pre)
        if va is not None:
            g = grad_s if grad_s.stride() == v_pre.stride() else \
                torch.empty_like(v_pre).copy_(grad_s)          # v_pre's memory layout
            ga, _ = _k.flat_view(g)
            sa, _ = _k.flat_view(spikes)
            if ga is not None and sa is not None:
                out = np.empty_like(va)
                _k.LIF_BACKWARD[kind](ga, va, sa, np.float32(beta), np.float32(th), hard,
                                      np.float32(alpha), out)
                return back(out), None, None, None, None, None, None
        grad_x = torch.empty_like(grad_s)
        grad_u = torch.zeros_like(grad_s[0])
        for t in range(grad_s.shape[0] - 1, -1, -1):
            du_dv = (1 - spikes[t]) if hard else 1.0
            gv = grad_s[t] * derivative(v_pre[t] - th, kind, alpha) + grad_u * du_dv
            grad_x[t] = gv
            grad_u = gv * beta
        return grad_x, None, None, None, None, None, None


class PLIF(LIF):
    """LIF whose decay is learned per layer: beta = sigmoid(w), initialised to 1 - 1/tau."""

    def __init__(self, tau: float = 2.0, **kw):
        super().__init__(tau=tau, **kw)
        self.w = nn.Parameter(torch.tensor(math.log(self.tau - 1.0) if self.tau > 1 else -4.0))

    def decay(self) -> torch.Tensor:
        return torch.sigmoid(self.w)


class ALIF(Neuron):
    """Adaptive threshold: theta = threshold + beta_a * a, a = rho a + s (soft reset by theta)."""

    def __init__(self, tau: float = 2.0, tau_adapt: float = 20.0, beta_adapt: float = 0.2,
                 threshold: float = 1.0, surrogate: Surrogate | None = None,
                 detach_reset: bool = True):
        super().__init__(threshold, surrogate, detach_reset)
        self.beta = 1.0 - 1.0 / tau
        self.rho = math.exp(-1.0 / tau_adapt)
        self.beta_adapt = beta_adapt

    def init_state(self, x):
        return ALIFState(torch.zeros_like(x), torch.zeros_like(x))

    def step(self, x, state: ALIFState):
        v = state.v * self.beta + x
        theta = self.threshold + self.beta_adapt * state.a
        s = self.spike(v - theta)
        v = v - self._reset_spikes(s) * theta
        a = state.a * self.rho + s
        return s, ALIFState(v, a)


class TCLIF(Neuron):
    """Two-compartment LIF (TC-LIF): a dendrite integrates input and feeds the soma.

        d[t] = d[t-1] + b1 v[t-1] + x[t] - gamma s[t-1]
        v[t] = v[t-1] + b2 d[t] - threshold s[t-1]
        s[t] = step(v[t] - threshold)

    with learnable couplings b1 = -sigmoid(w1), b2 = sigmoid(w2). The dendrite keeps a long
    memory that the soma's resets do not erase: useful for slow gestures.
    """

    def __init__(self, gamma: float = 0.5, threshold: float = 1.0,
                 surrogate: Surrogate | None = None, detach_reset: bool = True):
        super().__init__(threshold, surrogate, detach_reset)
        self.gamma = gamma
        self.w1 = nn.Parameter(torch.tensor(0.0))
        self.w2 = nn.Parameter(torch.tensor(0.0))

    def init_state(self, x):
        z = torch.zeros_like(x)
        return TCLIFState(z, z, z)

    def step(self, x, state: TCLIFState):
        sp = self._reset_spikes(state.s)
        d = state.d - torch.sigmoid(self.w1) * state.v + x - self.gamma * sp
        v = state.v + torch.sigmoid(self.w2) * d - self.threshold * sp
        s = self.spike(v - self.threshold)
        return s, TCLIFState(d, v, s)


class CUBALIF(Neuron):
    """Current-based LIF with Lava's (Loihi 2's) update order and hard reset to zero."""

    def __init__(self, du: float = 0.5, dv: float = 0.25, bias: float = 0.0,
                 threshold: float = 1.0, surrogate: Surrogate | None = None,
                 detach_reset: bool = True):
        super().__init__(threshold, surrogate, detach_reset)
        for name, val in (("du", du), ("dv", dv)):
            if not 0.0 <= val <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {val}")
        self.du, self.dv, self.bias = du, dv, bias

    def init_state(self, x):
        return CUBAState(torch.zeros_like(x), torch.zeros_like(x))

    def step(self, x, state: CUBAState):
        u = state.u * (1 - self.du) + x
        v = state.v * (1 - self.dv) + u + self.bias
        s = self.spike(v - self.threshold)
        v = v * (1 - self._reset_spikes(s))
        return s, CUBAState(u, v)


class IFState(NamedTuple):
    v: torch.Tensor
    n: torch.Tensor        # net spikes emitted so far (what a signed neuron may take back)


class IF(Neuron):
    """Integrate-and-fire with reset by subtraction: the neuron an ANN converts into.

        v += x;  s = 1 where v >= threshold;  v -= s * threshold

    ``v_init`` (in thresholds) starts the membrane: 0.5 is QCFS's shift. With it, a constant
    input x (in thresholds per step) gives ``floor(0.5 + T x)`` spikes in T steps, clipped to
    [0, T] -- the QCFS activation's level at L = T, which is why the conversion is exact there.

    ``signed=True`` is the error compensation of models/convert.py (signed spikes with
    memory, Wang et al., IJCAI 2022; "dual threshold" in several papers): where the membrane
    falls below 0 and the neuron has a positive net count, it emits a -1 spike and gets one
    threshold back. The count then tracks ``floor(0.5 + sum of inputs)`` however unevenly the
    input arrives over the steps (as long as it moves by at most one threshold per step),
    instead of keeping spikes that an early burst caused and a later inhibition should have
    cancelled (the "unevenness" error). Spikes are then -1, 0 or 1.

    Firing uses ``>=`` (QCFS's floor), unlike the LIF's ``>``. Not meant for training: the
    gradient is the surrogate's, but a converted network is trained as its ANN twin."""

    def __init__(self, threshold: float = 1.0, v_init: float = 0.5, signed: bool = False,
                 surrogate: Surrogate | None = None, detach_reset: bool = True):
        super().__init__(threshold, surrogate, detach_reset)
        if not 0.0 <= v_init <= 1.0:
            raise ValueError(f"v_init must lie in [0, 1] thresholds, got {v_init}")
        self.v_init = float(v_init)
        self.signed = bool(signed)

    def init_state(self, x: torch.Tensor) -> IFState:
        return IFState(torch.full_like(x, self.v_init * self.threshold), torch.zeros_like(x))

    def step(self, x: torch.Tensor, state: IFState):
        v = state.v + x
        th = self.threshold
        pos = (v >= th).to(v.dtype)
        s = pos
        if torch.is_grad_enabled() and v.requires_grad:     # the surrogate's gradient
            g = self.spike(v - th)
            s = pos + (g - g.detach())
        if self.signed:
            neg = ((v < 0) & (state.n > 0)).to(v.dtype)
            s = s - neg
            d = pos - neg
        else:
            d = pos
        return s, IFState(v - d * th, state.n + d)


class QCFS(Neuron):
    """Quantisation-clip-floor-shift activation (Bu et al., "Optimal ANN-SNN conversion for
    high-accuracy and ultra-low-latency spiking neural networks", ICLR 2022):

        h(z) = lam / L * clip(floor(z L / lam + 0.5), 0, L)

    ``L`` quantisation levels, ``lam`` a learnable clip (the layer's threshold after
    conversion). The floor's gradient is passed straight through (d floor(u)/du := 1), so
    ``dh/dz = 1`` inside (0, lam) and 0 outside, and ``lam`` learns through the scaling.
    The +0.5 shift is what the converted IF neuron's half-threshold start reproduces.

    Stateless (``step`` returns the state it was given); it sits where a spiking neuron sits
    so that the ANN twin is the same network with only this module swapped."""

    def __init__(self, levels: int = 8, lam: float = 3.0, shift: float = 0.5,
                 surrogate: Surrogate | None = None, detach_reset: bool = True):
        super().__init__(1.0, surrogate, detach_reset)
        if int(levels) != levels or levels < 1:
            raise ValueError(f"levels must be a positive integer, got {levels}")
        if lam <= 0:
            raise ValueError(f"lam must be positive, got {lam}")
        self.levels, self.shift = int(levels), float(shift)
        self.lam = nn.Parameter(torch.tensor(float(lam)))

    def init_state(self, x: torch.Tensor):
        return ()

    def step(self, x: torch.Tensor, state):
        return self.activation(x), state

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        lam = self.lam.abs().clamp(min=1e-4)
        u = torch.clamp(x / lam, 0, 1) * self.levels + self.shift
        q = u + (torch.floor(u) - u).detach()               # floor, straight through
        return q * (lam / self.levels)

    def forward(self, x_seq: torch.Tensor, state=None):
        y = self.activation(x_seq)
        return (y, state) if state is not None else y


NEURONS = {"lif": LIF, "plif": PLIF, "alif": ALIF, "tclif": TCLIF, "cuba": CUBALIF,
           "if": IF, "qcfs": QCFS}


def make_neuron(kind: str, surrogate: str = "arctan", alpha: float = 2.0,
                learnable_alpha: bool = False, **kw) -> Neuron:
    if kind not in NEURONS:
        raise ValueError(f"unknown neuron {kind!r}; choose from {sorted(NEURONS)}")
    return NEURONS[kind](surrogate=Surrogate(surrogate, alpha, learnable_alpha), **kw)

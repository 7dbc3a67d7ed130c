"""Compiled (numba) LIF recurrences for CPU tensors.

The LIF recurrence is elementwise in space and sequential in time. Written with torch ops it
costs four or five small kernel launches per time step and layer; on a CPU that overhead,
not arithmetic, dominates a streaming SNN. Here each layer's whole sequence runs in one
compiled loop over a ``[T, N]`` float32 view of the tensor (no copy), forward and backward.
Time is the outer loop and neurons the inner one (contiguous, vectorised); the backward pass
also splits the neurons over the cores (measured: the forward pass is faster serial, the
backward pass, with its surrogate arithmetic, faster parallel).
Used on CPU only; CUDA tensors keep the torch path.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

@njit(cache=True, nogil=True, fastmath=True)
def lif_forward(x, beta, th, hard, v0, spikes, v_pre, v_out):
    """x, spikes, v_pre: [T, N]; v0, v_out: [N]. v_pre (pre-reset membrane) is optional
    (shape [0, 0] to skip it, for inference). Time outside, neurons inside: the inner loop
    runs over contiguous memory and vectorises."""
    T, N = x.shape
    save = v_pre.shape[0] == T
    u = v0.copy()
    for t in range(T):
        xt = x[t]
        st = spikes[t]
        for n in range(N):
            v = u[n] * beta + xt[n]
            if save:
                v_pre[t, n] = v
            s = 1.0 if v > th else 0.0
            st[n] = s
            u[n] = v * (1.0 - s) if hard else v - s * th
    v_out[:] = u


def _make_backward(dsg):
    """A backward kernel with the surrogate derivative compiled in: no branch in the inner
    loop, so it vectorises (a runtime switch on the surrogate kind made it 5x slower)."""

    @njit(nogil=True, fastmath=True, parallel=True)
    def kernel(grad_s, v_pre, spikes, beta, th, hard, alpha, grad_x):
        T, N = grad_s.shape
        hf = np.float32(1.0 if hard else 0.0)
        one = np.float32(1.0)
        gu = np.zeros(N, np.float32)
        chunk = 4096
        for t in range(T - 1, -1, -1):
            gs, vp, sp, gx = grad_s[t], v_pre[t], spikes[t], grad_x[t]
            for c in prange((N + chunk - 1) // chunk):
                for n in range(c * chunk, min(N, (c + 1) * chunk)):
                    gv = gs[n] * dsg(vp[n] - th, alpha) + gu[n] * (one - hf * sp[n])
                    gx[n] = gv
                    gu[n] = gv * beta
    return kernel


@njit(inline="always")
def _d_arctan(x, a):
    z = np.float32(math.pi / 2) * a * x
    return (a * np.float32(0.5)) / (np.float32(1.0) + z * z)


@njit(inline="always")
def _d_fast_sigmoid(x, a):
    d = np.float32(1.0) + abs(a * x)
    return (a * np.float32(0.5)) / (d * d)


@njit(inline="always")
def _d_triangle(x, a):
    return a * max(np.float32(0.0), 1 - abs(a * x))


@njit(inline="always")
def _d_rectangle(x, a):
    return a if abs(a * x) < 0.5 else np.float32(0.0)


LIF_BACKWARD = {"arctan": _make_backward(_d_arctan),
                "fast_sigmoid": _make_backward(_d_fast_sigmoid),
                "triangle": _make_backward(_d_triangle),
                "rectangle": _make_backward(_d_rectangle)}


def flat_view(x) -> tuple[np.ndarray, object]:
    """A [T, N] numpy view of a [T, ...] CPU float32 tensor in its own memory order.

    Returns the array and a function mapping a same-layout [T, N] array back to a tensor of
    x's shape and strides, or (None, None) when x is not densely laid out.
    """
    import torch

    if x.dtype != torch.float32 or x.device.type != "cpu":
        return None, None
    if x.dim() == 5 and x[0].is_contiguous(memory_format=torch.channels_last) \
            and not x[0].is_contiguous():
        perm = x.permute(0, 1, 3, 4, 2)                    # [T, B, H, W, C] view, dense
        if not perm.is_contiguous():
            return None, None
        T, B, Hh, Ww, C = perm.shape

        def back(a):
            return torch.from_numpy(a).view(T, B, Hh, Ww, C).permute(0, 1, 4, 2, 3)
        return perm.reshape(T, -1).numpy(), back
    if not x.is_contiguous():
        return None, None
    shape = x.shape

    def back(a):
        return torch.from_numpy(a).view(shape)
    return x.reshape(shape[0], -1).numpy(), back

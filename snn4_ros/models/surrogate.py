"""Surrogate gradients for the spike non-linearity.

Forward, a spike is the Heaviside step of ``x = v - threshold``. Backward, the derivative of a
smooth stand-in ``sg(x; alpha)`` is used. Four shapes, each with a sharpness ``alpha``
(larger = closer to the step):

* ``arctan``        sg = atan(pi/2 * alpha * x) / pi + 1/2        (SpikingJelly's ATan)
* ``fast_sigmoid``  sg = alpha * x / (2 (1 + |alpha x|)) + 1/2      (SuperSpike)
* ``triangle``      sg' = alpha * max(0, 1 - alpha |x|)
* ``rectangle``     sg' = alpha * [|x| < 1 / (2 alpha)]

``alpha`` may be fixed, scheduled (``SurrogateSchedule`` sharpens it over training) or
learnable per layer (then the spike is ``step(x) - sg(x).detach() + sg(x)`` so that autograd
also differentiates ``sg`` with respect to ``alpha``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

KINDS = ("arctan", "fast_sigmoid", "triangle", "rectangle")


def primitive(x: torch.Tensor, kind: str, alpha) -> torch.Tensor:
    """The smooth function whose derivative is the surrogate gradient."""
    if kind == "arctan":
        return torch.atan(math.pi / 2 * alpha * x) / math.pi + 0.5
    if kind == "fast_sigmoid":
        ax = alpha * x
        return ax / (2 * (1 + ax.abs())) + 0.5
    if kind == "triangle":
        ax = (alpha * x).clamp(-1, 1)
        return 0.5 + ax - ax * ax.abs() / 2
    if kind == "rectangle":
        return (alpha * x + 0.5).clamp(0, 1)
    raise ValueError(f"unknown surrogate {kind!r}; choose from {KINDS}")


def derivative(x: torch.Tensor, kind: str, alpha: float) -> torch.Tensor:
    """d primitive / dx, written out (used by the fixed-alpha autograd function)."""
    if kind == "arctan":
        return (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)
    if kind == "fast_sigmoid":
        return (alpha / 2) / (1 + (alpha * x).abs()) ** 2
    if kind == "triangle":
        return alpha * (1 - (alpha * x).abs()).clamp(min=0)
    if kind == "rectangle":
        return alpha * ((alpha * x).abs() < 0.5).to(x.dtype)
    raise ValueError(f"unknown surrogate {kind!r}; choose from {KINDS}")


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kind: str, alpha: float):
        ctx.save_for_backward(x)
        ctx.kind, ctx.alpha = kind, alpha
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * derivative(x, ctx.kind, ctx.alpha), None, None


@dataclass
class SurrogateSchedule:
    """Linear sharpening of alpha from ``start`` to ``end`` over ``steps`` optimiser steps."""

    start: float
    end: float
    steps: int

    def at(self, step: int) -> float:
        f = min(max(step / max(self.steps, 1), 0.0), 1.0)
        return self.start + f * (self.end - self.start)


class Surrogate(nn.Module):
    """A spike function with a surrogate gradient; one instance per layer.

    ``learnable=True`` makes alpha a parameter (kept positive through a softplus).
    ``set_alpha`` lets a schedule change a fixed alpha during training.
    """

    def __init__(self, kind: str = "arctan", alpha: float = 2.0, learnable: bool = False):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown surrogate {kind!r}; choose from {KINDS}")
        if alpha <= 0:
            raise ValueError(f"surrogate alpha must be positive, got {alpha}")
        self.kind = kind
        self.learnable = learnable
        if learnable:
            # softplus^-1(alpha)
            self.raw_alpha = nn.Parameter(torch.tensor(math.log(math.expm1(alpha))))
        else:
            self.register_buffer("fixed_alpha", torch.tensor(float(alpha)), persistent=True)

    @property
    def alpha(self) -> torch.Tensor:
        return nn.functional.softplus(self.raw_alpha) if self.learnable else self.fixed_alpha

    def set_alpha(self, value: float) -> None:
        if self.learnable:
            raise RuntimeError("a learnable surrogate width is not scheduled")
        self.fixed_alpha.fill_(float(value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.learnable:
            sg = primitive(x, self.kind, self.alpha)
            return (x > 0).to(x.dtype) - sg.detach() + sg
        if not torch.is_grad_enabled() or not x.requires_grad:
            return (x > 0).to(x.dtype)
        return _Spike.apply(x, self.kind, float(self.fixed_alpha))

    def extra_repr(self) -> str:
        return f"kind={self.kind}, learnable={self.learnable}"

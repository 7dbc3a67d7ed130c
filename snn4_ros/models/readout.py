"""A prototype readout: class scores from distances to stored examples, with a "none" outcome.

Why not a linear layer: a linear readout splits the feature space into half-spaces, so every
input -- a person walking past, a hand moving a clamp -- lands in *some* gesture's region, and
a few demonstrations cannot fence that region in. Measured on the real DVS128 clips
(``bench/teach.py``): a linear readout taught on right-hand waves + a few seconds of "nothing"
fires on 20-100 % of the bins of real walking scenes; a distance readout, which scores a
gesture high only *near* its demonstrations, fires on almost none of them.

Each row r holds a prototype ``mu_r`` (a point in the head's pooled feature space), a
per-feature precision ``rho_r`` and a bias ``b_r``, and belongs to one class. Its score is

    z_r(x) = b_r - scale * mean_j ((x_j - mu_rj) * rho_rj) ** 2

and a class's logit is the log-sum-exp of its rows (several demonstrations, several rows).
A row with ``rho = 0`` has a constant score ``b_r``: that is the "none" threshold -- an input
farther than it from every gesture prototype goes to "none". The logits feed the same softmax,
``Decision``, controller and replay as a linear classifier's.
"""

from __future__ import annotations

import torch
from torch import nn


class PrototypeReadout(nn.Module):
    def __init__(self, dim: int, row_classes: tuple[int, ...], n_classes: int):
        super().__init__()
        if not row_classes:
            raise ValueError("a prototype readout needs at least one row")
        if min(row_classes) < 0 or max(row_classes) >= n_classes:
            raise ValueError(f"row classes {row_classes} outside 0..{n_classes - 1}")
        R = len(row_classes)
        self.n_classes = n_classes
        self.register_buffer("row_class", torch.tensor(row_classes, dtype=torch.long))
        mask = torch.zeros(n_classes, R, dtype=torch.bool)
        mask[torch.tensor(row_classes), torch.arange(R)] = True
        if not mask.any(1).all():
            raise ValueError("every class needs at least one prototype row")
        self.register_buffer("mask", mask)
        self.mu = nn.Parameter(torch.zeros(R, dim))
        self.rho = nn.Parameter(torch.ones(R, dim))
        self.bias = nn.Parameter(torch.zeros(R))
        self.log_scale = nn.Parameter(torch.zeros(()))

    def row_distances(self, x: torch.Tensor) -> torch.Tensor:
        """[B, R] mean squared, precision-weighted distance of x [B, D] to every row."""
        diff = (x[:, None, :] - self.mu[None]) * self.rho[None]
        return diff.pow(2).mean(-1)

    def row_scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias[None] - self.log_scale.exp() * self.row_distances(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.row_scores(x)                                          # [B, R]
        z = z[:, None, :].masked_fill(~self.mask[None], float("-inf"))   # [B, C, R]
        return torch.logsumexp(z, dim=-1)

"""Spiking layers with the multi-step trick, and spike-driven self-attention.

A spiking conv block runs its synaptic op (conv + batch norm) over all ``T * B`` frames at
once -- one large, well-vectorised call -- and only the neuron recurrence loops over T.
``step`` runs the same block for one time bin with explicit neuron state, for streaming.
Tensors are channels-last: on CPU that alone is worth several-fold for small convolutions.
"""

from __future__ import annotations

import torch
from torch import nn

from .neurons import Neuron


def _bt(x: torch.Tensor) -> torch.Tensor:
    """[T, B, ...] -> [T*B, ...]"""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


class ConvCounts:
    """Operation counts of a conv layer (its ``conv``, ``kernel`` and ``stride``), shared by
    the spiking conv and the Loihi conv."""

    def fan_out(self) -> float:
        """Synapses driven by one input spike (for synaptic-operation counts)."""
        return self.conv.out_channels * self.kernel ** 2 / self.stride ** 2

    def macs_per_step(self, h_out: int, w_out: int) -> int:
        """Multiply-accumulates of one time step, as a dense ANN would do them."""
        return self.conv.in_channels * self.conv.out_channels * self.kernel ** 2 * h_out * w_out


class SpikingConv(ConvCounts, nn.Module):
    """conv -> batch norm -> spiking neuron, over [T, B, C, H, W]."""

    def __init__(self, c_in: int, c_out: int, neuron: Neuron, kernel: int = 3, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.neuron = neuron
        self.kernel, self.stride = kernel, stride

    def synapse(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = self.synapse(_bt(x).contiguous(memory_format=torch.channels_last))
        return self.neuron(y.reshape(T, B, *y.shape[1:]))

    def step(self, x: torch.Tensor, state):
        y = self.synapse(x.contiguous(memory_format=torch.channels_last))
        if state is None:
            state = self.neuron.init_state(y)
        return self.neuron.step(y, state)


class SDSA(nn.Module):
    """Spike-driven self-attention (Yao et al., NeurIPS 2023), over [T, B, C, H, W] spikes.

    Q, K, V are binary spike maps (1x1 conv + BN + neuron). Attention is
    ``Q * spike(sum_tokens(K * V))``: an AND, a column sum and a mask -- no softmax and no real
    multiplication at inference. A 1x1 projection and a shortcut follow, in one of two forms:

    * ``shortcut="membrane"`` (spike-driven): the shortcut joins *before* the neuron, on the
      membrane -- ``out = spike(x + BN(conv(Q AND mask)))`` -- as the Spike-driven Transformer's
      membrane shortcut and Spikingformer do, so every signal that leaves the block is a
      binary spike (no multiplication by a non-binary activation downstream);
    * ``shortcut="add"`` (the first version, kept so that its checkpoints load and run as
      trained): ``x + spike(BN(conv(Q AND mask)))``, whose values are 0, 1 or 2.

    Both use the same parameters (``proj``'s conv, BN and neuron), so only the wiring differs.
    """

    SHORTCUTS = ("add", "membrane")

    def __init__(self, channels: int, make_neuron, shortcut: str = "add"):
        super().__init__()
        if shortcut not in self.SHORTCUTS:
            raise ValueError(f"SDSA shortcut must be one of {self.SHORTCUTS}, got {shortcut!r}")
        self.shortcut = shortcut
        self.q = SpikingConv(channels, channels, make_neuron(), kernel=1)
        self.k = SpikingConv(channels, channels, make_neuron(), kernel=1)
        self.v = SpikingConv(channels, channels, make_neuron(), kernel=1)
        self.kv_neuron = make_neuron()
        self.proj = SpikingConv(channels, channels, make_neuron(), kernel=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q(x), self.k(x), self.v(x)
        kv = (k * v).sum(dim=(-2, -1), keepdim=True)
        mask = self.kv_neuron(kv)
        if self.shortcut == "add":
            return x + self.proj(q * mask)
        T, B = x.shape[:2]
        cur = self.proj.synapse(_bt(q * mask).contiguous(memory_format=torch.channels_last))
        return self.proj.neuron(x + cur.reshape(T, B, *cur.shape[1:]))

    def synops(self, x: torch.Tensor, kv: torch.Tensor, qm: torch.Tensor) -> torch.Tensor:
        """Synaptic operations per sample [B] of one forward over [T, B, C, H, W]: every input
        spike fans out to the C channels of each of q, k and v (1x1 convs) and makes one
        shortcut addition; every K AND V spike one addition of the column sum; every masked
        query spike fans out to the projection's C channels plus its one addition. A pure
        function of the block's spikes (``bench/sdsa.py`` taps them): the block keeps no
        per-forward state, so one net serves many streams."""
        C = x.shape[2]
        per = lambda t: t.detach().sum(dim=(0, 2, 3, 4))          # noqa: E731
        return per(x) * (3 * C + 1) + per(kv) + per(qm) * (C + 1)

    def macs_per_step(self, h: int, w: int) -> int:
        """Dense MACs per bin of the block run as an ANN: four C x C 1x1 convs over h x w and
        the K V products."""
        C = self.q.conv.out_channels
        return 4 * C * C * h * w + C * h * w

    def step(self, x: torch.Tensor, state):
        state = state or {}
        q, sq = self.q.step(x, state.get("q"))
        k, sk = self.k.step(x, state.get("k"))
        v, sv = self.v.step(x, state.get("v"))
        kv = (k * v).sum(dim=(-2, -1), keepdim=True)
        skv = state.get("kv") or self.kv_neuron.init_state(kv)
        mask, skv = self.kv_neuron.step(kv, skv)
        if self.shortcut == "add":
            out, sp = self.proj.step(q * mask, state.get("proj"))
            out = x + out
        else:
            cur = self.proj.synapse((q * mask).contiguous(memory_format=torch.channels_last))
            u = x + cur
            sp = state.get("proj") or self.proj.neuron.init_state(u)
            out, sp = self.proj.neuron.step(u, sp)
        return out, {"q": sq, "k": sk, "v": sv, "kv": skv, "proj": sp}

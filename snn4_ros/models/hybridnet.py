"""SNN4-HybridNet: spiking backbone -> attention-based SNN-ANN bridge -> ANN heads.

After Ahmed, Finkbeiner & Neftci, "Efficient Event-Based Object Detection: A Hybrid Neural
Network with Spatial and Temporal Attention" (arXiv 2403.10173, CVPR 2025). The bridge turns
the backbone's sparse spikes over the last ``window`` time bins into one dense feature map:

* ERS, event-rate spatial attention: a spatial map from the spike rates (mean and max over
  channels, 7x7 conv, sigmoid) that weights the active regions of every time step;
* SAT, spatial-aware temporal attention: channels are split into groups; each group gets a
  time-wise separable convolution (a causal depthwise conv along time, then a pointwise conv
  within the group), and an attention over time steps (softmax of a per-step score from the
  group's pooled features) that sums the steps into a dense map. (The paper's deformable
  temporal convolution is replaced by this fixed one.)

Heads: gesture logits (global pooling + MLP) and a tracking head (a heatmap whose soft-argmax
gives the target position, plus a visibility logit).

The bridge is causal and only looks at the last ``window`` steps, so streaming one bin at a
time (``StreamingRunner``) gives exactly the outputs of ``forward`` on the prefix so far.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..events.errors import UserError, did_you_mean
from ..events.frames import FrameConfig
from .layers import SDSA, SpikingConv
from .loihi import LoihiConv
from .neurons import make_neuron
from .readout import PrototypeReadout
from .surrogate import Surrogate

DVS_GESTURE_CLASSES = ("hand_clap", "right_hand_wave", "left_hand_wave", "right_arm_cw",
                       "right_arm_ccw", "left_arm_cw", "left_arm_ccw", "arm_roll", "air_drums",
                       "air_guitar", "other")


@dataclass
class HybridNetConfig:
    """Architecture and input geometry; saved in every model card."""

    preset: str = "hybridnet-s"
    in_channels: int = 2
    input_width: int = 64
    input_height: int = 64
    channels: tuple[int, ...] = (16, 32, 64)
    strides: tuple[int, ...] = (2, 2, 2)
    sdsa: bool = False                 # spike-driven self-attention after the last stage
    sdsa_shortcut: str = "add"         # "membrane": binary out (spike-driven); "add": 0/1/2
    neuron: str = "lif"
    neuron_kwargs: dict = field(default_factory=lambda: {"tau": 2.0})
    surrogate: str = "arctan"
    surrogate_alpha: float = 2.0
    learnable_surrogate: bool = False  # the surrogate's width is a trained parameter (LSG)
    window: int = 16                   # time bins of a sample (training clips, evaluation)
    # bins the bridge and heads read, the newest ones (0: all ``window``): a readout trained
    # on the latest few bins of synthetic streams answers within a few bins after a gesture
    # changes (models/streams.py), while samples and the backbone keep the full window
    readout_window: int = 0
    # "spikes": the bridge reads the window's spike maps step by step; "rate": it reads their
    # mean over the window as one step -- a converted network (models/convert.py), whose
    # ANN twin was trained on the window's accumulated events, is read out by its rates
    bridge_input: str = "spikes"
    # "ers_sat": the attention bridge (ERS + SAT, above); "mean": plain mean pooling of the
    # window's spike maps, no attention and no temporal conv -- the bridge switched off, for
    # the ablation that asks what ERS/SAT earn (bench/ablation.py)
    bridge: str = "ers_sat"
    # "bins": bin t drives the backbone at step t (event-driven, streams); "window": the
    # window's bins averaged and presented at every step, a constant current (the direct
    # coding ANN-to-SNN conversion is defined for; needs the whole window first, no stream)
    input_coding: str = "bins"
    sat_groups: int = 4
    sat_kernel: int = 3
    head_hidden: int = 64
    classes: tuple[str, ...] = DVS_GESTURE_CLASSES
    tracking: bool = True
    # "linear", or "prototype" (models/readout.py: distance to taught examples, with a
    # constant "none" row; prototype_rows gives each row's class index)
    readout: str = "linear"
    prototype_rows: tuple[int, ...] = ()
    # input representation (the event -> frame transform the model was trained with)
    sensor_width: int = 128
    sensor_height: int = 128
    downsample: int = 2
    bin_us: int = 40_000

    def __post_init__(self):
        self.channels = tuple(self.channels)
        self.strides = tuple(self.strides)
        self.classes = tuple(self.classes)
        self.prototype_rows = tuple(int(r) for r in self.prototype_rows)
        if self.readout not in ("linear", "prototype"):
            raise ValueError(f"readout must be 'linear' or 'prototype', got {self.readout!r}")
        if len(self.channels) != len(self.strides):
            raise ValueError("channels and strides need the same length")
        if self.channels[-1] % self.sat_groups:
            raise ValueError("the last stage's channels must divide into sat_groups")
        if self.window < 1:
            raise ValueError("window must be >= 1")
        if not 0 <= self.readout_window <= self.window:
            raise ValueError(f"readout_window must lie in 0..window ({self.window}), got "
                             f"{self.readout_window}")
        if self.input_coding not in ("bins", "window"):
            raise ValueError(f"input_coding must be 'bins' or 'window', got "
                             f"{self.input_coding!r}")
        if self.bridge_input not in ("spikes", "rate"):
            raise ValueError(f"bridge_input must be 'spikes' or 'rate', got "
                             f"{self.bridge_input!r}")
        if self.bridge not in ("ers_sat", "mean"):
            raise ValueError(f"bridge must be 'ers_sat' or 'mean', got {self.bridge!r}")
        if self.sdsa_shortcut not in ("add", "membrane"):
            raise ValueError(f"sdsa_shortcut must be 'add' or 'membrane', got "
                             f"{self.sdsa_shortcut!r}")

    @property
    def readout_bins(self) -> int:
        """Bins the bridge and heads read: ``readout_window``, or the whole window."""
        return self.readout_window or self.window

    def to_dict(self) -> dict:
        return asdict(self)

    def frame_config(self) -> FrameConfig:
        """The event -> frame transform this model was trained with (time bins of ``bin_us``,
        ``downsample``, counts clipped at 255): training data, the pipeline and the Loihi
        check clips all make their frames with it."""
        return FrameConfig(bin_us=self.bin_us, downsample=self.downsample, clip_count=255)

    def stage_shapes(self) -> list[tuple[int, int, int]]:
        """(C, H, W) after every backbone stage, per sample and bin: the one walk over the
        strides (a stride-s conv with padding k//2 maps n pixels to ceil(n / s))."""
        h, w, out = self.input_height, self.input_width, []
        for c, s in zip(self.channels, self.strides):
            h, w = -(-h // s), -(-w // s)
            out.append((c, h, w))
        return out


PRESETS = {
    "hybridnet-s": dict(),
    "hybridnet-s-sdsa": dict(preset="hybridnet-s-sdsa", sdsa=True, sdsa_shortcut="membrane"),
    "hybridnet-xs": dict(preset="hybridnet-xs", channels=(8, 16, 32), window=12),
    # the spiking backbone restricted to what Loihi 2 runs (binary input spikes, conv +
    # CUBA-LIF, no batch norm, 8-bit weights, 12-bit decays); bridge and heads on the host
    "hybridnet-loihi": dict(preset="hybridnet-loihi", neuron="loihi",
                            neuron_kwargs={"du": 2047, "dv": 1024}, channels=(16, 32, 32)),
    "hybridnet-nmnist": dict(preset="hybridnet-nmnist", input_width=34, input_height=34,
                             channels=(16, 32, 64), strides=(1, 2, 2), window=10,
                             classes=tuple(str(i) for i in range(10)), tracking=False,
                             sensor_width=34, sensor_height=34, downsample=1, bin_us=30_000,
                             head_hidden=128),
}


def preset_config(name: str, **overrides) -> HybridNetConfig:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}{did_you_mean(name, PRESETS)} (presets: "
                        f"{', '.join(PRESETS)})")
    known = {f.name for f in fields(HybridNetConfig)}
    for key in overrides:
        if key not in known:
            raise UserError(f"HybridNetConfig has no field {key!r}{did_you_mean(key, known)} "
                            f"(fields: {', '.join(sorted(known))})")
    kw = {"preset": name, **PRESETS[name], **overrides}
    return HybridNetConfig(**kw)


class ERS(nn.Module):
    """Event-rate spatial attention: weights each location by how active it is."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, s: torch.Tensor) -> torch.Tensor:       # s: [T, B, C, H, W]
        rate = s.mean(0)
        a = torch.sigmoid(self.conv(torch.cat([rate.mean(1, keepdim=True),
                                               rate.amax(1, keepdim=True)], 1)))
        return s * a.unsqueeze(0), a


class SAT(nn.Module):
    """Spatial-aware temporal attention: grouped time-wise separable conv + attention over T."""

    def __init__(self, channels: int, groups: int, kernel: int):
        super().__init__()
        self.groups, self.kernel = groups, kernel
        self.temporal = nn.Conv3d(channels, channels, (kernel, 1, 1), groups=channels)
        self.pointwise = nn.Conv3d(channels, channels, 1, groups=groups)
        self.score = nn.Conv1d(channels, groups, 1, groups=groups)
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        T, B, C, H, W = s.shape
        x = s.permute(1, 2, 0, 3, 4)                             # [B, C, T, H, W]
        x = F.pad(x, (0, 0, 0, 0, self.kernel - 1, 0))           # causal along time
        f = F.gelu(self.pointwise(self.temporal(x)))             # [B, C, T, H, W]
        score = self.score(f.mean(dim=(3, 4)))                   # [B, G, T]
        att = torch.softmax(score, dim=-1)                       # attention over time steps
        att_c = att.repeat_interleave(C // self.groups, dim=1)   # [B, C, T]
        dense = (f * att_c[..., None, None]).sum(2)              # [B, C, H, W]
        return self.norm(dense), att


class HybridOutput(NamedTuple):
    logits: torch.Tensor                   # [B, classes]
    position: torch.Tensor | None          # [B, 2] target (x, y) in sensor pixels
    visible: torch.Tensor | None           # [B] visibility logit
    heatmap: torch.Tensor | None           # [B, h, w] logits
    attention: torch.Tensor                # [B, h, w] ERS spatial attention
    spikes: list                           # per backbone layer: spike counts [B]


class HybridNet(nn.Module):
    """The SNN4-HybridNet: spiking conv backbone (optionally SDSA) -> ERS + SAT bridge over the
    last ``window`` bins -> gesture logits and a tracking heatmap (see the module docstring).

    ``forward`` takes whole clips ``[T, B, C, H, W]`` (training, ``snn4 eval``);
    ``StreamingRunner`` steps the same weights one bin at a time with the same outputs (the
    live path). Everything that shapes the net is in ``cfg``, which every model card keeps,
    so a checkpoint rebuilds exactly this net.
    """

    def __init__(self, cfg: HybridNetConfig):
        super().__init__()
        self.cfg = cfg
        mk = lambda: make_neuron(cfg.neuron, cfg.surrogate, cfg.surrogate_alpha,  # noqa: E731
                                 **{"learnable_alpha": cfg.learnable_surrogate,
                                    **cfg.neuron_kwargs})
        layers, c_in = [], cfg.in_channels
        for i, (c, s) in enumerate(zip(cfg.channels, cfg.strides)):
            if cfg.neuron == "loihi":            # the Loihi 2 profile (models/loihi.py)
                kw = {k: v for k, v in cfg.neuron_kwargs.items() if k in ("du", "dv")}
                layers.append(LoihiConv(c_in, c, 3, s, surrogate=Surrogate(
                    cfg.surrogate, cfg.surrogate_alpha, cfg.learnable_surrogate),
                    binary_input=i == 0, **kw))
            else:
                layers.append(SpikingConv(c_in, c, mk(), 3, s))
            c_in = c
        self.backbone = nn.ModuleList(layers)
        # signed spikes (-1/0/1, a converted network's compensation): counted by magnitude
        self.signed_spikes = cfg.neuron == "if" and bool(cfg.neuron_kwargs.get("signed"))
        self.attn = SDSA(c_in, mk, cfg.sdsa_shortcut) if cfg.sdsa else None
        if cfg.bridge == "ers_sat":
            self.ers = ERS()
            self.sat = SAT(c_in, cfg.sat_groups, cfg.sat_kernel)
        else:                               # "mean": no bridge parameters at all
            self.ers = self.sat = None
        self.head = nn.Sequential(nn.Conv2d(c_in, cfg.head_hidden, 3, padding=1),
                                  nn.BatchNorm2d(cfg.head_hidden), nn.ReLU())
        if cfg.readout == "prototype":
            self.classifier = PrototypeReadout(cfg.head_hidden, cfg.prototype_rows,
                                               len(cfg.classes))
        else:
            self.classifier = nn.Linear(cfg.head_hidden, len(cfg.classes))
        if cfg.tracking:
            self.heat = nn.Conv2d(cfg.head_hidden, 1, 1)
            self.vis = nn.Linear(cfg.head_hidden, 1)
        for mod in self.modules():          # channels-last conv weights: faster on CPU
            if isinstance(mod, nn.Conv2d):
                mod.weight.data = mod.weight.data.contiguous(memory_format=torch.channels_last)

    # ------------------------------------------------------------------ parts
    def check_input(self, x: torch.Tensor, per_step: bool = False) -> None:
        """Clear errors for wrong shapes, geometry or NaNs."""
        want = (self.cfg.in_channels, self.cfg.input_height, self.cfg.input_width)
        dims = 4 if per_step else 5
        shape = "[B, C, H, W]" if per_step else "[T, B, C, H, W]"
        if x.dim() != dims or tuple(x.shape[-3:]) != want:
            raise ValueError(f"{self.cfg.preset} expects input {shape} with (C, H, W) = {want}, "
                             f"got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("input holds NaN or infinite values")

    def backbone_seq(self, x: torch.Tensor):
        """Backbone over [T, B, C, H, W]; returns the last stage's spikes and per-layer counts."""
        counts = []
        if self.cfg.input_coding == "window":      # a constant current: the bins' mean
            x = x.mean(0, keepdim=True).expand_as(x)
        for layer in self.backbone:
            x = layer(x)
            # differentiable: rate regularisation
            counts.append((x.abs() if self.signed_spikes else x).sum(dim=(0, 2, 3, 4)))
        if self.attn is not None:
            x = self.attn(x)
        return x, counts

    def head_maps(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The shared head's feature maps [B, head_hidden, h, w] and the ERS attention, over
        the spikes of the last ``readout_bins`` steps: what the readout and tracking head
        read."""
        dense, a = self.bridge(s)
        return self.head(dense), a

    def bridge(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The SNN-ANN bridge over the spikes of the last ``readout_bins`` steps ([T, B, C,
        h, w]): one dense map [B, C, h, w] and the spatial attention [B, 1, h, w] (ones for
        the plain-mean bridge, which weights every place alike)."""
        s = s[-self.cfg.readout_bins:]
        if self.cfg.bridge_input == "rate":
            s = s.mean(0, keepdim=True)
        if self.ers is None:                # bridge "mean"
            dense = s.mean(0)
            return dense, torch.ones_like(dense[:, :1])
        weighted, a = self.ers(s)
        dense, _ = self.sat(weighted)
        return dense, a

    def bridge_heads(self, s: torch.Tensor) -> tuple:
        """Bridge + heads over the spikes of the last ``readout_bins()`` steps ([T, B, C, h, w]:
        the whole window unless the config's ``readout_window`` is shorter)."""
        h, a = self.head_maps(s)
        logits = self.classifier(h.mean(dim=(2, 3)))
        pos = vis = heat = None
        if self.cfg.tracking:
            heat = self.heat(h)[:, 0]                               # [B, h, w]
            B, fh, fw = heat.shape
            p = torch.softmax(heat.reshape(B, -1), -1).reshape(B, fh, fw)
            ys = (torch.arange(fh, dtype=h.dtype, device=h.device) + 0.5) * (self.cfg.sensor_height / fh)
            xs = (torch.arange(fw, dtype=h.dtype, device=h.device) + 0.5) * (self.cfg.sensor_width / fw)
            pos = torch.stack([(p.sum(1) * xs).sum(-1), (p.sum(2) * ys).sum(-1)], -1)
            vis = self.vis(h.mean(dim=(2, 3)))[:, 0]
        return logits, pos, vis, heat, a[:, 0]

    def forward(self, x: torch.Tensor) -> HybridOutput:
        self.check_input(x)
        s, counts = self.backbone_seq(x)
        return HybridOutput(*self.bridge_heads(s), counts)

    def forward_prefixes(self, x: torch.Tensor, ends: list[int]) -> list[HybridOutput]:
        """Outputs as a stream would give them after each of the bins ``ends`` (1-based):
        the backbone runs once, the bridge and heads once per prefix (early-exit training)."""
        self.check_input(x)
        s, counts = self.backbone_seq(x)
        return [HybridOutput(*self.bridge_heads(s[:e]), counts) for e in ends]

    # ------------------------------------------------------------------ accounting
    def param_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def feature_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the last backbone stage's spikes, per sample and bin."""
        return self.cfg.stage_shapes()[-1]

    def neuron_count(self) -> int:
        """Spiking neurons in the backbone (per sample and time bin)."""
        return sum(c * h * w for c, h, w in self.cfg.stage_shapes())

    def macs_per_step(self) -> int:
        """Multiply-accumulates of the conv stages per time bin, as a dense ANN would do
        them. Like ``synops``, without an SDSA block (``SDSA.macs_per_step``), so the two
        always compare the same operations."""
        return sum(layer.macs_per_step(h, w)
                   for layer, (_, h, w) in zip(self.backbone, self.cfg.stage_shapes()))

    def synops(self, x: torch.Tensor, counts: list[torch.Tensor]) -> torch.Tensor:
        """Synaptic operations per sample [B] of the conv stages: input events and spikes
        times their fan-out. An SDSA block's are not in it (its Q, K, V and mask spikes are
        not among ``counts``; ``macs_per_step`` leaves it out alike): ``SDSA.synops`` counts
        them from its spikes, as ``bench/sdsa.py`` does."""
        ops = x.sum(dim=(0, 2, 3, 4)) * self.backbone[0].fan_out()
        for layer, c in zip(list(self.backbone)[1:], counts[:-1]):
            ops = ops + c * layer.fan_out()
        return ops.detach()


class StreamingRunner:
    """Runs a HybridNet one time bin at a time, keeping every neuron's state.

    ``step(frame)`` takes one bin ``[B, C, H, W]`` and returns the outputs for the stream so
    far -- the same as ``model(frames_so_far)`` to float tolerance. ``decide`` implements
    early exit: a decision as soon as the top class probability passes a threshold.

    ``window`` (bins, default the model's ``readout_bins``) is how many of the latest bins
    the bridge and heads read: the backbone's state is kept either way. A shorter window than the model's
    answers sooner after a gesture starts (the window holds less of the previous gesture),
    at the price of decisions over less evidence (bench/onset.py measures both).
    """

    def __init__(self, model: HybridNet, window: int | None = None):
        if model.cfg.input_coding == "window":
            raise UserError(f"{model.cfg.preset}: a window-coded network (input_coding "
                            "'window', snn4 convert --coding window) needs the whole window "
                            "before its first step, so it cannot stream bin by bin; score it "
                            "with snn4 eval, or stream a conversion with --coding bins")
        self.model = model.eval()
        self.window = int(window or model.cfg.readout_bins)
        if not 1 <= self.window <= model.cfg.window:
            raise ValueError(f"decision window {window} bins: between 1 and the model's "
                             f"{model.cfg.window}")
        self.reset()

    def reset(self) -> None:
        self.states: list = [None] * len(self.model.backbone)
        self.attn_state = None
        self.buffer: list[torch.Tensor] = []
        self.bins = 0
        self.timing = (0.0, 0.0)      # seconds of the last step: (spiking backbone, bridge+heads)
        self.layer_sizes: list[int] = []   # neurons per backbone layer (per sample)

    @torch.no_grad()
    def step(self, frame: torch.Tensor) -> HybridOutput:
        self.model.check_input(frame, per_step=True)
        t0 = time.perf_counter()
        x, counts = self.backbone_step(frame)
        t1 = time.perf_counter()
        out = self.heads_step(x, counts)
        self.timing = (t1 - t0, time.perf_counter() - t1)
        return out

    @torch.no_grad()
    def rehearse(self, frame: torch.Tensor) -> None:
        """One whole step on ``frame`` whose result and state are thrown away: every neuron,
        the window buffer and the counters end exactly as they were (the steps are
        functional; only references are restored). Why: on a shared or slow CPU the first
        step after tens of milliseconds of other work runs from cold caches, 2-3x slower
        than back to back (``bench/ingest.py``); rehearsing just before a bin closes puts
        the model's code and weights back in cache for the step that counts."""
        snap = (list(self.states), self.attn_state, list(self.buffer), self.bins,
                self.timing, list(self.layer_sizes))
        try:
            self.step(frame)
        finally:
            (self.states, self.attn_state, self.buffer, self.bins, self.timing,
             self.layer_sizes) = snap

    @torch.no_grad()
    def backbone_step(self, frame: torch.Tensor) -> tuple[torch.Tensor, list]:
        """The spiking part of one step: last stage's spikes and every layer's counts."""
        x, counts = frame, []
        for i, layer in enumerate(self.model.backbone):
            x, self.states[i] = layer.step(x, self.states[i])
            counts.append((x.abs() if self.model.signed_spikes else x).sum(dim=(1, 2, 3)))
            if len(self.layer_sizes) <= i:
                self.layer_sizes.append(int(x[0].numel()))
        return x, counts

    @torch.no_grad()
    def push_step(self, frame: torch.Tensor) -> None:
        """One bin through the backbone into the window buffer, without the bridge and heads:
        the state is exactly what ``step`` leaves, at a fraction of the cost (a bin that a
        newer one will answer for, under overload)."""
        x, _ = self.backbone_step(frame)
        self._push(x)

    def _push(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        if m.attn is not None:
            x, self.attn_state = m.attn.step(x, self.attn_state)
        self.buffer.append(x)
        if len(self.buffer) > self.window:
            self.buffer.pop(0)
        self.bins += 1
        return x

    @torch.no_grad()
    def heads_step(self, x: torch.Tensor, counts: list) -> HybridOutput:
        """The host part of one step, given the backbone's spikes (computed here, or by the
        Lava bridge for ``backend:=lava``): attention, the window buffer, bridge and heads."""
        self._push(x)
        return HybridOutput(*self.model.bridge_heads(torch.stack(self.buffer)), counts)

    @torch.no_grad()
    def decide(self, frames: torch.Tensor, threshold: float = 0.9, min_bins: int = 1):
        """Stream ``[T, B, C, H, W]`` frames (B=1); return (class, confidence, bins used)."""
        self.reset()
        out = None
        for t in range(frames.shape[0]):
            out = self.step(frames[t])
            p = torch.softmax(out.logits, -1)[0]
            conf, cls = p.max(0)
            if t + 1 >= min_bins and conf >= threshold:
                return int(cls), float(conf), t + 1
        p = torch.softmax(out.logits, -1)[0]
        conf, cls = p.max(0)
        return int(cls), float(conf), frames.shape[0]

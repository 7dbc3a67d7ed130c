"""On-site few-shot teaching: new gestures from a handful of demonstrations, in seconds on a CPU.

The base model's spiking backbone, bridge and shared head stay frozen; only the readout is
learned, on the head's pooled features (``head_hidden`` numbers per time bin). Features are
computed exactly as the live pipeline computes them: the backbone runs over the demonstration
from its start with its state carried from bin to bin, and every bin's feature is the head's
output on the last ``window`` bins -- so a taught model sees in the field what it was taught on.

The readout is a ``PrototypeReadout`` (models/readout.py): one prototype per demonstration,
a constant "none" row as the rejection threshold, and prototypes of the user's "nothing"
recordings as more "none" rows. Three ways to set it, compared by ``bench/teach.py``:

* ``imprint`` -- prototypes are the demonstrations' mean features (one shot, no iterations);
* ``rstdp``   -- imprint, then a reward-modulated STDP (three-factor) rule: per window, the
  row that wins the winner-take-all race (the readout neuron that spikes first) takes a Hebbian
  step ``d mu = eta * r * (x - mu)`` (pre-before-post potentiation with weight-dependent
  depression), gated by a global reward ``r = +1`` when its class is right and ``-1`` when
  wrong; the "none" row's threshold moves by the same reward. Local, online, winner-only:
  the kind of rule Loihi's learning engine runs (pre trace x post spike x reward);
* ``gradient`` -- imprint, then AdamW on all readout parameters with a class-balanced
  cross-entropy (the usual fine-tuning).

The "none" threshold is set from held-out distances: each demonstration's windows against the
prototypes of the *other* demonstrations of its class (how far a new performance will be),
and the "nothing" windows against every gesture prototype (how close the scene comes).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..events.array import EventArray
from ..events.errors import UserError, did_you_mean
from ..events.capture import Take as Demo   # one demonstration: events + time range
from ..events.frames import FrameStream, rescale_events
from .hybridnet import HybridNet, HybridNetConfig
from .readout import PrototypeReadout

NONE = "none"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class TeachError(UserError):
    """A teaching session that cannot produce a model: says what to record or rename."""


@dataclass
class TeachConfig:
    rule: str = "rstdp"                 # rstdp | gradient | imprint
    readout: str = "prototype"          # prototype | linear (a baseline for the bench)
    min_demos: int = 3                  # per gesture
    min_demo_s: float = 0.8             # a demonstration shorter than this is refused
    min_nothing_s: float = 2.0          # seconds of "nothing" in total
    min_events_per_s: float = 200.0     # a demonstration quieter than this is "empty"
    stride_bins: int = 2                # one training window every this many bins
    pos_quantile: float = 0.95          # threshold: keep this share of held-out demo windows
    nothing_quantile: float = 0.02      # ... while rejecting all but this share of "nothing"
    confidence_margin: float = math.log(32.0)   # score margin of a typical demo window
    epochs: int = 20
    lr: float = 0.05
    seed: int = 0
    loo: bool = True                    # leave-one-demonstration-out accuracy for the card
    base_gestures: bool = False         # taught names are base classes (real-data versions)

    def __post_init__(self):
        if self.rule not in ("rstdp", "gradient", "imprint"):
            raise ValueError(f"rule must be rstdp, gradient or imprint, got {self.rule!r}")
        if self.readout not in ("prototype", "linear"):
            raise ValueError(f"readout must be prototype or linear, got {self.readout!r}")
        if self.readout == "linear" and self.rule != "gradient":
            raise ValueError("a linear readout is only trained by gradient")


@dataclass
class TeachResult:
    net: HybridNet
    classes: tuple[str, ...]
    report: dict = field(default_factory=dict)


# ------------------------------------------------------------------ checks
def check_names(gestures: list[str], base_classes: tuple[str, ...],
                base_gestures: bool = False) -> None:
    """Refuse names that would clash: with "none", with each other, or with the base model's
    classes (a taught "air_guitar" would silently pick up the shipped gesture's action).
    ``base_gestures``: the opposite on purpose -- every taught name must BE a base class (a
    real-data version of that gesture, keeping its name and its default action: how the
    shipped real-camera model is made)."""
    seen: dict[str, str] = {}
    for g in gestures:
        if not NAME_RE.match(g):
            raise TeachError(f"gesture name {g!r}: use lower-case letters, digits and '_' "
                             "(starting with a letter, at most 32 characters)")
        if g == NONE:
            raise TeachError("'none' is the built-in no-gesture class: record it as the "
                             "'nothing' part of the session, not as a gesture")
        key = g.replace("_", "")
        if key in seen and seen[key] != g:
            raise TeachError(f"gesture names {seen[key]!r} and {g!r} are too alike; "
                             "pick names that differ by more than '_'")
        seen[key] = g
        if base_gestures and g not in base_classes:
            hint = did_you_mean(g, base_classes)
            raise TeachError(f"{g!r} is not a gesture of the base model{hint} (with "
                             f"--base-gestures every taught name is one of: "
                             f"{', '.join(c for c in base_classes if c != NONE)})")
        if g in base_classes and g != NONE and not base_gestures:
            raise TeachError(f"{g!r} is already a class of the base model; teach it under a new "
                             f"name (e.g. 'my_{g}') and map that name to an action")


def check_demos(demos: list[Demo], cfg: TeachConfig) -> dict[str, list[Demo]]:
    """Group by label and refuse sessions that cannot teach: too few, empty or too short
    demonstrations, too little "nothing", or recordings from different sensors."""
    if not demos:
        raise TeachError("no demonstrations: record at least "
                         f"{cfg.min_demos} of each gesture and {cfg.min_nothing_s:.0f} s of "
                         "'nothing'")
    sizes = {(d.events.width, d.events.height) for d in demos}
    if len(sizes) > 1:
        def named(w, h):                 # every file of a size, or the first 3 and a count
            src = sorted({d.source for d in demos if (d.events.width, d.events.height) == (w, h)})
            more = f" and {len(src) - 3} more" if len(src) > 3 else ""
            return f"{w}x{h}: {', '.join(src[:3])}{more}"
        raise TeachError("the demonstrations come from sensors of different sizes ("
                         + "; ".join(named(w, h) for w, h in sorted(sizes))
                         + "); record one session with one camera")
    for d in demos:
        if d.end_ns <= d.start_ns:
            raise TeachError(f"{d.source}: empty time range for {d.label!r}")
        if d.duration_s < cfg.min_demo_s:
            raise TeachError(f"{d.source}: the {d.label!r} demonstration lasts "
                             f"{d.duration_s:.2f} s; at least {cfg.min_demo_s} s are needed")
        n = d.describe()["events"]
        if n < cfg.min_events_per_s * d.duration_s and d.label != NONE:
            raise TeachError(f"{d.source}: the {d.label!r} demonstration is empty "
                             f"({n} events in {d.duration_s:.1f} s): is the camera on and "
                             "pointed at the performer?")
    groups: dict[str, list[Demo]] = {}
    for d in demos:
        groups.setdefault(d.label, []).append(d)
    nothing = groups.pop(NONE, [])
    if not groups:
        raise TeachError("no gesture demonstrations, only 'nothing'")
    for g, ds in groups.items():
        if len(ds) < cfg.min_demos:
            raise TeachError(f"gesture {g!r} has {len(ds)} demonstration(s); at least "
                             f"{cfg.min_demos} are needed (5 recommended)")
    if sum(d.duration_s for d in nothing) < cfg.min_nothing_s:
        raise TeachError(f"{sum(d.duration_s for d in nothing):.1f} s of 'nothing' recorded; "
                         f"at least {cfg.min_nothing_s:.0f} s are needed (the scene without "
                         "the gestures, so the model learns when not to act)")
    groups[NONE] = nothing
    return groups


# ------------------------------------------------------------------ features
def recording_frames(net: HybridNet, ea: EventArray, t0_ns: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Count frames [T, 2, H, W] and each bin's end time, as the live pipeline makes them:
    another sensor size is mapped like ``PerceptionPipeline`` does (centre crop + scaling)."""
    cfg = net.cfg
    ev = rescale_events(ea.events, (ea.width, ea.height), (cfg.sensor_width, cfg.sensor_height))
    if t0_ns is not None:
        ev = ev[ev["t"] >= t0_ns]
    fs = FrameStream(cfg.frame_config(), cfg.sensor_width, cfg.sensor_height)
    frames, ends = fs.push(ev)
    if len(ev):                               # close the last bin too
        more, more_ends = fs.flush(int(ev["t"][-1]) + fs.bin_ns)
        frames, ends = np.concatenate([frames, more]), list(ends) + list(more_ends)
    return frames, np.asarray(ends, np.int64)


@torch.no_grad()
def bin_features(net: HybridNet, frames: np.ndarray, ends: list[int] | np.ndarray,
                 batch: int = 64) -> torch.Tensor:
    """Pooled head features [len(ends), head_hidden] after the bins ``ends`` (0-based indexes),
    with the backbone run once over all frames from rest (a stream's state)."""
    net.eval()
    x = torch.from_numpy(np.ascontiguousarray(frames))[:, None].float()
    s, _ = net.backbone_seq(x)                                   # [T, 1, C, h, w]
    W = net.cfg.window
    out = []
    ends = [int(e) for e in ends]
    for i in range(0, len(ends), batch):
        chunk = ends[i:i + batch]
        full = [e for e in chunk if e + 1 >= W]
        res = {}
        if full:
            win = torch.stack([s[e + 1 - W:e + 1, 0] for e in full], 1)   # [W, B, C, h, w]
            h, _ = net.head_maps(win)
            res.update(zip(full, h.mean(dim=(2, 3))))
        for e in chunk:
            if e not in res:                    # a stream's first bins: a shorter window
                h, _ = net.head_maps(s[:e + 1])
                res[e] = h.mean(dim=(2, 3))[0]
        out.extend(res[e] for e in chunk)
    return torch.stack(out) if out else torch.zeros(0, net.cfg.head_hidden)


def demo_features(net: HybridNet, demo: Demo, stride_bins: int = 2) -> torch.Tensor:
    """Features of the windows that end inside the demonstration (after one window of it)."""
    bin_ns = net.cfg.bin_us * 1000
    lead = net.cfg.window * bin_ns
    frames, ends = recording_frames(net, demo.events, t0_ns=demo.start_ns - lead)
    if not len(ends):
        return torch.zeros(0, net.cfg.head_hidden)
    first = min(demo.start_ns + lead, (demo.start_ns + demo.end_ns) // 2)
    idx = np.flatnonzero((ends > first) & (ends <= demo.end_ns))[::stride_bins]
    return bin_features(net, frames, idx)


# ------------------------------------------------------------------ readouts
@dataclass
class Session:
    """Features of a whole session: X [N, D], class index y [N], demonstration index g [N]."""

    X: torch.Tensor
    y: torch.Tensor
    g: torch.Tensor
    classes: tuple[str, ...]             # taught gestures, then "none"
    demo_class: list[int]                # per demonstration

    @property
    def none(self) -> int:
        return len(self.classes) - 1

    def without(self, demo: int) -> "Session":
        m = self.g != demo
        return Session(self.X[m], self.y[m], self.g[m], self.classes, self.demo_class)


def imprint(s: Session, cfg: TeachConfig) -> PrototypeReadout:
    """One prototype row per demonstration (its mean feature), a constant "none" row; the
    precisions and the threshold from the data (see the module doc)."""
    demos = sorted(int(d) for d in s.g.unique())
    rows = [s.demo_class[d] for d in demos] + [s.none]
    ro = PrototypeReadout(s.X.shape[1], tuple(rows), len(s.classes))
    sd_all = s.X.std(0)
    eps = 0.1 * float(sd_all.mean()) + 1e-3
    with torch.no_grad():
        for r, d in enumerate(demos):
            ro.mu[r] = s.X[s.g == d].mean(0)
        for c in range(len(s.classes)):
            m = s.y == c
            sd = s.X[m].std(0) if int(m.sum()) > 1 else sd_all
            rho = 1.0 / (torch.nan_to_num(sd, nan=float(sd_all.mean())) + eps)
            for r, d in enumerate(demos):
                if s.demo_class[d] == c:
                    ro.rho[r] = rho
        ro.rho[-1] = 0.0
        ro.mu[-1] = 0.0
        dist = ro.row_distances(s.X)                             # [N, R]
        row_demo = torch.tensor(demos + [-1])
        row_cls = ro.row_class
        gest = row_cls != s.none
        pos = s.y != s.none
        # held-out distance of each gesture window: to its class's rows of other demos
        own = (row_cls[None] == s.y[:, None]) & (row_demo[None] != s.g[:, None])
        d_loo = dist.masked_fill(~own, float("inf")).min(1).values[pos]
        d_loo = d_loo[torch.isfinite(d_loo)]
        tau = float(torch.quantile(d_loo, cfg.pos_quantile)) if len(d_loo) else 1.0
        neg = ~pos
        if int(neg.sum()) and bool(gest.any()):
            d_neg = dist[neg][:, gest].min(1).values
            tau = min(tau, float(torch.quantile(d_neg, cfg.nothing_quantile)))
        typical = float(d_loo.median()) if len(d_loo) else 0.5 * tau
        margin = max(tau - typical, 0.1 * tau, 1e-6)
        scale = cfg.confidence_margin / margin
        ro.log_scale.fill_(math.log(scale))
        counts = torch.bincount(row_cls, minlength=len(s.classes)).float()
        ro.bias.copy_(-torch.log(counts[row_cls]))               # log-mean-exp per class
        ro.bias[-1] = -scale * tau
    ro.threshold = tau                                           # for the report
    return ro


def _rstdp(ro: PrototypeReadout, s: Session, cfg: TeachConfig) -> PrototypeReadout:
    """Reward-modulated STDP on the prototype rows (see the module doc), in mini-batches
    as a learning epoch on chip accumulates traces; exploration noise decays to zero."""
    gen = torch.Generator().manual_seed(cfg.seed)
    N = len(s.y)
    const = ro.rho.detach().abs().sum(1) == 0                   # the "none" threshold row
    with torch.no_grad():
        for ep in range(cfg.epochs):
            eta = cfg.lr * (1 - ep / cfg.epochs)
            temp = 1.0 - ep / max(cfg.epochs - 1, 1)
            perm = torch.randperm(N, generator=gen)
            for i in range(0, N, 32):
                b = perm[i:i + 32]
                x, y = s.X[b], s.y[b]
                z = ro.row_scores(x)
                u = torch.rand(z.shape, generator=gen).clamp_(1e-6, 1 - 1e-6)
                win = (z - temp * torch.log(-torch.log(u))).argmax(1)     # first to spike
                r = torch.where(ro.row_class[win] == y, 1.0, -1.0)        # global reward
                post = F.one_hot(win, len(ro.bias)).float() * r[:, None]  # [B, R]
                # eligibility (pre - w) for the winning row, times reward
                dmu = post.T @ x - post.sum(0)[:, None] * ro.mu
                dmu[const] = 0
                n = F.one_hot(win, len(ro.bias)).sum(0).clamp(min=1)[:, None]
                ro.mu += eta * dmu / n
                # the none threshold: rewarded "none" wins raise it, punished ones lower it
                dn = post[:, const].sum() / len(b)
                ro.bias[const] += eta * dn
    return ro


def _gradient(ro: PrototypeReadout, s: Session, cfg: TeachConfig) -> PrototypeReadout:
    torch.manual_seed(cfg.seed)
    const = (ro.rho.detach().abs().sum(1) == 0).clone()
    opt = torch.optim.AdamW(ro.parameters(), lr=0.01, weight_decay=0.0)
    w = len(s.y) / (len(s.classes) * torch.bincount(s.y, minlength=len(s.classes)).clamp(min=1))
    for _ in range(max(cfg.epochs * 5, 50)):
        loss = F.cross_entropy(ro(s.X), s.y, weight=w.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            ro.rho[const] = 0.0
    return ro


def _linear(s: Session, cfg: TeachConfig) -> torch.nn.Linear:
    torch.manual_seed(cfg.seed)
    lin = torch.nn.Linear(s.X.shape[1], len(s.classes))
    mu, sd = s.X.mean(0), s.X.std(0) + 1e-3
    opt = torch.optim.AdamW(lin.parameters(), lr=0.01, weight_decay=1e-2)
    w = len(s.y) / (len(s.classes) * torch.bincount(s.y, minlength=len(s.classes)).clamp(min=1))
    for _ in range(max(cfg.epochs * 10, 200)):
        loss = F.cross_entropy(lin((s.X - mu) / sd), s.y, weight=w.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():                   # fold the standardisation into the weights
        lin.weight /= sd
        lin.bias -= lin.weight @ mu
    return lin


def fit_readout(s: Session, cfg: TeachConfig) -> torch.nn.Module:
    if cfg.readout == "linear":
        return _linear(s, cfg)
    ro = imprint(s, cfg)
    if cfg.rule == "rstdp":
        ro = _rstdp(ro, s, cfg)
    elif cfg.rule == "gradient":
        ro = _gradient(ro, s, cfg)
    return ro


@torch.no_grad()
def window_accuracy(readout: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    return float((readout(X).argmax(1) == y).float().mean()) if len(y) else float("nan")


# ------------------------------------------------------------------ the session
def build_model(base: HybridNet, classes: tuple[str, ...], readout: torch.nn.Module
                ) -> HybridNet:
    """A new HybridNet: the base's weights, the taught classes and readout."""
    d = base.cfg.to_dict()
    d["classes"] = classes
    if isinstance(readout, PrototypeReadout):
        d["readout"], d["prototype_rows"] = "prototype", tuple(readout.row_class.tolist())
    else:
        d["readout"], d["prototype_rows"] = "linear", ()
    net = HybridNet(HybridNetConfig(**d))
    state = {k: v for k, v in base.state_dict().items() if not k.startswith("classifier.")}
    state.update({f"classifier.{k}": v for k, v in readout.state_dict().items()})
    net.load_state_dict(state)
    for mod in net.modules():
        if isinstance(mod, torch.nn.Conv2d):
            mod.weight.data = mod.weight.data.contiguous(memory_format=torch.channels_last)
    return net.eval()


def session_features(base: HybridNet, groups: dict[str, list[Demo]], cfg: TeachConfig,
                     progress=None) -> tuple[Session, list[Demo], list[int]]:
    gestures = [g for g in groups if g != NONE]
    classes = tuple(gestures) + (NONE,)
    X, y, g, demo_class, order, counts = [], [], [], [], [], []
    for label in classes:
        for d in groups[label]:
            f = demo_features(base, d, cfg.stride_bins)
            if len(f) == 0:
                raise TeachError(f"{d.source}: no time bins inside the {label!r} range")
            k = len(order)
            X.append(f)
            y.append(torch.full((len(f),), classes.index(label), dtype=torch.long))
            g.append(torch.full((len(f),), k, dtype=torch.long))
            demo_class.append(classes.index(label))
            order.append(d)
            counts.append(len(f))
            if progress is not None:
                progress(d, len(f))
    return Session(torch.cat(X), torch.cat(y), torch.cat(g), classes, demo_class), order, counts


def teach(base: HybridNet, demos: list[Demo], cfg: TeachConfig | None = None,
          progress=None) -> TeachResult:
    """Teach the demonstrated gestures (+ "none") on top of ``base``; ``base`` is not
    modified. ``progress(demo, windows)`` is told of each demonstration's features."""
    cfg = cfg or TeachConfig()
    t0 = time.perf_counter()
    groups = check_demos(demos, cfg)
    check_names([g for g in groups if g != NONE], tuple(base.cfg.classes), cfg.base_gestures)
    s, order, counts = session_features(base, groups, cfg, progress)
    t_feat = time.perf_counter() - t0
    readout = fit_readout(s, cfg)
    net = build_model(base, s.classes, readout)
    t_fit = time.perf_counter() - t0 - t_feat
    # before: the base model's own answer on the same windows (right if it names the class)
    with torch.no_grad():
        base_top = base.classifier(s.X).argmax(1)
    base_names = [base.cfg.classes[int(i)] for i in base_top]
    before = float(np.mean([n == s.classes[int(c)] for n, c in zip(base_names, s.y)]))
    report = {
        "rule": cfg.rule, "readout": cfg.readout, "classes": list(s.classes),
        "examples": {c: sum(1 for d in order if d.label == c) for c in s.classes},
        "windows": {c: int((s.y == i).sum()) for i, c in enumerate(s.classes)},
        "demonstrations": [d.describe() | {"windows": n} for d, n in zip(order, counts)],
        "accuracy_before": before,
        "accuracy_before_note": "the base model's top class on the teaching windows (it "
                                "cannot name a new gesture, nor 'none' unless it has one)",
        "accuracy_after_train": window_accuracy(net.classifier, s.X, s.y),
        "seconds": {"features": round(t_feat, 2), "fit": round(t_fit, 2)},
        "config": asdict(cfg),
    }
    if isinstance(readout, PrototypeReadout):
        report["threshold"] = float(getattr(readout, "threshold", float("nan")))
    if cfg.loo:
        correct = total = 0
        per = {}
        for k in range(len(order)):
            sub = fit_readout(s.without(k), cfg)
            m = s.g == k
            acc = window_accuracy(sub, s.X[m], s.y[m])
            per.setdefault(s.classes[s.demo_class[k]], []).append(round(acc, 3))
            correct += acc * int(m.sum())
            total += int(m.sum())
        report["accuracy_after_leave_one_out"] = correct / max(total, 1)
        report["accuracy_after_leave_one_out_per_demo"] = per
    report["seconds"]["total"] = round(time.perf_counter() - t0, 2)
    return TeachResult(net, s.classes, report)

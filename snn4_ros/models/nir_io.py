"""NIR (Neuromorphic Intermediate Representation) export and import of the spiking backbone.

NIR is the interchange format that snnTorch, Norse, Lava-dl, Rockpool, Spyx and the
SpiNNaker 2 tools read, so a backbone exported here can leave snn4_ros for another framework
or chip. NIR describes neurons in continuous time; a framework discretises them with a time
step ``dt``. Our neurons are already discrete (one update per time bin), so export writes the
continuous parameters whose forward-Euler step with ``dt`` is exactly our update:

* ``LIF`` / ``PLIF``   v = beta v + x  ->  ``nir.LIF(tau = dt / (1 - beta), r = tau / dt,
  v_leak = 0, v_reset = 0)``: tau dv/dt = -v + r x gives v + dt/tau (-v + r x) = beta v + x.
* ``CUBALIF``          u = (1 - du) u + x, v = (1 - dv) v + u + bias  ->  ``nir.CubaLIF(
  tau_syn = dt / du, w_in = 1 / du, tau_mem = dt / dv, r = 1 / dv, v_leak = bias / dv)``.
* ``SpikingConv``      conv + batch norm: the (inference) batch norm is folded into the conv's
  weights and bias -> ``nir.Conv2d``.

``dt`` defaults to 1e-4 s, the step snnTorch's NIR import assumes (it hard-codes it), so an
export loads there without rescaling; the graph's metadata records ``dt`` and the model's
real time bin (``bin_us``) so that a reader can choose. Spikes fire where v > threshold, and
the reset sets v to 0 (a hard reset); a soft (subtractive) reset, ALIF and TC-LIF have no NIR
node and are refused with the reason, as is the SDSA block (its AND-and-mask attention is no
NIR primitive) and the Loihi fixed-point profile (``snn4 loihi export`` is its path).

Import builds the graph back from our own modules (torch convs and linears, our ``LIF`` and
``CUBALIF`` neurons), for any chain of Input, Conv2d, Linear, Affine, Flatten, SumPool2d,
AvgPool2d, Scale, IF, LIF, CubaLIF and Output nodes -- ours or another framework's. The
imported network steps with explicit state (``step(x, state) -> (y, state)``) and runs whole
clips (``forward``); ``compare_spikes`` checks it spike for spike against the model it came
from, layer by layer.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..events.errors import UserError
from .hybridnet import HybridNet
from .layers import SpikingConv
from .neurons import CUBALIF, LIF, PLIF, Neuron

DEFAULT_DT = 1e-4          # seconds; snnTorch's import_from_nir assumes this step
PRODUCER = "snn4_ros"


class NIRError(UserError):
    """A network that NIR cannot describe, or a NIR graph we cannot run; the message says why."""


def _nir():
    try:
        import nir
    except ImportError as exc:      # pragma: no cover - nir is in requirements.txt
        raise NIRError("the 'nir' package is missing: pip install nir "
                       "(it is in requirements.txt; `make venv` installs it)") from exc
    return nir


# ------------------------------------------------------------------ export
def fold_batchnorm(layer: SpikingConv) -> tuple[np.ndarray, np.ndarray]:
    """Conv weight and bias equal to conv -> batch norm in inference mode (float64)."""
    w = layer.conv.weight.detach().double()
    bn = layer.bn
    scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
    bias = bn.bias.detach().double() - bn.running_mean.double() * scale
    if layer.conv.bias is not None:
        bias = bias + layer.conv.bias.detach().double() * scale
    w = w * scale[:, None, None, None]
    return w.contiguous().numpy(), bias.numpy()


def neuron_node(neuron: Neuron, shape: tuple[int, ...], dt: float, where: str):
    """The NIR node of one of our neurons, for a layer of ``shape`` (C, H, W)."""
    nir = _nir()
    full = lambda v: np.full(shape, float(v), np.float64)    # noqa: E731
    th = neuron.threshold
    if type(neuron) in (LIF, PLIF):
        if neuron.reset != "hard":
            raise NIRError(f"{where}: a soft (subtractive) reset has no NIR node (NIR's LIF "
                           "resets to v_reset); export a model trained with reset='hard'")
        beta = float(torch.as_tensor(neuron.decay()).detach())
        if not 0.0 <= beta < 1.0:
            raise NIRError(f"{where}: LIF decay {beta} is outside [0, 1)")
        tau = dt / (1.0 - beta)
        return nir.LIF(tau=full(tau), r=full(tau / dt), v_leak=full(0.0),
                       v_threshold=full(th), v_reset=full(0.0))
    if type(neuron) is CUBALIF:
        if neuron.du <= 0 or neuron.dv <= 0:
            raise NIRError(f"{where}: CUBA-LIF with du={neuron.du}, dv={neuron.dv}: a decay "
                           "of 0 is an infinite time constant, which NIR cannot hold")
        return nir.CubaLIF(tau_syn=full(dt / neuron.du), tau_mem=full(dt / neuron.dv),
                           r=full(1.0 / neuron.dv), v_leak=full(neuron.bias / neuron.dv),
                           v_threshold=full(th), v_reset=full(0.0),
                           w_in=full(1.0 / neuron.du))
    if type(neuron).__name__ == "IF":         # a converted network (models/convert.py)
        raise NIRError(f"{where}: the converted IF neuron resets by subtraction and starts "
                       "at half threshold (QCFS); NIR's IF resets to v_reset and starts at 0, "
                       "so the export would not spike the same")
    if type(neuron).__name__ == "QCFS":
        raise NIRError(f"{where}: a QCFS twin is an ANN (quantised activations), not a "
                       "spiking network; export its conversion instead")
    raise NIRError(f"{where}: neuron {type(neuron).__name__} has no NIR node (NIR describes "
                   "LIF, CUBA-LIF and IF neurons; ALIF and TC-LIF are not among them)")


def export_graph(model: HybridNet, dt: float = DEFAULT_DT, name: str = ""):
    """The spiking backbone of ``model`` as a ``nir.NIRGraph``: Input -> (Conv2d -> LIF or
    CubaLIF) per stage -> Output. The bridge and heads (ERS, SAT, an ANN head) stay on the
    host; NIR describes the part that runs on neuromorphic hardware."""
    nir = _nir()
    if not dt > 0:
        raise NIRError(f"dt must be positive, got {dt}")
    cfg = model.cfg
    if model.attn is not None:
        raise NIRError(f"{cfg.preset}: the SDSA block (spike AND, column sum, mask) has no NIR "
                       "node; export a backbone without sdsa")
    nodes: dict = {"input": nir.Input({"input": np.array(
        [cfg.in_channels, cfg.input_height, cfg.input_width])})}
    edges, prev = [], "input"
    h, w = cfg.input_height, cfg.input_width
    for i, (layer, shape) in enumerate(zip(model.backbone, cfg.stage_shapes())):
        if not isinstance(layer, SpikingConv):
            raise NIRError(f"{cfg.preset}: layer {i} is {type(layer).__name__} (the Loihi "
                           "fixed-point profile); its path to hardware is `snn4 loihi export`")
        weight, bias = fold_batchnorm(layer)
        conv = layer.conv
        nodes[f"conv{i}"] = nir.Conv2d(input_shape=(h, w), weight=weight,
                                       stride=tuple(conv.stride), padding=tuple(conv.padding),
                                       dilation=tuple(conv.dilation), groups=conv.groups,
                                       bias=bias)
        nodes[f"lif{i}"] = neuron_node(layer.neuron, shape, dt, f"{cfg.preset} layer {i}")
        edges += [(prev, f"conv{i}"), (f"conv{i}", f"lif{i}")]
        prev = f"lif{i}"
        h, w = shape[1], shape[2]
    nodes["output"] = nir.Output({"output": np.array(cfg.stage_shapes()[-1])})
    edges.append((prev, "output"))
    meta = {"producer": PRODUCER, "model": name, "preset": cfg.preset, "dt": float(dt),
            "bin_us": int(cfg.bin_us), "part": "spiking backbone",
            "discretisation": "forward Euler with dt: one update per time bin",
            "spike": "v > v_threshold, then v = v_reset"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def write(model: HybridNet, path: str | Path, dt: float = DEFAULT_DT, name: str = "") -> Path:
    nir = _nir()
    path = Path(path)
    graph = export_graph(model, dt, name or path.stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    nir.write(str(path), graph)
    return path


def read(path: str | Path):
    nir = _nir()
    path = Path(path)
    if not path.exists():
        raise NIRError(f"{path}: no such NIR file")
    try:
        return nir.read(str(path))
    except Exception as exc:        # h5py and nir raise many kinds; say it in one line
        raise NIRError(f"{path}: not a readable NIR file ({type(exc).__name__}: {exc})") from None


# ------------------------------------------------------------------ import
def _uniform(a, what: str, where: str) -> float:
    a = np.asarray(a, np.float64)
    if a.size == 0 or not np.allclose(a, a.flat[0], rtol=1e-9, atol=0):
        raise NIRError(f"{where}: per-neuron {what} values differ; our neurons hold one value "
                       "per layer")
    return float(a.flat[0])


class _Gain(nn.Module):
    """Multiplies the input current: the part of a NIR neuron's input scaling (r dt / tau)
    that our neurons (input gain 1) do not hold."""

    def __init__(self, gain: float):
        super().__init__()
        self.gain = float(gain)

    def forward(self, x):
        return x * self.gain


class _SumPool(nn.Module):
    def __init__(self, kernel, stride, padding):
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel, self.stride, self.padding,
                            divisor_override=1)     # a sum, not a mean


def _pair(v) -> tuple[int, int]:
    v = np.atleast_1d(np.asarray(v)).astype(int)
    return (int(v[0]), int(v[0])) if v.size == 1 else (int(v[0]), int(v[1]))


def _neuron(node, dt: float, where: str) -> tuple[Neuron, float]:
    """Our neuron for a NIR neuron node, and the input gain it needs in front."""
    nir = _nir()
    reset = _uniform(getattr(node, "v_reset", 0.0), "v_reset", where)
    if reset != 0.0:
        raise NIRError(f"{where}: v_reset={reset}; our neurons reset to 0")
    th = _uniform(node.v_threshold, "v_threshold", where)
    if th <= 0:
        raise NIRError(f"{where}: v_threshold={th} must be positive")
    if isinstance(node, nir.LIF):
        tau, r = _uniform(node.tau, "tau", where), _uniform(node.r, "r", where)
        if _uniform(node.v_leak, "v_leak", where) != 0.0:
            raise NIRError(f"{where}: v_leak != 0 is not supported for LIF")
        k = dt / tau
        if not 0 < k <= 1:
            raise NIRError(f"{where}: tau={tau} is shorter than dt={dt}: forward Euler "
                           "diverges; give a smaller --dt")
        return LIF(tau=1.0 / k, threshold=th), r * k
    if isinstance(node, nir.CubaLIF):
        ts, tm = _uniform(node.tau_syn, "tau_syn", where), _uniform(node.tau_mem, "tau_mem", where)
        r, w_in = _uniform(node.r, "r", where), _uniform(node.w_in, "w_in", where)
        du, dv = dt / ts, dt / tm
        if not (0 < du <= 1 and 0 < dv <= 1):
            raise NIRError(f"{where}: tau_syn={ts}, tau_mem={tm} shorter than dt={dt}")
        bias = dv * _uniform(node.v_leak, "v_leak", where)
        # u' = (1-du) u + du w_in x, v' = (1-dv) v + dv r u' + dv v_leak: scale x by
        # du w_in dv r so that our u (gain 1) carries dv r times NIR's current
        return CUBALIF(du=du, dv=dv, bias=bias, threshold=th), du * w_in * dv * r
    if isinstance(node, nir.IF):
        return LIF(tau=math.inf, threshold=th), _uniform(node.r, "r", where)
    raise NIRError(f"{where}: {type(node).__name__} is not a neuron we import")


class ImportedSNN(nn.Module):
    """A chain of synaptic ops and our neurons rebuilt from a NIR graph.

    ``stages`` is a list of ``(kind, module)``: kind ``"op"`` is stateless (conv, linear,
    pooling, flatten, gain), kind ``"neuron"`` one of our neurons with explicit state.
    Inputs are one time bin ``[B, ...]`` for ``step`` or a clip ``[T, B, ...]`` for
    ``forward``; the output is the last node's value (the spikes of the last neuron layer).
    """

    def __init__(self, stages: list[tuple[str, str, nn.Module]], metadata: dict):
        super().__init__()
        self.names = [n for n, _, _ in stages]
        self.kinds = [k for _, k, _ in stages]
        self.mods = nn.ModuleList([m for _, _, m in stages])
        self.metadata = dict(metadata)

    def neuron_names(self) -> list[str]:
        return [n for n, k in zip(self.names, self.kinds) if k == "neuron"]

    def step(self, x: torch.Tensor, state: list | None):
        """One time bin: ``(output, state)``; ``state`` is per neuron layer (None to start)."""
        state = list(state) if state is not None else [None] * self.kinds.count("neuron")
        j = 0
        self.last_spikes = []
        for kind, mod in zip(self.kinds, self.mods):
            if kind == "neuron":
                if state[j] is None:
                    state[j] = mod.init_state(x)
                x, state[j] = mod.step(x, state[j])
                self.last_spikes.append(x)
                j += 1
            else:
                x = mod(x)
        return x, state

    @torch.no_grad()
    def run(self, x_seq: torch.Tensor) -> list[torch.Tensor]:
        """Every neuron layer's spikes ``[T, B, ...]`` over a clip."""
        state, per = None, []
        for t in range(x_seq.shape[0]):
            _, state = self.step(x_seq[t], state)
            per.append(self.last_spikes)
        return [torch.stack([p[i] for p in per]) for i in range(len(per[0]))]

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        state, out = None, []
        for t in range(x_seq.shape[0]):
            y, state = self.step(x_seq[t], state)
            out.append(y)
        return torch.stack(out)


def chain(graph) -> list[str]:
    """The nodes from input to output of a graph that is one chain, else a clear error."""
    succ: dict[str, list[str]] = {}
    pred: dict[str, list[str]] = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
        pred.setdefault(b, []).append(a)
    starts = [n for n in graph.nodes if n not in pred]
    if len(starts) != 1:
        raise NIRError(f"the graph has {len(starts)} entry nodes ({starts}); we import a chain "
                       "with one input")
    order, node = [], starts[0]
    while True:
        order.append(node)
        nxt = succ.get(node, [])
        if len(nxt) > 1 or len(pred.get(node, [])) > 1:
            raise NIRError(f"node {node!r} branches or merges; we import a chain of layers "
                           "(no skip connections or recurrence)")
        if not nxt:
            break
        node = nxt[0]
        if node in order:
            raise NIRError(f"node {node!r} closes a loop (recurrence is not imported)")
    if len(order) != len(graph.nodes):
        raise NIRError(f"{len(graph.nodes) - len(order)} nodes are not on the input-output "
                       "chain")
    return order


def import_graph(graph, dt: float | None = None, dtype=torch.float32) -> ImportedSNN:
    """Our modules for a NIR graph (see the module docstring for what maps). ``dt``: the time
    step to discretise with; by default the graph's own ``metadata['dt']``, else 1e-4 s."""
    nir = _nir()
    meta = dict(getattr(graph, "metadata", {}) or {})
    if dt is None:
        dt = float(meta.get("dt", DEFAULT_DT))
    stages: list[tuple[str, str, nn.Module]] = []
    for name in chain(graph):
        node = graph.nodes[name]
        where = f"node {name!r} ({type(node).__name__})"
        if isinstance(node, (nir.Input, nir.Output)):
            continue
        if isinstance(node, nir.Conv2d):
            wt = torch.as_tensor(np.asarray(node.weight), dtype=dtype)
            pad = node.padding if isinstance(node.padding, str) else _pair(node.padding)
            conv = nn.Conv2d(wt.shape[1] * int(node.groups), wt.shape[0],
                             tuple(wt.shape[-2:]), _pair(node.stride), pad,
                             _pair(node.dilation), int(node.groups),
                             bias=node.bias is not None).to(dtype)
            conv.weight.data.copy_(wt)
            if node.bias is not None:
                b = np.broadcast_to(np.asarray(node.bias, np.float64), (wt.shape[0],)).copy()
                conv.bias.data.copy_(torch.as_tensor(b, dtype=dtype))
            stages.append((name, "op", conv))
        elif isinstance(node, (nir.Linear, nir.Affine)):
            wt = torch.as_tensor(np.asarray(node.weight), dtype=dtype)
            lin = nn.Linear(wt.shape[1], wt.shape[0], bias=isinstance(node, nir.Affine)).to(dtype)
            lin.weight.data.copy_(wt)
            if isinstance(node, nir.Affine):
                lin.bias.data.copy_(torch.as_tensor(np.asarray(node.bias), dtype=dtype))
            stages.append((name, "op", lin))
        elif isinstance(node, nir.Flatten):
            # NIR's shapes leave the batch out; start_dim counts from the sample's first axis
            # as torch's does from the batch axis (snnTorch and Norse read it the same way)
            stages.append((name, "op", nn.Flatten(int(node.start_dim), int(node.end_dim))))
        elif isinstance(node, nir.SumPool2d):
            stages.append((name, "op", _SumPool(_pair(node.kernel_size), _pair(node.stride),
                                                _pair(node.padding))))
        elif isinstance(node, nir.AvgPool2d):
            stages.append((name, "op", nn.AvgPool2d(_pair(node.kernel_size),
                                                    _pair(node.stride), _pair(node.padding))))
        elif isinstance(node, nir.Scale):
            s = np.asarray(node.scale, np.float64)
            stages.append((name, "op", _Gain(_uniform(s, "scale", where))))
        elif isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF)):
            neuron, gain = _neuron(node, dt, where)
            if not math.isclose(gain, 1.0, rel_tol=1e-9):
                stages.append((f"{name}.gain", "op", _Gain(gain)))
            stages.append((name, "neuron", neuron))
        else:
            raise NIRError(f"{where}: not a node we import (we import Conv2d, Linear, Affine, "
                           "Flatten, SumPool2d, AvgPool2d, Scale, IF, LIF, CubaLIF)")
    if "neuron" not in [k for _, k, _ in stages]:
        raise NIRError("the graph has no spiking neuron layer")
    return ImportedSNN(stages, meta).eval()


# ------------------------------------------------------------------ checks
@torch.no_grad()
def backbone_spikes(model: HybridNet, x: torch.Tensor) -> list[torch.Tensor]:
    """Every backbone layer's spikes ``[T, B, C, H, W]`` of our own model (in ``x``'s dtype)."""
    out = []
    for layer in model.backbone:
        x = layer(x)
        out.append(x)
    return out


@torch.no_grad()
def compare_spikes(model: HybridNet, imported: ImportedSNN, clip: torch.Tensor,
                   dtype=torch.float64) -> dict:
    """Run ``clip`` ``[T, B, C, H, W]`` through our model and the imported graph in ``dtype``
    and count, layer by layer, the spikes (neuron x time bin) where they agree.

    float64 is the default: BN folding reorders float arithmetic, and at float32 a membrane
    that lands within 1e-7 of the threshold may flip a spike; float64 makes that practically
    impossible, so any mismatch there is a real difference of dynamics."""
    import copy

    ours_m = copy.deepcopy(model).to(dtype).eval()
    theirs = copy.deepcopy(imported).to(dtype).eval()
    x = clip.to(dtype)
    ours = backbone_spikes(ours_m, x)
    other = theirs.run(x)
    if len(ours) != len(other):
        raise NIRError(f"our backbone has {len(ours)} neuron layers, the graph {len(other)}")
    layers = []
    for i, (a, b) in enumerate(zip(ours, other)):
        if a.shape != b.shape:
            raise NIRError(f"layer {i}: our spikes {tuple(a.shape)}, the graph's {tuple(b.shape)}")
        layers.append({"layer": i, "spikes": int(a.sum()), "spikes_imported": int(b.sum()),
                       "agree": int((a == b).sum()), "total": int(a.numel())})
    return {"dtype": str(dtype).replace("torch.", ""), "layers": layers,
            "agree": sum(r["agree"] for r in layers), "total": sum(r["total"] for r in layers),
            "exact": all(r["agree"] == r["total"] for r in layers)}


__all__ = ["NIRError", "export_graph", "write", "read", "import_graph", "ImportedSNN",
           "compare_spikes", "backbone_spikes", "chain", "fold_batchnorm", "DEFAULT_DT"]

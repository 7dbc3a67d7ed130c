"""The exported backbone as a Lava process graph, run in Lava's bit-accurate ``fixed_pt``
simulation on the CPU, or on a Loihi 2 board when Intel's ``lava-loihi`` is installed.

Injector -> [Conv -> LIF] x layers, with an Extractor on every LIF so each layer's spike
train can be compared. The Injector blocks until a frame arrives and each Extractor hands
back one step, so the network moves in lockstep with the caller: ``step(frame)`` is one
Loihi time step (one event-frame bin), and layer k's output lags the input by k steps
(each Conv delivers last step's sum), as in the torch emulation.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class LavaSetupError(RuntimeError):
    """The export cannot be run (missing files, or values outside Loihi's ranges)."""


@dataclass
class LayerSpec:
    weight: np.ndarray           # int32 (C_out, W, H, C_in), kernel flipped
    vth: int
    du: int
    dv: int
    stride: int
    padding: int
    in_shape: tuple
    out_shape: tuple


def load_export(base: str | Path) -> tuple[list[LayerSpec], dict]:
    from safetensors.numpy import load_file

    base = Path(base)
    st = base.parent / f"{base.name}.lava.safetensors"
    js = base.parent / f"{base.name}.lava.json"
    if not st.exists() or not js.exists():
        raise LavaSetupError(f"{st} / {js} missing: export the quantised model first "
                             "(snn4 loihi export --model MODEL)")
    meta = json.loads(js.read_text())
    tensors = load_file(str(st))
    layers, problems = [], []
    for i, m in enumerate(meta["layers"]):
        w = tensors[f"layer{i}.weight"].astype(np.int32)
        if w.min() < -256 or w.max() > 255:
            problems.append(f"layer {i}: weights outside 8 bits ({w.min()}..{w.max()})")
        if not (0 < m["vth"] < 2 ** 17 and 0 <= m["du"] < 4096 and 0 <= m["dv"] < 4096):
            problems.append(f"layer {i}: vth/du/dv outside Loihi's ranges ({m})")
        layers.append(LayerSpec(w, int(m["vth"]), int(m["du"]), int(m["dv"]), int(m["stride"]),
                                int(m["padding"]), tuple(m["in_shape"]), tuple(m["out_shape"])))
    if problems:
        raise LavaSetupError(f"{base}: " + "; ".join(problems))
    return layers, meta


def board_available(host: str | None = None) -> tuple[bool, str]:
    """(use the board?, why): Intel's lava-loihi installed and a board host configured."""
    from lava.utils import loihi

    if not loihi.is_installed():
        return False, "lava-loihi not installed: Lava's bit-accurate CPU simulation (fixed_pt)"
    if not host:
        return False, "lava-loihi installed but no board host configured: CPU simulation"
    return True, f"Loihi 2 board at {host}"


def sparse_weights(spec: LayerSpec):
    """The convolution as a sparse (n_out, n_in) matrix over flattened (W, H, C) vectors."""
    from lava.proc.conv.utils import conv_to_sparse
    from scipy.sparse import csr_matrix

    dst, src, w = conv_to_sparse(spec.in_shape, spec.out_shape, spec.weight,
                                 (spec.stride, spec.stride), (spec.padding, spec.padding),
                                 (1, 1), 1)
    m = csr_matrix((w.astype(np.int32), (dst, src)),
                   shape=(int(np.prod(spec.out_shape)), int(np.prod(spec.in_shape))))
    m.eliminate_zeros()
    return m


class LavaBackbone:
    """The backbone in Lava; ``step(frame (W, H, C)) -> [spikes per layer (W, H, C)]``.

    ``connection="sparse"`` (default) runs each convolution as Lava's ``Sparse`` process
    over flattened (W, H, C) vectors -- the same integers, ~10x faster per step in the CPU
    simulation than the ``Conv`` process, whose fixed-point model convolves with scipy;
    ``"conv"`` uses the ``Conv`` process itself. Both are checked bit for bit."""

    def __init__(self, base: str | Path, board_host: str | None = None, num_steps: int = 10**7,
                 connection: str = "sparse"):
        from lava.magma.core.run_conditions import RunSteps
        from lava.proc.conv.process import Conv
        from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
        from lava.proc.io.injector import Injector, PyLoihiInjectorModel
        from lava.proc.lif.process import LIF
        from lava.proc.sparse.process import Sparse

        if connection not in ("sparse", "conv"):
            raise ValueError(f"connection {connection!r}: sparse or conv")
        self.layers, self.meta = load_export(base)
        self.flat = connection == "sparse"
        use_board, self.mode = board_available(board_host)
        self.backend = "loihi2" if use_board else "sim:fixed_pt"
        shape = lambda s: (int(np.prod(s)),) if self.flat else s  # noqa: E731
        self.inj = Injector(shape=shape(self.layers[0].in_shape), buffer_size=64)
        self.lifs, self.exts = [], []
        src = self.inj.out_port
        for spec in self.layers:
            if self.flat:
                conv = Sparse(weights=sparse_weights(spec), num_message_bits=0)
            else:
                conv = Conv(weight=spec.weight, input_shape=spec.in_shape,
                            padding=spec.padding, stride=spec.stride, num_weight_bits=8,
                            num_message_bits=0)
            lif = LIF(shape=shape(spec.out_shape), du=spec.du, dv=spec.dv, vth=spec.vth,
                      bias_mant=0, bias_exp=0)
            src.connect(conv.s_in)
            conv.a_out.connect(lif.a_in)
            ext = Extractor(shape=shape(spec.out_shape), buffer_size=64)
            lif.s_out.connect(ext.in_port)
            self.lifs.append(lif)
            self.exts.append(ext)
            src = lif.s_out
        if use_board:
            from lava.magma.core.run_configs import Loihi2HwCfg
            cfg = Loihi2HwCfg()
        else:
            from lava.magma.core.run_configs import Loihi2SimCfg
            cfg = Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map={
                Injector: PyLoihiInjectorModel, Extractor: PyLoihiExtractorModel})
        t0 = time.perf_counter()
        self.num_steps = num_steps
        self.inj.run(condition=RunSteps(num_steps=num_steps, blocking=False), run_cfg=cfg)
        self.startup_s = time.perf_counter() - t0
        self.steps = 0

    def step(self, frame: np.ndarray) -> list[np.ndarray]:
        if tuple(frame.shape) != self.layers[0].in_shape:
            raise ValueError(f"frame shape {frame.shape}, the network takes "
                             f"{self.layers[0].in_shape} (W, H, C)")
        self.inj.send(frame.astype(float).ravel() if self.flat else frame.astype(float))
        self.steps += 1
        return [(ext.receive() > 0).astype(np.uint8).reshape(spec.out_shape)
                for ext, spec in zip(self.exts, self.layers)]

    def close(self) -> None:
        """Stop the runtime. A run that has done all its steps stops cleanly. An endless one
        (the bridge) has its processes blocked on the Injector, where Lava's stop() waits
        forever, and feeding frames while it tears down shared memory crashes: its worker
        processes are terminated instead (the caller is exiting anyway)."""
        import multiprocessing as mp

        if self.steps >= self.num_steps:
            self.inj.wait()
            self.inj.stop()
            return
        children = mp.active_children()
        for p in children:
            p.terminate()
        deadline = time.monotonic() + 3.0
        while any(p.is_alive() for p in children) and time.monotonic() < deadline:
            time.sleep(0.02)
        for p in children:
            if p.is_alive():
                p.kill()

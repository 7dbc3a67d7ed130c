"""NIR export/import on real recordings: does the backbone survive the round trip, and does
snnTorch, reading our file, spike the same?

    python bench/nir_roundtrip.py [--nmnist 100] [--dtype float32]

For each shipped model that NIR can describe (``nmnist_1k``, ``hybridnet_gesture_synth``):
export the spiking backbone (``snn4 export --nir``), read the file back, import it into our
own modules, and count the spikes (neuron x time bin) that agree with the model's own
emulation on real clips: N-MNIST digits (the first ``--nmnist`` of the 1,000 real samples)
for the N-MNIST model, the 15 real DVS128 AEDAT4 clips (first window each) for the gesture
model. The same file loaded by snnTorch's ``import_from_nir`` is compared on the same clips.
Export and import wall times and the file size are reported too. Last line: one JSON object
(also in bench/results/nir_roundtrip.json).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import Run  # noqa: E402

from snn4_ros.models import checkpoint, nir_io  # noqa: E402
from snn4_ros.models.datasets import nmnist_data  # noqa: E402
from snn4_ros.models.loihi_tools import check_clips  # noqa: E402
from snn4_ros.models.zoo import find_model  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def snntorch_spikes(path: Path, clip: torch.Tensor) -> torch.Tensor | None:
    try:
        import nir
        from snntorch import utils as snn_utils
        from snntorch.import_nir import import_from_nir
    except ImportError:
        return None
    net = import_from_nir(nir.read(str(path)))
    out = []
    with torch.no_grad():
        for b in range(clip.shape[1]):                 # one clip at a time: fresh state
            snn_utils.reset(net)
            out.append(torch.stack([net(clip[t, b:b + 1])[0] for t in range(clip.shape[0])]))
    return torch.cat(out, 1)


def one_model(name: str, clip: torch.Tensor, source: str, dtype, tmp: Path) -> dict:
    model, _ = checkpoint.load(find_model(name))
    t0 = time.perf_counter()
    path = nir_io.write(model, tmp / f"{name}.nir", name=name)
    t1 = time.perf_counter()
    graph = nir_io.read(path)
    imported = nir_io.import_graph(graph)
    t2 = time.perf_counter()
    r = nir_io.compare_spikes(model, imported, clip, dtype=dtype)
    res = {"model": name, "clips": source, "n_clips": int(clip.shape[1]),
           "bins": int(clip.shape[0]), "events": int(clip.sum()),
           "nodes": [type(graph.nodes[n]).__name__ for n in nir_io.chain(graph)],
           "file_bytes": path.stat().st_size, "export_s": round(t1 - t0, 3),
           "import_s": round(t2 - t1, 3), "ours_vs_imported": {k: r[k] for k in
                                                              ("dtype", "agree", "total", "exact")},
           "spikes_per_layer": [x["spikes"] for x in r["layers"]]}
    theirs = snntorch_spikes(path, clip.float())
    if theirs is None:
        res["snntorch"] = "not installed (make bench-env)"
    else:
        ours = nir_io.backbone_spikes(model, clip.float())[-1]
        res["snntorch"] = {"agree": int((ours == theirs).sum()), "total": int(ours.numel()),
                           "exact": bool(torch.equal(ours, theirs)), "dtype": "float32",
                           "compared": "last backbone layer's spikes"}
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nmnist", type=int, default=100, help="real N-MNIST samples to check")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    with Run("nir_roundtrip") as run, tempfile.TemporaryDirectory() as tmp:
        m, _ = checkpoint.load(find_model("nmnist_1k"))
        ids = list(range(1, args.nmnist + 1))
        digits = nmnist_data(SHARED / "nmnist_train1k", m.cfg, ids=ids).frames.float().transpose(0, 1)
        g, _ = checkpoint.load(find_model("hybridnet_gesture_synth"))
        recs = sorted(str(p) for p in (SHARED / "aedat4_dvs128").glob("*.aedat4"))
        dvs = torch.stack([f for _, f in check_clips(g, recs, None)], 1).float()
        out = {"models": [
            one_model("nmnist_1k", digits, f"real N-MNIST samples 1..{args.nmnist}", dtype,
                      Path(tmp)),
            one_model("hybridnet_gesture_synth", dvs,
                      f"{len(recs)} real DVS128 AEDAT4 clips, first window", dtype, Path(tmp))],
            "dt": nir_io.DEFAULT_DT}
        out["all_exact"] = all(r["ours_vs_imported"]["exact"] and
                               (not isinstance(r["snntorch"], dict) or r["snntorch"]["exact"])
                               for r in out["models"])
        run.emit(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

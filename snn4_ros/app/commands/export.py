"""``snn4 export --nir OUT.nir``: the spiking backbone in the Neuromorphic Intermediate
Representation (``models.nir_io``), read back and checked spike for spike on recordings."""

from __future__ import annotations

import json
from pathlib import Path


def cmd_export(args) -> int:
    from ...models import checkpoint, nir_io
    from ...models.zoo import find_model

    base = find_model(args.model)
    for rec in args.check:
        if not Path(rec).exists():
            raise nir_io.NIRError(f"--check {rec}: no such recording")
    model, card = checkpoint.load(base)
    path = nir_io.write(model, args.nir, dt=args.dt, name=Path(base).name)
    graph = nir_io.read(path)
    kinds = [type(graph.nodes[n]).__name__ for n in nir_io.chain(graph)]
    res = {"nir": str(path), "model": str(base), "dt": args.dt, "nodes": kinds,
           "bytes": path.stat().st_size, "checks": []}
    if args.check:
        from ...models.loihi_tools import check_clips

        imported = nir_io.import_graph(graph)
        for name, frames in check_clips(model, args.check, None):
            clip = frames.float().unsqueeze(1)                   # [T, 1, C, H, W]
            r = nir_io.compare_spikes(model, imported, clip, dtype=torch_dtype(args.dtype))
            res["checks"].append({"clip": name, "bins": int(clip.shape[0]),
                                  "events": int(clip.sum()), **r})
    if args.json:
        print(json.dumps(res))
        return 0 if all(c["exact"] for c in res["checks"]) else 1
    print(f"wrote {path} ({res['bytes']:,} bytes): {' -> '.join(kinds)}; dt={args.dt:g} s "
          f"per time bin of {model.cfg.bin_us} us")
    for c in res["checks"]:
        print(f"  {c['clip']}: read back and imported, spikes agree on {c['agree']:,} of "
              f"{c['total']:,} (neuron x bin, {c['dtype']}; ours {sum(r['spikes'] for r in c['layers']):,} "
              f"spikes) {'EXACT' if c['exact'] else 'MISMATCH'}")
    return 0 if all(c["exact"] for c in res["checks"]) else 1


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "float64": torch.float64}[name]


def parser_export(sub) -> None:
    q = sub.add_parser("export", help="export the spiking backbone (NIR) for other frameworks "
                       "and chips")
    q.add_argument("--model", required=True, help="a shipped model name or a checkpoint path")
    q.add_argument("--nir", required=True, metavar="OUT.nir",
                   help="write the backbone as a NIR graph (HDF5) to this file")
    q.add_argument("--dt", type=float, default=1e-4,
                   help="the time step (s) NIR's continuous time constants are written for; "
                   "1e-4 is what snnTorch's NIR import assumes")
    q.add_argument("--check", nargs="*", default=[], metavar="RECORDING",
                   help="read the file back, import it into our modules and compare spikes "
                   "with the model on the first window of each recording (exit 1 on a mismatch)")
    q.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="arithmetic of the --check comparison")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(fn=cmd_export)

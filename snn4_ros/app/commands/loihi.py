"""``snn4 loihi quantize|export``: the Loihi 2 profile (QAT, the Lava export)."""

from __future__ import annotations

import json
import sys


def cmd_loihi(args) -> int:
    from ...models import loihi_tools
    from ...models.checkpoint import CheckpointError
    from ...models.zoo import find_model

    try:
        if args.loihi_cmd == "quantize":
            res = loihi_tools.quantize(str(find_model(args.model)), args.out, args.dataset,
                                       args.val, qat_epochs=args.qat_epochs, lr=args.lr,
                                       seed=args.seed, progress=not args.json,
                                       command="snn4 " + " ".join(args.raw_argv))
            if not args.json:
                print(f"float {res['float_accuracy']:.4f} -> fixed point "
                      f"{res['post_training_fixed_accuracy']:.4f} (converted) -> "
                      f"{res['qat_fixed_accuracy']:.4f} after {res['qat_epochs']} QAT epochs "
                      f"on {res['validation']} (drop {res['drop_points']:+.2f} points); "
                      f"saved {res['checkpoint']} and its Lava export")
        else:
            res = loihi_tools.export(str(find_model(args.model)), args.check_inputs,
                                     real=args.real, synthetic=args.synthetic or None)
            if not args.json:
                print(f"wrote {res['safetensors']} and {res['json']}"
                      + (f"; {res['clips']} check clips in {res['check_inputs']} (torch "
                         f"emulation {res['torch_step_s'] * 1e3:.2f} ms/step)"
                         if args.check_inputs else ""))
    except (loihi_tools.LoihiCompatibilityError, CheckpointError, FileNotFoundError) as exc:
        print(f"snn4 loihi: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res, default=float))
    return 0


def parser_loihi(sub) -> None:
    q = sub.add_parser("loihi", help="Loihi 2 profile: quantise (QAT), export for Lava")
    lsub = q.add_subparsers(dest="loihi_cmd", required=True, metavar="STEP")
    lq = lsub.add_parser("quantize", help="float Loihi-profile model -> fixed point (+ QAT)")
    lq.add_argument("--model", required=True, help="a trained hybridnet-loihi checkpoint")
    lq.add_argument("--out", required=True, help="fixed-point checkpoint path (no suffix)")
    lq.add_argument("--dataset", default="synthetic:n=150", help="QAT training data "
                    "(a dataset spec, as snn4 train --dataset)")
    lq.add_argument("--val", default="synthetic:n=30,seed=1", help="validation data")
    lq.add_argument("--qat-epochs", type=int, default=5, help="quantisation-aware training "
                    "epochs after the conversion (0: converted weights only)")
    lq.add_argument("--lr", type=float, default=5e-4, help="QAT learning rate")
    lq.add_argument("--seed", type=int, default=0, help="seeds the QAT")
    lq.add_argument("--json", action="store_true", help="print one JSON object")
    lq.set_defaults(fn=cmd_loihi)
    le = lsub.add_parser("export", help="write MODEL.lava.safetensors/.json (+ check inputs)")
    le.add_argument("--model", required=True, help="a fixed-point hybridnet-loihi checkpoint "
                    "(snn4 loihi quantize)")
    le.add_argument("--check-inputs", metavar="NPZ", help="also write clips and the torch "
                    "emulation's spikes for the bit-exact check")
    le.add_argument("--real", nargs="*", default=[], help="recordings for real check clips")
    le.add_argument("--synthetic", default="synthetic:n=2,seed=2",
                    help="synthetic check clips (a synthetic dataset spec)")
    le.add_argument("--json", action="store_true", help="print one JSON object")
    le.set_defaults(fn=cmd_loihi)

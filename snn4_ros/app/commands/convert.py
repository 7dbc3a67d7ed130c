"""``snn4 convert``: train the QCFS ANN twin of a preset, convert it to a spiking network,
report accuracy against time steps beside the ANN's (``models.convert``)."""

from __future__ import annotations

import json

from ..errors import UserError

CONVERTIBLE = ("hybridnet-nmnist", "hybridnet-s", "hybridnet-xs")
REFUSED = ("hybridnet-s-sdsa", "hybridnet-loihi")     # accepted here, refused with the reason


def cmd_convert(args) -> int:
    from ...models.convert import ConvertRun, check_convertible, qcfs_config, run_convert
    from ...models.datasets import parse_dataset_spec
    from ...models.hybridnet import preset_config

    # everything cheap to check, before torch trains anything
    check_convertible(preset_config(args.preset))
    qcfs_config(args.preset, args.levels)
    if args.epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {args.epochs}")
    if not 0 <= args.val_split < 1:
        raise UserError(f"--val-split must lie in [0, 1), got {args.val_split}")
    parse_dataset_spec(args.dataset, train=True)
    if args.val:
        parse_dataset_spec(args.val, train=False)
    run = ConvertRun(dataset=args.dataset, out=args.out, preset=args.preset,
                     levels=args.levels, steps=args.steps, compensation=args.compensation,
                     coding=args.coding,
                     sweep=tuple(args.sweep), val=args.val, val_split=args.val_split,
                     train={"epochs": args.epochs, "batch_size": args.batch_size,
                            "lr": args.lr, "seed": args.seed,
                            "augment_shift": args.augment_shift, "device": args.device},
                     progress=not args.quiet and not args.json,
                     command="snn4 " + " ".join(args.raw_argv))
    say = (lambda line: None) if args.json else (lambda line: print(line, flush=True))
    res = run_convert(run, log=say)
    t = res["sweep"]
    if args.json:
        print(json.dumps({"ann_accuracy": t["ann_accuracy"], "n": t["n"],
                          "levels": t["levels"], "sweep": t["rows"],
                          "thresholds": res["thresholds"], "loihi": res["loihi"],
                          "saved": str(res["safetensors"]), "ann": str(res["ann"])}))
        return 0
    print(f"\nheld-out accuracy on {t['n']} samples (the same samples in every row): QCFS ANN "
          f"(L={t['levels']}) {t['ann_accuracy']:.4f}")
    print("SNN accuracy (points from the ANN); bins: bin t drives step t (streams); window: "
          "the window's mean at every step")
    print(f"{'T':>4} {'bin ms':>8} " + " ".join(f"{k:>17}" for k in
                                               ("bins", "bins+signed", "window",
                                                "window+signed")))
    for r in t["rows"]:
        cells = []
        for k in ("none", "signed", "window_none", "window_signed"):
            a = r[k]["accuracy"]
            cells.append(f"{a:.4f} ({100 * (a - t['ann_accuracy']):+5.1f}p)")
        print(f"{r['T']:>4} {r['bin_ms']:>8.2f} " + " ".join(f"{c:>17}" for c in cells))
    print(f"saved {res['safetensors']} (T={args.steps}, compensation {args.compensation}, "
          f"coding {args.coding}) and "
          f"{res['ann']}.safetensors (the QCFS twin); Loihi 2: {res['loihi']}")
    return 0


def parser_convert(sub) -> None:
    from ...models.convert import CODINGS, COMPENSATIONS, SWEEP

    q = sub.add_parser("convert", help="ANN-to-SNN conversion: train a QCFS twin of a preset, "
                       "convert it, accuracy against time steps beside the ANN's")
    q.add_argument("--dataset", required=True,
                   help="nmnist:DIR | synthetic:n=N,seed=S | dvsgesture:DIR | folder:DIR | ... "
                        "(as snn4 train)")
    q.add_argument("--preset", default="hybridnet-nmnist", choices=CONVERTIBLE + REFUSED,
                   help="the network to convert (SDSA and Loihi presets are refused with the "
                        "reason)")
    q.add_argument("--levels", type=int, default=8, metavar="L",
                   help="QCFS quantisation levels of the ANN twin")
    q.add_argument("--epochs", type=int, default=30, help="ANN twin training epochs")
    q.add_argument("--batch-size", type=int, default=16, help="samples per optimiser step")
    q.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (AdamW)")
    q.add_argument("--seed", type=int, default=0, help="seeds the model, the order, the split")
    q.add_argument("--augment-shift", type=int, default=0, help="random shift in pixels")
    q.add_argument("--val", help="a separate held-out dataset spec")
    q.add_argument("--val-split", type=float, default=0.2,
                   help="fraction of the training data held out for the T sweep (stratified)")
    q.add_argument("--steps", type=int, default=8, metavar="T",
                   help="time steps per window of the saved spiking network")
    q.add_argument("--compensation", choices=COMPENSATIONS, default="signed",
                   help="error compensation of the saved network: signed spikes with memory "
                        "(cancels the unevenness of event bins) or none; the sweep shows both")
    q.add_argument("--coding", choices=CODINGS, default="bins",
                   help="input coding of the saved network: bins (bin t drives step t: "
                        "event-driven, streams) or window (the window's mean at every step: "
                        "QCFS's direct coding, needs the whole window first, no streaming); "
                        "the sweep shows both")
    q.add_argument("--sweep", type=int, nargs="+", default=list(SWEEP), metavar="T",
                   help="time steps to report")
    q.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    q.add_argument("--out", required=True,
                   help="the converted model (path without suffix); the ANN twin goes to OUT_ann")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(fn=cmd_convert)

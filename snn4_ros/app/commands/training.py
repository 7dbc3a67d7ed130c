"""``snn4 train``, ``snn4 eval``, ``snn4 finetune-real`` and ``snn4 simstats``: argument parsing and printing; the training run itself
(model card, resume, DDP) is ``models.training_run``."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..errors import positive_float, unit_interval

PRESETS = ("hybridnet-s", "hybridnet-s-sdsa", "hybridnet-xs", "hybridnet-loihi",
           "hybridnet-nmnist")     # models.hybridnet.PRESETS (tests check they agree)


def json_object(text: str) -> dict:
    """``--config``: a JSON object, checked while parsing (not after the data has loaded)."""
    try:
        v = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text!r}") from None
    if not isinstance(v, dict):
        raise argparse.ArgumentTypeError(f"want a JSON object like '{{\"window\": 12}}', "
                                         f"got {text!r}")
    return v


def cmd_train(args) -> int:
    from ...models.datasets import parse_dataset_spec
    from ...models.hybridnet import preset_config

    # everything cheap to check, before torch and the data load
    from ..errors import UserError

    config = dict(args.config)
    if args.learnable_surrogate:
        config["learnable_surrogate"] = True
    if args.surrogate:
        config["surrogate"] = args.surrogate
    if args.surrogate_alpha is not None:
        if args.surrogate_alpha <= 0:
            raise UserError(f"--surrogate-alpha must be positive, got {args.surrogate_alpha}")
        config["surrogate_alpha"] = args.surrogate_alpha
    if args.sdsa_shortcut:
        config["sdsa_shortcut"] = args.sdsa_shortcut
    if config.get("learnable_surrogate") and args.surrogate_schedule:
        raise UserError("--learnable-surrogate and --surrogate-schedule exclude each other: the "
                        "surrogate's width is either learned or scheduled")
    if args.temporal_reg < 0 or args.temporal_reg_decay < 0:
        raise UserError("--temporal-reg and --temporal-reg-decay must be >= 0")
    args.config = config
    preset_config(args.preset, **args.config)      # unknown config keys fail here
    parse_dataset_spec(args.dataset, train=True)
    if args.val:
        parse_dataset_spec(args.val, train=False)
    if args.threads < 0:
        raise UserError(f"--threads must be >= 0 (0: torch's default), got {args.threads}")
    from ...models.train import TrainConfig, set_threads
    from ...models.training_run import TrainRun, run_training

    if args.threads:
        set_threads(args.threads)

    tc = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                     weight_decay=args.weight_decay, seed=args.seed,
                     per_step_loss=args.per_step_loss, rate_reg=args.rate_reg,
                     exit_weighting=args.exit_weighting, temporal_reg=args.temporal_reg,
                     online=args.online,
                     temporal_reg_decay=args.temporal_reg_decay,
                     augment_shift=args.augment_shift, amp=not args.no_amp,
                     compile=args.compile, device=args.device,
                     surrogate_schedule=tuple(args.surrogate_schedule)
                     if args.surrogate_schedule else None)
    run = TrainRun(dataset=args.dataset, out=args.out, preset=args.preset,
                   config=args.config,
                   window=args.window, val=args.val, val_split=args.val_split,
                   resume=args.resume, train=tc, progress=not args.quiet,
                   command="snn4 " + " ".join(args.raw_argv))
    res = run_training(run, log=lambda line: print(line, flush=True))
    if res is None:                         # another DDP rank: rank 0 reports
        return 0
    metrics = res["metrics"]
    print(f"saved {res['safetensors']} and {res['card']}"
          + (f"; held-out accuracy {metrics['accuracy']:.4f}" if metrics else ""))
    return 0


def cmd_eval(args) -> int:
    from ...models import checkpoint
    from ...models.datasets import check_dataset, training_overlap
    from ...models.zoo import find_model, shipped_models

    # the model, the dataset spec and their classes, before torch loads anything
    base = find_model(args.model)
    card = checkpoint.load_card(base)
    check_dataset(args.dataset, card.get("classes") or [], train=False, model=args.model,
                  other_models={k: v.get("classes") or [] for k, v in shipped_models().items()})
    from ...models.datasets import load_dataset
    from ...models.evaluate import evaluate

    model, card = checkpoint.load(base)
    data = load_dataset(args.dataset, model.cfg, train=False)
    res = evaluate(model, data, threshold=args.threshold, progress=not args.json)
    overlap = training_overlap(card, args.dataset)
    res["on_training_data"] = overlap is not None
    if args.dataset.startswith("folder:"):
        from ...models.finetune import summarize_windowed, windowed_scores
        from ...models.realdata import read_labels_csv

        recs = windowed_scores(model, read_labels_csv(args.dataset.partition(":")[2]),
                               args.stride)
        res["windowed"] = {**summarize_windowed(recs), "stride_s": args.stride,
                           "per_clip": recs}
    if args.plot:
        from ...models.plots import confusion_plot
        confusion_plot(res, args.plot)
    if args.record:
        checkpoint.record_evaluation(base, args.dataset, res)
    if overlap:
        print(f"snn4 eval: WARNING {overlap}; the accuracy below says nothing about new data",
              file=sys.stderr)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"{card['preset']} on {data.source}: accuracy {res['accuracy']:.4f} (n={res['n']}"
          f"{', its own training data' if overlap else ''}), "
          f"decision after {res['mean_decision_bins']:.1f} of {res['window_bins']} bins "
          f"({res['bin_us'] / 1000:.0f} ms each) at p>={args.threshold}")
    for name, pc in res["per_class"].items():
        r = "-" if pc["recall"] is None else f"{pc['recall']:.3f}"
        pr = "-" if pc["precision"] is None else f"{pc['precision']:.3f}"
        print(f"  {name:<16} recall {r}  precision {pr}  (n={pc['support']})")
    if "windowed" in res:
        w = res["windowed"]
        print(f"  sliding windows ({w['stride_s']} s stride, inside start_s/end_s): majority "
              f"right on {w['clips_right']}/{w['clips']} clips (one clip = "
              f"{w['one_clip_is_pct']:.1f} points), {w['windows_right']}/{w['windows']} "
              f"windows right")
        for r in w["per_clip"]:
            print(f"    {r['clip']:<36} {r['label']:<16} -> {r['majority']:<16} "
                  f"{r['windows_right']}/{r['windows']} windows  {r['window_classes']}")
    e = res["energy_estimate"]
    print(f"  synops/sample {res['synops_per_sample']:,.0f}, MACs/sample {res['macs_per_sample']:,}")
    if e.get("applicable"):
        print(f"  energy estimate {e['snn_loihi_uj_per_sample']:.2f} uJ (Loihi) vs "
              f"{e['ann_int8_uj_per_sample']:.2f} uJ (int8 MACs), "
              f"{e['ann_fp32_uj_per_sample']:.2f} uJ (fp32 MACs); {e['note']}")
    else:
        print(f"  {e['why']}")
    return 0


def parser_train(sub) -> None:
    q = sub.add_parser("train", help="train a HybridNet (BPTT or online, surrogate gradients)")
    q.add_argument("--dataset", required=True,
                   help="synthetic:n=N,seed=S (N clips per class, default 20; S default 0; "
                        "short form synthetic:N[:SEED]) | synthetic-real:n=N,seed=S | "
                        "nmnist:DIR | dvsgesture:DIR | folder:DIR | bag:PATH[,LABELS]")
    q.add_argument("--preset", default="hybridnet-s", choices=PRESETS,
                   help="network size and profile (hybridnet-loihi: what Loihi 2 can run)")
    q.add_argument("--config", type=json_object, default={}, metavar="JSON",
                   help="overrides of the preset's HybridNetConfig, e.g. '{\"window\": 12}'")
    q.add_argument("--window", type=int, help="time bins per sample (default: the preset's)")
    q.add_argument("--out", required=True, help="checkpoint path without suffix")
    q.add_argument("--epochs", type=int, default=20, help="passes over the training data")
    q.add_argument("--batch-size", type=int, default=16, help="clips per optimiser step")
    q.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (AdamW)")
    q.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay")
    q.add_argument("--seed", type=int, default=0, help="seeds the model, the order, the split")
    q.add_argument("--val", help="a separate validation dataset spec")
    q.add_argument("--val-split", type=float, default=0.0,
                   help="fraction of the training data held out for validation")
    q.add_argument("--per-step-loss", type=float, default=0.5,
                   help="weight of the early-exit (prefix) losses")
    q.add_argument("--exit-weighting", type=float, default=1.0, metavar="EXP",
                   help="early-exit prefix weights (end/T)**EXP: more weight on later prefixes "
                   "(0: equal); an early-exit weighting, not a regulariser")
    q.add_argument("--temporal-reg", type=float, default=0.0, metavar="LAMBDA",
                   help="temporal regularisation (TRT): every bin's readout pulled to the label "
                   "with weight LAMBDA*exp(-DECAY*(t-1)), strongest on the first bin (0: off)")
    q.add_argument("--temporal-reg-decay", type=float, default=0.5, metavar="DECAY",
                   help="how fast the temporal regularisation weakens over the bins")
    q.add_argument("--rate-reg", type=float, default=0.0, help="firing-rate regularisation")
    q.add_argument("--augment-shift", type=int, default=0, help="random shift in pixels")
    q.add_argument("--surrogate-schedule", type=float, nargs=2, metavar=("START", "END"),
                   help="sharpen the surrogate alpha from START to END over training")
    q.add_argument("--learnable-surrogate", action="store_true",
                   help="learn each layer's surrogate width (LSG) instead of fixing it")
    q.add_argument("--surrogate", choices=("arctan", "fast_sigmoid", "triangle", "rectangle"),
                   help="surrogate gradient shape (default: the preset's, arctan)")
    q.add_argument("--surrogate-alpha", type=float, metavar="ALPHA",
                   help="surrogate sharpness (start value when learnable; default the preset's)")
    q.add_argument("--sdsa-shortcut", choices=("membrane", "add"),
                   help="with an SDSA preset: 'membrane' (spike-driven, binary output; the "
                   "default of hybridnet-s-sdsa) or 'add' (the first version, values 0/1/2)")
    q.add_argument("--online", action="store_true",
                   help="SLTT-style online training: gradients through the spatial path of each "
                   "bin only, backward per bin; memory stays constant in the number of bins")
    q.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    q.add_argument("--compile", action="store_true", help="torch.compile on CUDA")
    q.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    q.add_argument("--resume", action="store_true", help="continue from --out")
    q.add_argument("--threads", type=int, default=0, metavar="N",
                   help="CPU threads for torch and the compiled neuron kernels (0: torch's "
                   "default, one per core). On a shared or busy machine 1 is often faster: "
                   "every small op waits at a barrier for its slowest thread")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(fn=cmd_train)


def parser_eval(sub) -> None:
    q = sub.add_parser("eval", help="evaluate a checkpoint on a dataset")
    q.add_argument("--model", required=True, help="shipped model name or checkpoint path "
                   "(.safetensors with its .json card)")
    q.add_argument("--dataset", required=True,
                   help="synthetic:n=N,seed=S (N clips per class, default 20; S default 1, "
                        "training's is 0; short form synthetic:N[:SEED]) | "
                        "synthetic-real:n=N,seed=S | nmnist:DIR | dvsgesture:DIR | folder:DIR | "
                        "bag:PATH[,LABELS]")
    q.add_argument("--threshold", type=unit_interval, default=0.9,
                   help="early exit: decide at the first bin whose confidence reaches this "
                        "(1 waits for the whole clip)")
    q.add_argument("--stride", type=positive_float, default=0.32,
                   help="folder datasets: seconds between the sliding windows scored per clip")
    q.add_argument("--plot", help="write the confusion matrix as a PNG")
    q.add_argument("--record", action="store_true",
                   help="add the result to the model card's evaluations")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(fn=cmd_eval)


def cmd_finetune_real(args) -> int:
    import torch

    from ...eval.realworld import RealWorldRecipe, run_recipe

    torch.set_num_threads(args.threads)
    r = RealWorldRecipe(init=args.init, positives=args.positives, folds=args.folds,
                        steps=args.steps, seed=args.seed)
    if args.negatives:
        r.negatives = tuple(args.negatives)
    if args.heldout_negatives:
        r.heldout_negatives = tuple(args.heldout_negatives)
    try:
        res = run_recipe(r, args.out, log=lambda *a: print(*a, flush=True))
    except (FileNotFoundError, ValueError) as exc:
        print(f"snn4 finetune-real: {exc}", file=sys.stderr)
        return 2
    cv = res["crossval"]
    if cv:
        print(f"cross-validated ({r.folds} folds): {cv['windowed']['clips_right']}/"
              f"{cv['windowed']['clips']} positive clips right by window majority, "
              f"{cv['commanded']}/{cv['clips']} commanded by the controller; negatives: "
              + ", ".join(f"{os.path.basename(n['recording'].rstrip('/'))} "
                          f"{n['episodes_per_min']:.2f}/min" for n in cv["negatives"])
              + f"; synthetic {cv['synthetic']['right']}/{cv['synthetic']['n']}")
    print(f"saved {args.out}.safetensors and {args.out}.json")
    return 0


def cmd_simstats(args) -> int:
    import glob

    from ...eval import simstats

    paths = sorted(p for pat in args.real for p in glob.glob(pat))
    if not paths:
        print("snn4 simstats: no real recordings match " + " ".join(args.real), file=sys.stderr)
        return 2
    stats = simstats.compare(paths, n=args.clips, seed=args.seed)
    simstats.plot(stats, args.plot)
    out = [{k: v for k, v in s.items() if not k.startswith("_")} for s in stats]
    if args.json:
        print(json.dumps(out))
        return 0
    for s in out:
        sm = s["summary"]
        print(f"{s['kind']:<15} {s['windows']:4d} windows: {sm['rate']['median']:8,.0f} ev/s "
              f"(p10-p90 {sm['rate']['p10']:,.0f}-{sm['rate']['p90']:,.0f}), ON "
              f"{sm['on']['median']:.2f}, background {sm['noise_hz_px']['median']:.3f} Hz/px, "
              f"moving area {sm['moving_area']['median']:.2f}, hot pixels "
              f"{100 * sm['hot_pixel_fraction']:.2f} %")
    print(f"plot: {args.plot}")
    return 0


def parser_finetune_real(sub) -> None:
    q = sub.add_parser("finetune-real", help="fine-tune a gesture model on real clips + real "
                       "negatives + synthetic data (a 'none' outcome), cross-validated")
    q.add_argument("--init", default="models/hybridnet_gesture_synth",
                   help="the trained model to start from (its spiking backbone is kept)")
    q.add_argument("--positives", default="../shared/data/aedat4_dvs128",
                   help="folder of gesture clips with labels.csv")
    q.add_argument("--negatives", nargs="*", help="recordings without any command gesture to "
                   "train 'none' on (default: the shared AEDAT2 recordings and both bags)")
    q.add_argument("--heldout-negatives", nargs="*", help="recordings without a gesture that "
                   "are only scored (default: the Prophesee RAW file, N-MNIST)")
    q.add_argument("--folds", type=int, default=4, help="cross-validation folds (0: none)")
    q.add_argument("--steps", type=int, default=400, help="readout optimisation steps")
    q.add_argument("--seed", type=int, default=0, help="seeds the folds and the readout")
    q.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    q.add_argument("--out", required=True, help="checkpoint path without suffix")
    q.set_defaults(fn=cmd_finetune_real)


def parser_simstats(sub) -> None:
    q = sub.add_parser("simstats", help="sensor statistics of real recordings vs the simulator, "
                       "side by side in a plot")
    q.add_argument("--real", nargs="+", default=["../shared/data/aedat4_dvs128/*.aedat4"],
                   help="real recordings (glob patterns)")
    q.add_argument("--clips", type=int, default=12, help="simulated clips per simulator")
    q.add_argument("--seed", type=int, default=11, help="seeds the simulated clips")
    q.add_argument("--plot", default="out/simstats.png", help="write the comparison plot here")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(fn=cmd_simstats)

"""``snn4 train`` and ``snn4 eval``: argument parsing and printing; the training run itself
(model card, resume, DDP) is ``models.training_run``."""

from __future__ import annotations

import json
import sys


def cmd_train(args) -> int:
    from ...models.train import TrainConfig
    from ...models.training_run import TrainRun, run_training

    tc = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                     weight_decay=args.weight_decay, seed=args.seed,
                     per_step_loss=args.per_step_loss, rate_reg=args.rate_reg,
                     augment_shift=args.augment_shift, amp=not args.no_amp,
                     compile=args.compile, device=args.device,
                     surrogate_schedule=tuple(args.surrogate_schedule)
                     if args.surrogate_schedule else None)
    run = TrainRun(dataset=args.dataset, out=args.out, preset=args.preset,
                   config=json.loads(args.config) if args.config else {},
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
    from ...models.datasets import load_dataset
    from ...models.evaluate import evaluate
    from ...models.zoo import find_model

    try:
        model, card = checkpoint.load(find_model(args.model))
    except (checkpoint.CheckpointError, FileNotFoundError) as exc:
        print(f"snn4 eval: {exc}", file=sys.stderr)
        return 2
    data = load_dataset(args.dataset, model.cfg, train=False)
    res = evaluate(model, data, threshold=args.threshold, progress=not args.json)
    if args.plot:
        from ...models.plots import confusion_plot
        confusion_plot(res, args.plot)
    if args.record:
        checkpoint.record_evaluation(find_model(args.model), args.dataset, res)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"{card['preset']} on {data.source}: accuracy {res['accuracy']:.4f} (n={res['n']}), "
          f"decision after {res['mean_decision_bins']:.1f} of {res['window_bins']} bins "
          f"({res['bin_us'] / 1000:.0f} ms each) at p>={args.threshold}")
    for name, pc in res["per_class"].items():
        r = "-" if pc["recall"] is None else f"{pc['recall']:.3f}"
        pr = "-" if pc["precision"] is None else f"{pc['precision']:.3f}"
        print(f"  {name:<16} recall {r}  precision {pr}  (n={pc['support']})")
    e = res["energy_estimate"]
    print(f"  synops/sample {res['synops_per_sample']:,.0f}, MACs/sample {res['macs_per_sample']:,} "
          f"-> estimate {e['snn_loihi_uj_per_sample']:.2f} uJ (Loihi) vs "
          f"{e['ann_gpu_fp32_uj_per_sample']:.2f} uJ (fp32 MACs)")
    return 0


def parser_train(sub) -> None:
    q = sub.add_parser("train", help="train a HybridNet (BPTT, surrogate gradients)")
    q.add_argument("--dataset", required=True,
                   help="synthetic:N[:SEED] | nmnist:DIR | dvsgesture:DIR | folder:DIR")
    q.add_argument("--preset", default="hybridnet-s")
    q.add_argument("--config", help="JSON overrides of the preset's HybridNetConfig")
    q.add_argument("--window", type=int, help="time bins per sample (default: the preset's)")
    q.add_argument("--out", required=True, help="checkpoint path without suffix")
    q.add_argument("--epochs", type=int, default=20)
    q.add_argument("--batch-size", type=int, default=16)
    q.add_argument("--lr", type=float, default=3e-3)
    q.add_argument("--weight-decay", type=float, default=1e-2)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--val", help="a separate validation dataset spec")
    q.add_argument("--val-split", type=float, default=0.0,
                   help="fraction of the training data held out for validation")
    q.add_argument("--per-step-loss", type=float, default=0.5,
                   help="weight of the early-exit (prefix) losses")
    q.add_argument("--rate-reg", type=float, default=0.0, help="firing-rate regularisation")
    q.add_argument("--augment-shift", type=int, default=0, help="random shift in pixels")
    q.add_argument("--surrogate-schedule", type=float, nargs=2, metavar=("START", "END"),
                   help="sharpen the surrogate alpha from START to END over training")
    q.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    q.add_argument("--compile", action="store_true", help="torch.compile on CUDA")
    q.add_argument("--device", default="auto")
    q.add_argument("--resume", action="store_true", help="continue from --out")
    q.add_argument("--quiet", action="store_true")
    q.set_defaults(fn=cmd_train)


def parser_eval(sub) -> None:
    q = sub.add_parser("eval", help="evaluate a checkpoint on a dataset")
    q.add_argument("--model", required=True, help="shipped model name or checkpoint path "
                   "(.safetensors with its .json card)")
    q.add_argument("--dataset", required=True,
                   help="synthetic:N[:SEED] | nmnist:DIR | dvsgesture:DIR | folder:DIR | "
                        "bag:PATH[,LABELS]")
    q.add_argument("--threshold", type=float, default=0.9, help="early-exit confidence")
    q.add_argument("--plot", help="write the confusion matrix as a PNG")
    q.add_argument("--record", action="store_true",
                   help="add the result to the model card's evaluations")
    q.add_argument("--json", action="store_true")
    q.set_defaults(fn=cmd_eval)

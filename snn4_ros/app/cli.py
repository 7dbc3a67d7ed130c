"""The ``snn4`` command line.

    snn4 inspect PATH [--topic NAME] [--json]   summary of any supported recording
    snn4 demo [--duration S]                    the pipeline on the synthetic DVS, live stats
    snn4 record-synthetic --out BAG             a labelled bag from the synthetic DVS
    snn4 train --dataset SPEC --preset P --out models/NAME
    snn4 eval --model M --dataset SPEC [--json]
    snn4 up [--source SPEC] [--duration S]      the ROS 2 graph in one process
    snn4 replay BAG... --model M [--report DIR] recordings through the live code -> report
    snn4 loihi quantize|export                  the Loihi 2 profile: QAT, Lava export
    snn4 sources                                the source specs and formats understood
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _cmd_inspect(args) -> int:
    from ..events import EventDataError, inspect_recording

    try:
        info = inspect_recording(args.path, topic=args.topic, strict=not args.lenient)
    except EventDataError as exc:
        print(f"snn4 inspect: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info))
        return 0
    s = info["stats"]
    print(f"{info['path']}\n  format     {info['format']}"
          + (f" ({info['msgtype']}, encoding {info['encoding']}, topic {info['topic']}, "
             f"{info['messages']} messages)" if "messages" in info else ""))
    for note in info.get("notes", []):
        print(f"  note       {note}")
    print(f"  sensor     {info['width']} x {info['height']}")
    print(f"  events     {info['events']:,} ({info['on']:,} ON, {info['off']:,} OFF), "
          f"{info['triggers']} triggers")
    if info["events"]:
        print(f"  time       {info['t_first_us']:.0f} .. {info['t_last_us']:.0f} us "
              f"({info['duration_s']:.3f} s, {info['events'] / max(info['duration_s'], 1e-9):,.0f} ev/s)")
    skipped = {k: v for k, v in s.items() if k in ("seq_gaps", "skipped_packets", "out_of_range",
                                                   "time_regressions", "truncated_bytes",
                                                   "bad_words") and v}
    if skipped:
        print(f"  skipped    {skipped}")
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(duration_s=args.duration, seed=args.seed, encoding=args.encoding,
                    model=args.model)


def _cmd_up(args) -> int:
    from ..ros.graph import run_graph

    overrides: dict = {}
    for item in args.param or []:
        key, _, raw = item.partition("=")
        node, _, name = key.partition(".")
        if not name or not raw:
            print(f"snn4 up: --param wants NODE.NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        overrides.setdefault(node, {})[name] = value
    state = {"bins": 0, "events": 0}

    def report(inf, ctrl, src):
        st = inf.decoder.stats
        cls, conf, pos = inf.last or ("-", 0.0, None)
        c = ctrl.last
        line = (f"{st.events - state['events']:8,d} ev/s {inf.bins - state['bins']:3d} bins  "
                f"snn={cls:<15} p={conf:.2f}  "
                + (f"target=({pos[0]:5.1f},{pos[1]:5.1f})  " if pos else "")
                + (f"cmd_vel=({c.linear:+.2f} m/s, {c.angular:+.2f} rad/s) [{c.state}"
                   f"{' ' + c.action if c.action else ''}]" if c else "cmd_vel=-"))
        state["bins"], state["events"] = inf.bins, st.events
        print(line, flush=True)

    if args.dashboard:
        from ..dashboard import DashboardSecurityError, check_bind
        from ..ros.dashboard_node import read_token

        host, _, port = args.dashboard.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        if not port.isdigit():
            print(f"snn4 up: --dashboard wants HOST:PORT, got {args.dashboard!r}",
                  file=sys.stderr)
            return 2
        dash = overrides.setdefault("dashboard", {})
        dash.update(host=host, port=int(port))
        if args.dashboard_token_file:
            dash["token_file"] = os.path.abspath(args.dashboard_token_file)
        try:
            check_bind(host, read_token(dash.get("token_file", "")))
        except (DashboardSecurityError, OSError, ValueError) as exc:
            print(f"snn4 up: {exc}", file=sys.stderr)
            return 2
        print(f"snn4 up: dashboard on http://{host}:{port}/ (its own process)", flush=True)
    print(f"snn4 up: event_source -> snn4_inference -> gesture_controller in one process "
          f"(graph {args.graph}; Ctrl-C to stop)", flush=True)
    from ..ros.lava_env import LavaEnvMissing
    try:
        summary = run_graph(args.source, args.duration, overrides, graph=args.graph,
                            report=report if not args.json else None,
                            dashboard=bool(args.dashboard))
    except (LavaEnvMissing, FileNotFoundError) as exc:
        print(f"snn4 up: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary))
    return 1 if summary.get("source_error") else 0


def _cmd_replay(args) -> int:
    import yaml

    from ..events.labels import LabelError
    from ..eval.metrics import compute_metrics
    from ..eval.inprocess import ReplayOptions
    from ..eval.report import write_report
    from .replay_jobs import ReplayJob, run_replay
    from ..events import EventDataError

    controller = {}
    if args.controller:
        with open(args.controller) as f:
            controller = yaml.safe_load(f) or {}
    opts = ReplayOptions(topic=args.topic, rate=None if args.max_speed else args.rate,
                         strict=args.strict, controller=controller, device=args.device)
    job = ReplayJob(args.recordings, args.model, opts, labels=args.labels,
                    label_topic=args.label_topic, auto_labels=not args.no_labels,
                    via_ros=args.via_ros, jobs=args.jobs, threshold=args.threshold)
    try:
        traces = run_replay(job, show_progress=not args.json)
    except (EventDataError, LabelError, ValueError, FileNotFoundError) as exc:
        print(f"snn4 replay: {exc}", file=sys.stderr)
        return 2
    m = compute_metrics(traces, args.threshold, controller)
    paths = write_report(args.report, m, traces) if args.report else None
    if args.json:
        print(json.dumps({k: v for k, v in m.items() if k != "interval_results"},
                         default=float))
        return 0
    print(f"{m['events']:,} events, {m['duration_s']:.1f} s of recording in {m['wall_s']:.1f} s "
          f"(real-time factor {m['real_time_factor']:.1f}, {m['events_per_s_sustained']:,.0f} "
          f"ev/s, {m['mode']}); {m['decisions']} decisions, {m['commands_nonzero']} non-zero "
          f"of {m['commands']} commands; skipped messages {m['skipped_messages']}")
    for tr in traces:
        if tr.labels:
            print(f"  labels: {tr.model.get('labels')} ({len(tr.labels)} intervals"
                  + (f", {tr.labels_skipped} outside the recording skipped" if tr.labels_skipped
                     else "") + ")")
    if m.get("labelled"):
        lat = m["onset_latency_ms_p50"]
        print(f"  accuracy {m['accuracy']:.3f} (majority per interval, n={m['intervals']}), "
              f"first decision {m['first_decision_accuracy']:.3f}, per bin {m['bin_accuracy']:.3f}; "
              f"onset -> correct decision p50 {'-' if lat is None else f'{lat:.0f} ms'}; "
              f"false commands {m['false_commands_per_min']:.2f}/min, wrong-action "
              f"{m['wrong_commands_per_min']:.2f}/min")
    st = m["stage_latency_ms"]
    print("  per stage p50/p99 ms: " + ", ".join(
        f"{k} {v['p50']:.2f}/{v['p99']:.2f}" for k, v in st.items() if v["p50"] is not None))
    if paths:
        print(f"  report: {paths['html']} and {paths['json']}; decisions bag: "
              + ", ".join(paths["bags"]))
    return 0


def _cmd_loihi(args) -> int:
    from ..models import loihi_tools
    from ..models.checkpoint import CheckpointError
    from ..models.zoo import find_model

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


def _cmd_sources(args) -> int:
    print(__doc__.strip())
    from ..events import sources

    print("\nSource specs:" + sources.__doc__.split("A source spec is a string, as the CLI and "
                                                    "the ROS nodes take it:")[1])
    return 0


def _cmd_record_synthetic(args) -> int:
    from ..events.recording import record_synthetic

    info = record_synthetic(args.out, gestures=args.gestures, seed=args.seed,
                            gesture_s=args.gesture_s, encoding=args.encoding,
                            storage=args.storage)
    print(json.dumps(info) if args.json else
          f"wrote {info['bag']} ({info['messages']} packets, {info['events']:,} events) and "
          f"{info['labels']}")
    return 0


def _cmd_train(args) -> int:
    import torch

    from ..models import checkpoint
    from ..models.datasets import load_dataset
    from ..models.evaluate import evaluate
    from ..models.hybridnet import HybridNet, preset_config
    from ..models.train import TrainConfig, train

    overrides = json.loads(args.config) if args.config else {}
    cfg = preset_config(args.preset, **overrides)
    if args.window:
        cfg.window = args.window
    torch.manual_seed(args.seed)
    data = load_dataset(args.dataset, cfg, train=True)
    val = None
    if args.val:
        val = load_dataset(args.val, cfg, train=False)
    elif args.val_split > 0:
        data, val = data.split(args.val_split, seed=args.seed)
    tc = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                     weight_decay=args.weight_decay, seed=args.seed,
                     per_step_loss=args.per_step_loss, rate_reg=args.rate_reg,
                     augment_shift=args.augment_shift, amp=not args.no_amp,
                     compile=args.compile, device=args.device,
                     surrogate_schedule=tuple(args.surrogate_schedule)
                     if args.surrogate_schedule else None)
    model = HybridNet(cfg)
    resume = None
    if args.resume:
        model, _ = checkpoint.load(args.out)
        model.train()
        resume = checkpoint.load_resume(args.out)
    if os.environ.get("RANK", "0") == "0":
        print(f"training {cfg.preset} ({model.param_count():,} parameters) on {len(data)} "
              f"samples of {data.source}" + (f", validating on {len(val)}" if val is not None
                                             else ""), flush=True)
    hist = train(model, data, tc, val=val, resume=resume, progress=not args.quiet)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank = torch.distributed.get_rank()
        torch.distributed.destroy_process_group()
        if rank != 0:                       # rank 0 evaluates and writes the checkpoint
            return 0
    model.cpu().eval()
    metrics = evaluate(model, val) if val is not None and len(val) else {}
    card = {"training": {"dataset": args.dataset, "samples": len(data),
                         "validation": args.val or (f"{args.val_split:.0%} of the training data, "
                                                    "held out (stratified)" if val is not None
                                                    else None),
                         "config": {k: v for k, v in hist["config"].items()},
                         "history": {k: hist[k] for k in ("loss", "train_acc", "val_acc",
                                                          "seconds")}},
            "metrics": {k: metrics[k] for k in ("accuracy", "n", "mean_decision_bins",
                                                "synops_per_sample", "macs_per_sample",
                                                "tracking_error_px_mean") if k in metrics},
            "command": "snn4 " + " ".join(args.raw_argv)}
    st, cp = checkpoint.save(model, args.out, card)
    checkpoint.save_resume(args.out, hist["optimizer"], hist["scheduler"], tc.epochs, hist)
    from ..models.plots import training_plot
    training_plot(hist, st.with_name(st.stem + ".training.png"))
    print(f"saved {st} and {cp}" + (f"; held-out accuracy {metrics['accuracy']:.4f}"
                                    if metrics else ""))
    return 0


def _cmd_eval(args) -> int:
    from ..models import checkpoint
    from ..models.datasets import load_dataset
    from ..models.evaluate import evaluate
    from ..models.zoo import find_model

    try:
        model, card = checkpoint.load(find_model(args.model))
    except (checkpoint.CheckpointError, FileNotFoundError) as exc:
        print(f"snn4 eval: {exc}", file=sys.stderr)
        return 2
    data = load_dataset(args.dataset, model.cfg, train=False)
    res = evaluate(model, data, threshold=args.threshold, progress=not args.json)
    if args.plot:
        from ..models.plots import confusion_plot
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="snn4", description="Event-camera perception with spiking neural networks, for ROS 2.",
        epilog="Start with `snn4 demo`; `snn4 COMMAND --help` explains each command.")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    q = sub.add_parser("inspect", help="summarise a recording (bag, AEDAT4/2, RAW, N-MNIST)")
    q.add_argument("path", help="bag folder/.db3/.mcap/.bag, .aedat4, .aedat, .raw, .bin/.bs2")
    q.add_argument("--topic", help="event topic in a bag (default: the only one)")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.add_argument("--lenient", action="store_true",
                   help="skip and count bad data instead of stopping at the first problem")
    q.set_defaults(fn=_cmd_inspect)

    q = sub.add_parser("demo", help="run the pipeline on the synthetic DVS with live statistics")
    q.add_argument("--duration", type=float, default=None, help="seconds (default: until Ctrl-C)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--encoding", default="evt3", choices=["evt3", "libcaer_cmp", "libcaer", "mono"],
                   help="EventPacket encoding on the way through the pipeline")
    q.add_argument("--model", default="hybridnet_gesture_synth",
                   help="shipped model name or checkpoint path")
    q.set_defaults(fn=_cmd_demo)

    q = sub.add_parser("record-synthetic", help="write a labelled bag from the synthetic DVS")
    q.add_argument("--out", required=True, help="bag folder to create")
    q.add_argument("--gestures", type=int, default=11, help="number of gestures in the bag")
    q.add_argument("--gesture-s", type=float, default=2.0, help="seconds per gesture")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--encoding", default="evt3", choices=["evt3", "libcaer_cmp", "libcaer", "mono"])
    q.add_argument("--storage", default="mcap", choices=["mcap", "sqlite3"])
    q.add_argument("--json", action="store_true")
    q.set_defaults(fn=_cmd_record_synthetic)

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
    q.set_defaults(fn=_cmd_train)

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
    q.set_defaults(fn=_cmd_eval)

    q = sub.add_parser("up", help="run the ROS 2 perception graph in one process")
    q.add_argument("--source", help="event source spec (default: the graph YAML's)")
    q.add_argument("--duration", type=float, help="seconds, then stop (default: until Ctrl-C)")
    q.add_argument("--graph", default="perception", help="config/<graph>.yaml or a path")
    q.add_argument("--param", action="append", metavar="NODE.NAME=VALUE",
                   help="override a node parameter (repeatable)")
    q.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    q.add_argument("--dashboard", metavar="HOST:PORT",
                   help="serve the health/metrics endpoints and the live page (e.g. "
                        "127.0.0.1:8080; another address needs a token)")
    q.add_argument("--dashboard-token-file", metavar="FILE",
                   help="bearer token for the e-stop (else SNN4_DASHBOARD_TOKEN)")
    q.set_defaults(fn=_cmd_up)

    q = sub.add_parser("replay", help="replay recordings through the live code: accuracy, "
                       "latency, commands -> report")
    q.add_argument("recordings", nargs="+", metavar="BAG",
                   help="ROS 2 bag (folder/.db3/.mcap), ROS 1 .bag, or event file (.aedat4, ...)")
    q.add_argument("--model", default="hybridnet_gesture_synth",
                   help="shipped model name or checkpoint path")
    lab = q.add_mutually_exclusive_group()
    lab.add_argument("--labels", action="append", metavar="CSV",
                     help="start,end,class intervals in the bag's clock (one per recording; "
                          "default: RECORDING.labels.csv when it exists)")
    lab.add_argument("--label-topic", metavar="NAME",
                     help="vision_msgs/Classification ground-truth topic in the bag")
    lab.add_argument("--no-labels", action="store_true", help="ignore RECORDING.labels.csv")
    q.add_argument("--report", metavar="DIR", help="write report.json, report.html and the "
                                                   "decisions bag here")
    speed = q.add_mutually_exclusive_group()
    speed.add_argument("--rate", type=float, default=None, help="x real time (default: as fast "
                       "as possible)")
    speed.add_argument("--max-speed", action="store_true", help="as fast as possible (default)")
    q.add_argument("--via-ros", action="store_true",
                   help="through the real nodes over DDS topics (transport included)")
    q.add_argument("--topic", help="event topic in a bag (default: the only one)")
    q.add_argument("--controller", metavar="YAML", help="controller parameters and actions")
    q.add_argument("--threshold", type=float, default=0.9,
                   help="confidence of a 'confident' decision (first decision, onset latency)")
    q.add_argument("--strict", action="store_true",
                   help="stop at the first bad message instead of skipping and counting")
    q.add_argument("--jobs", type=int, default=0, help="parallel processes (default: one per "
                   "recording, up to the core count)")
    q.add_argument("--device", default="cpu")
    q.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    q.set_defaults(fn=_cmd_replay)

    q = sub.add_parser("loihi", help="Loihi 2 profile: quantise (QAT), export for Lava")
    lsub = q.add_subparsers(dest="loihi_cmd", required=True, metavar="STEP")
    lq = lsub.add_parser("quantize", help="float Loihi-profile model -> fixed point (+ QAT)")
    lq.add_argument("--model", required=True, help="a trained hybridnet-loihi checkpoint")
    lq.add_argument("--out", required=True, help="fixed-point checkpoint path (no suffix)")
    lq.add_argument("--dataset", default="synthetic:150", help="QAT training data")
    lq.add_argument("--val", default="synthetic:30:1", help="validation data")
    lq.add_argument("--qat-epochs", type=int, default=5)
    lq.add_argument("--lr", type=float, default=5e-4)
    lq.add_argument("--seed", type=int, default=0)
    lq.add_argument("--json", action="store_true")
    lq.set_defaults(fn=_cmd_loihi)
    le = lsub.add_parser("export", help="write MODEL.lava.safetensors/.json (+ check inputs)")
    le.add_argument("--model", required=True)
    le.add_argument("--check-inputs", metavar="NPZ", help="also write clips and the torch "
                    "emulation's spikes for the bit-exact check")
    le.add_argument("--real", nargs="*", default=[], help="recordings for real check clips")
    le.add_argument("--synthetic", default="synthetic:2:2", help="synthetic check clips")
    le.add_argument("--json", action="store_true")
    le.set_defaults(fn=_cmd_loihi)

    q = sub.add_parser("sources", help="list the source specs and recording formats")
    q.set_defaults(fn=_cmd_sources)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd in ("train", "eval", "demo", "up", "replay", "loihi"):
        from ..models.allocator import tune_allocator
        tune_allocator()
    args.raw_argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

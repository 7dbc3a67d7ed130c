"""``snn4 replay``: recordings through the live code -> metrics and a report."""

from __future__ import annotations

import json
import os
import sys

from ..errors import count_or_auto, positive_float, unit_interval


def cmd_replay(args) -> int:
    import yaml

    from ...events.labels import LabelError
    from ...eval.metrics import compute_metrics
    from ...eval.inprocess import ReplayOptions
    from ...eval.report import write_report
    from ..replay_jobs import ReplayJob, run_replay
    from ...events import EventDataError
    from ...events.errors import UserError
    from ...models.train import pick_device

    # a device torch cannot use: one line, before any work; "auto" resolved here
    args.device = str(pick_device(args.device))
    controller = {}
    if args.controller:
        with open(args.controller) as f:
            try:
                controller = yaml.safe_load(f) or {}
            except yaml.YAMLError as exc:
                raise UserError(f"--controller {args.controller}: not valid YAML "
                                f"({' '.join(str(exc).split())})") from None
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
    if job.model_note:
        print(f"snn4 replay: {job.model_note}", file=sys.stderr)
    for rec, err in job.failures:          # each bad recording named; the rest were replayed
        print(f"snn4 replay: {rec}: not replayed: {err}", file=sys.stderr)
    if not traces:
        print(f"snn4 replay: none of the {len(args.recordings)} recordings could be replayed",
              file=sys.stderr)
        return 2
    status = 1 if job.failures else 0
    m = compute_metrics(traces, args.threshold, controller)
    if args.rate:                    # paced: say so when the replay could not keep the pace
        from ...runtime.realtime import behind_real_time

        behind = behind_real_time(m["duration_s"], m["wall_s"], wanted=args.rate)
        if behind:
            print(f"snn4 replay: WARNING {behind}: the latencies and drops are those of an "
                  "overloaded run", file=sys.stderr)
    if args.positives:
        from ...eval.realworld import replay_tradeoff
        from ...models import checkpoint
        from ...models.zoo import find_model

        net, _ = checkpoint.load(find_model(job.model))
        try:
            m.update(replay_tradeoff(net, args.positives, traces,
                                     controller or traces[0].model.get("controller") or {}))
        except (LabelError, ValueError, FileNotFoundError) as exc:
            print(f"snn4 replay: --positives: {exc}", file=sys.stderr)
            return 2
    paths = write_report(args.report, m, traces) if args.report else None
    if args.json:
        out = {k: v for k, v in m.items() if k != "interval_results"}
        out["failed_recordings"] = [{"recording": r, "error": e} for r, e in job.failures]
        print(json.dumps(out, default=float))
        return status
    print(f"{m['events']:,} events, {m['duration_s']:.1f} s of recording in {m['wall_s']:.1f} s "
          f"(real-time factor {m['real_time_factor']:.1f}, {m['events_per_s_sustained']:,.0f} "
          f"ev/s, {m['mode']}); {m['decisions']} decisions, {m['commands_nonzero']} non-zero "
          f"of {m['commands']} commands; skipped messages {m['skipped_messages']}"
          + "".join(f", {k} {v:,}" for k, v in m["decode_skips"].items() if v))
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
    for r in m["per_recording"]:
        if not r["labelled"]:
            print(f"  {os.path.basename(r['recording'].rstrip('/'))}: {r['duration_s']:.1f} s, "
                  f"{r['episodes']} command episodes ({r['episodes_per_min']:.2f}/min), "
                  f"{100 * r['moving_fraction']:.1f} % of ticks moving")
    if m.get("unlabelled_recordings"):
        def rate(v):                   # None: recordings too short for a rate
            return "-" if v is None else f"{v:.2f}"
        print(f"  unlabelled recordings (no command gesture: every episode is a false command): "
              f"{rate(m['unlabelled_episodes_per_min'])} episodes/min pooled, worst "
              f"{rate(m['unlabelled_episodes_per_min_worst'])}/min")
    if m.get("positives_commanded") is not None:
        print(f"  positives {args.positives}: the controller commanded "
              f"{m['positives_commanded']}/{m['positives']} clips "
              f"(one clip = {100 / max(1, m['positives']):.1f} points); trade-off over "
              f"{len(m['tradeoff'])} controller settings in the report")
    st = m["stage_latency_ms"]
    print("  per stage p50/p99 ms: " + ", ".join(
        f"{k} {v['p50']:.2f}/{v['p99']:.2f}" for k, v in st.items() if v["p50"] is not None))
    if paths:
        print(f"  report: {paths['html']} and {paths['json']}; decisions bag: "
              + ", ".join(paths["bags"]))
    if job.failures:
        print(f"  {len(job.failures)} of {len(args.recordings)} recordings not replayed "
              "(named above)")
    return status


def parser_replay(sub) -> None:
    q = sub.add_parser("replay", help="replay recordings through the live code: accuracy, "
                       "latency, commands -> report")
    q.add_argument("recordings", nargs="+", metavar="BAG",
                   help="ROS 2 bag (folder/.db3/.mcap), ROS 1 .bag, or event file (.aedat4, ...)")
    q.add_argument("--model", default=None,
                   help="shipped model name or checkpoint path (default: the real-camera "
                        "model hybridnet_gesture_real; the simulator's hybridnet_gesture_synth "
                        "when the labels name gestures only it has)")
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
    speed.add_argument("--rate", type=positive_float, default=None, help="x real time (default: as fast "
                       "as possible)")
    speed.add_argument("--max-speed", action="store_true", help="as fast as possible (default)")
    q.add_argument("--via-ros", action="store_true",
                   help="through the real nodes over DDS topics (transport included)")
    q.add_argument("--topic", help="event topic in a bag (default: the only one)")
    q.add_argument("--controller", metavar="YAML", help="controller parameters and actions")
    q.add_argument("--positives", metavar="DIR",
                   help="a folder of labelled gesture clips (labels.csv): replay them too and "
                        "draw the trade-off of false commands/min on the recordings vs clips "
                        "commanded, over the controller's thresholds")
    q.add_argument("--threshold", type=unit_interval, default=0.9,
                   help="confidence of a 'confident' decision (first decision, onset latency)")
    q.add_argument("--strict", action="store_true",
                   help="stop at the first bad message or recording instead of skipping and "
                   "counting (without it, a recording that cannot be read is reported, the "
                   "rest are replayed and the exit status is 1)")
    q.add_argument("--jobs", type=count_or_auto, default=0, help="parallel processes (0: one "
                   "per recording, up to the core count)")
    q.add_argument("--device", default="cpu",
                   help="torch device of the model (cpu, cuda, auto: CUDA when present)")
    q.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    q.set_defaults(fn=cmd_replay)

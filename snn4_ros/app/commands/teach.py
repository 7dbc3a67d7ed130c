"""``snn4 teach``: new gestures from a few demonstrations, written as a new model.

    snn4 teach --out models/my_gestures --gesture wave=a.aedat4,b.aedat4@0-2.6,... \\
               --nothing walk.aedat@0-4 --action wave=turn_left [--rule rstdp|gradient]
    snn4 teach --out models/my_gestures --session session.csv --action wave=turn_left
    snn4 teach --out models/my_gestures --camera --gestures wave,stop_sign -k 5

Recordings: any format ``snn4 inspect`` reads (AEDAT4, AEDAT2, bags, RAW, N-MNIST). A
recording without ``@START-END`` is cut into performances by event activity. The base model is
read, never written; ``--out`` must not exist. Besides ``OUT.safetensors`` + ``OUT.json`` (the
card: demonstrations, examples, accuracy before/after, rule, time), ``OUT.controller.yaml``
maps the taught names to actions for ``snn4 replay --controller`` and the controller node's
``actions_file``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path


def _fail(msg: str) -> int:
    print(f"snn4 teach: {msg}", file=sys.stderr)
    return 2


def _collect_file_takes(args, out, base_classes) -> list:
    from ...events.capture import parse_range, read_session_csv, takes_from_file
    from ...models.teach import check_names

    takes = []
    specs: list[tuple[str, str, float | None, float | None]] = []
    for item in args.gesture or []:
        name, eq, recs = item.partition("=")
        if not eq or not recs:
            raise ValueError(f"--gesture wants NAME=REC[@START-END][,REC...], got {item!r}")
        for r in recs.split(","):
            specs.append((name.strip(), *parse_range(r.strip())))
    check_names(sorted({label for label, *_ in specs}), base_classes,
                args.base_gestures)                                   # before reading
    for r in args.nothing or []:
        specs.append(("none", *parse_range(r)))
    if args.session:
        specs += [(label, path, a, b) for path, label, a, b in read_session_csv(args.session)]
    for label, path, a, b in specs:
        found = takes_from_file(path, label, a, b, topic=args.topic)
        for t in found:
            d = t.describe()
            rng = f"{t.start_s:.2f}-{t.end_s:.2f} s" + ("" if a is not None or b is not None
                                                          else " (found by activity)")
            out.write(f"  {label:<14} {Path(path).name:<36} {rng:<28} {d['events']:>8,} events"
                      f"  {d['sensor'][0]}x{d['sensor'][1]}\n")
        takes += found
    return takes


def cmd_teach(args) -> int:
    from ...events import EventDataError
    from ...models import checkpoint
    from ...models.teach import NONE, TeachConfig, TeachError, check_names, teach
    from ...models.zoo import find_model

    out = sys.stdout if not args.json else sys.stderr
    dest = Path(args.out)
    if dest.suffix in (".safetensors", ".json"):
        dest = dest.with_suffix("")
    try:
        base_path = find_model(args.base)
    except FileNotFoundError as exc:
        return _fail(str(exc))
    st_out, card_out = checkpoint.paths(dest)
    if st_out.exists() or card_out.exists():
        return _fail(f"{dest} already exists; teaching writes a NEW model: choose another --out "
                     "(the existing one stays as it is)")
    try:
        base, base_card = checkpoint.load(base_path)
    except checkpoint.CheckpointError as exc:
        return _fail(str(exc))
    actions = {}
    for item in args.action or []:
        name, eq, act = item.partition("=")
        if not eq:
            return _fail(f"--action wants NAME=ACTION (e.g. wave=turn_left), got {item!r}")
        actions[name.strip()] = act.strip()
    try:
        from ...runtime.gestures import parse_action
        for n, a in actions.items():
            parse_action(n, a)
        out.write(f"base model {base_path.name} ({len(base.cfg.classes)} classes, sensor "
                  f"{base.cfg.sensor_width}x{base.cfg.sensor_height})\n")
        if args.camera is not None:
            from ...events.camera import iter_camera
            from ...events.capture import LiveCapture

            if not args.gestures:
                return _fail("--camera needs --gestures NAME[,NAME...]")
            names = [g.strip() for g in args.gestures.split(",")]
            check_names(names, tuple(base.cfg.classes), args.base_gestures)
            live = LiveCapture(iter_camera(args.camera or None), out=out)
            takes = live.session(names, args.k, args.seconds, args.nothing_seconds)
        else:
            out.write("demonstrations:\n")
            takes = _collect_file_takes(args, out, tuple(base.cfg.classes))
    except (EventDataError, ValueError) as exc:
        return _fail(str(exc))
    unknown = sorted(set(actions) - {t.label for t in takes})
    if unknown:
        return _fail(f"--action names {unknown} that were not demonstrated")
    sizes = {(t.events.width, t.events.height) for t in takes}
    model_size = (base.cfg.sensor_width, base.cfg.sensor_height)
    if len(sizes) == 1 and model_size not in sizes:
        w, h = next(iter(sizes))
        out.write(f"note: the recordings are {w}x{h}; they are mapped onto the model's "
                  f"{model_size[0]}x{model_size[1]} as the live pipeline maps that camera "
                  "(centre crop to the aspect ratio, then scaling)\n")
    cfg = TeachConfig(rule=args.rule, min_demos=args.min_demos, seed=args.seed,
                      loo=not args.no_loo, base_gestures=args.base_gestures)
    from tqdm import tqdm

    n_takes = len(takes)
    bar = tqdm(total=n_takes, desc="features", unit="demo", disable=args.json, file=out)
    try:
        res = teach(base, takes, cfg, progress=lambda d, n: bar.update(1))
    except TeachError as exc:
        bar.close()
        return _fail(str(exc))
    bar.close()
    rep = res.report
    gestures = [c for c in res.classes if c != NONE]
    # a real-data version of a base gesture keeps that gesture's default action
    from ...runtime.control import DEFAULT_ACTIONS

    def default(g):
        a = DEFAULT_ACTIONS.get(g) if args.base_gestures else None
        return {"linear": a.linear, "angular": a.angular, "follow": a.follow} if a else "stop"
    mapping = {g: actions.get(g, default(g)) for g in gestures} | {NONE: "stop"}
    card = {"name": dest.name,
            "teach": {"base": {"model": base_path.name, "preset": base_card.get("preset"),
                               "classes": list(base.cfg.classes)},
                      **rep,
                      "sensor_sizes": sorted(f"{w}x{h}" for w, h in sizes),
                      "actions": mapping},
            # what `snn4 replay --model OUT` uses without --controller (the gating stays
            # the controller's defaults, the setting bench/teach.py measured)
            "controller": {"gestures": mapping},
            "command": "snn4 " + " ".join(getattr(args, "raw_argv", []))}
    # write beside the destination, then move into place: a failure leaves nothing half-made
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        st, cp = checkpoint.save(res.net, Path(tmp) / dest.name, card)
        ctl = Path(tmp) / f"{dest.name}.controller.yaml"
        ctl.write_text("# snn4 teach: taught gesture -> action (named actions: stop, "
                       "turn_left, turn_right,\n# rotate_ccw, rotate_cw, forward, back, follow; "
                       "or {linear: .., angular: ..})\ngestures:\n"
                       + "".join(f"  {g}: {json.dumps(a)}\n" for g, a in mapping.items()))
        os.replace(st, st_out)
        os.replace(cp, card_out)
        ctl_out = dest.parent / ctl.name
        os.replace(ctl, ctl_out)
    secs = rep["seconds"]
    if args.json:
        print(json.dumps({"model": str(dest), "controller": str(ctl_out), **rep}))
        return 0
    taught = ", ".join(f"{g} ({rep['examples'][g]} demos, {rep['windows'][g]} windows)"
                       for g in gestures)
    out.write(f"taught {taught} + none ({rep['examples'][NONE]} recording(s), "
              f"{rep['windows'][NONE]} windows) by {cfg.rule} in "
              f"{secs['features'] + secs['fit']:.1f} s\n")
    after = rep.get("accuracy_after_leave_one_out")
    out.write(f"  accuracy per window: before {rep['accuracy_before']:.2f} (the base model), "
              f"after {rep['accuracy_after_train']:.2f} on the demonstrations"
              + (f", {after:.2f} leave-one-demonstration-out" if after is not None else "")
              + "\n")
    out.write(f"wrote {st_out}, {card_out} and {ctl_out} (base model untouched)\n"
              f"try it: snn4 replay RECORDING --model {dest} --controller {ctl_out}\n")
    return 0


def parser_teach(sub) -> None:
    q = sub.add_parser("teach", help="teach new gestures from a few demonstrations "
                                     "(few-shot, on site) -> a new model")
    q.add_argument("--out", required=True, help="the new model (must not exist)")
    q.add_argument("--base", default="hybridnet_gesture_synth",
                   help="model whose backbone is reused (read only)")
    q.add_argument("--gesture", action="append", metavar="NAME=REC[@A-B][,REC...]",
                   help="demonstrations of a gesture (repeatable); a recording without "
                        "@START-END (seconds) is cut into performances by activity")
    q.add_argument("--nothing", action="append", metavar="REC[@A-B]",
                   help="the scene without any of the gestures (>= 2 s in total)")
    q.add_argument("--session", metavar="CSV",
                   help="path,label,start_s,end_s rows (label 'none': nothing)")
    q.add_argument("--camera", nargs="?", const="", metavar="SERIAL",
                   help="record live from an iniVation camera, with prompts")
    q.add_argument("--gestures", help="with --camera: the gesture names, comma-separated")
    q.add_argument("-k", type=int, default=5, help="with --camera: demonstrations per gesture")
    q.add_argument("--seconds", type=float, default=2.5, help="with --camera: per take")
    q.add_argument("--nothing-seconds", type=float, default=6.0,
                   help="with --camera: seconds of nothing")
    q.add_argument("--topic", help="event topic in bags (default: the only one)")
    q.add_argument("--action", action="append", metavar="NAME=ACTION",
                   help="controller action of a taught gesture (default stop)")
    q.add_argument("--rule", choices=("rstdp", "gradient", "imprint"), default="rstdp",
                   help="readout learning: reward-modulated STDP (default), gradient "
                        "fine-tuning, or the demonstrations' means only")
    q.add_argument("--base-gestures", action="store_true",
                   help="the taught names are gestures of the base model: teach real-data "
                        "versions of them (same names, same default actions); how the "
                        "shipped real-camera model is made (tools/train_models.sh real)")
    q.add_argument("--min-demos", type=int, default=3, help="fewest demonstrations per gesture")
    q.add_argument("--no-loo", action="store_true",
                   help="skip the leave-one-demonstration-out accuracy (faster)")
    q.add_argument("--seed", type=int, default=0, help="seed of the learning rule (R-STDP exploration, gradient init)")
    q.add_argument("--json", action="store_true", help="print the card's teach figures as JSON")
    q.set_defaults(fn=cmd_teach)

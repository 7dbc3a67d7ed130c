"""``snn4 inspect``, ``snn4 record-synthetic`` and ``snn4 sources``: recordings and
where events come from."""

from __future__ import annotations

import json
import sys


def cmd_inspect(args) -> int:
    """Every path summarised; a path that cannot be read is named and the rest go on (exit
    status 1 at the end), or, with ``--strict``, the first one stops the command (2)."""
    from ...events import EventDataError, inspect_recording

    bad = 0
    for path in args.path:
        try:
            info = inspect_recording(path, topic=args.topic, strict=not args.lenient)
        except (EventDataError, OSError) as exc:
            print(f"snn4 inspect: {exc}", file=sys.stderr)
            if args.strict or len(args.path) == 1:
                return 2
            bad += 1
            if args.json:
                print(json.dumps({"path": str(path), "error": str(exc)}))
            continue
        if args.json:
            print(json.dumps(info))
        else:
            _print_info(info)
    if bad:
        print(f"snn4 inspect: {bad} of {len(args.path)} recordings could not be read (named "
              "above)", file=sys.stderr)
    return 1 if bad else 0


def _print_info(info: dict) -> None:
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
    from ...events.codecs import DecodeStats

    skipped = {k: v for k, v in s.items() if k in DecodeStats.SKIP_FIELDS and v}
    if skipped:
        print(f"  skipped    {skipped}")


def cmd_record_synthetic(args) -> int:
    from ...events.recording import record_synthetic

    info = record_synthetic(args.out, gestures=args.gestures, seed=args.seed,
                            gesture_s=args.gesture_s, encoding=args.encoding,
                            storage=args.storage, progress=not args.json,
                            classes=[c.strip() for c in args.classes.split(",") if c.strip()]
                            if args.classes else None)
    print(json.dumps(info) if args.json else
          f"wrote {info['bag']} ({info['messages']} packets, {info['events']:,} events) and "
          f"{info['labels']}")
    return 0


def cmd_sources(args) -> int:
    from ...events.sources import RECORDING_FORMATS, SOURCE_SPECS

    print("Source specs (snn4 up --source, the event_source node's and the launch file's "
          "source):")
    for spec, what in SOURCE_SPECS:
        print(f"  {spec:<29} {what}")
    print("Recording formats (snn4 inspect, snn4 replay, a PATH source):")
    for name, what in RECORDING_FORMATS:
        print(f"  {name:<29} {what}")
    return 0


def parser_inspect(sub) -> None:
    q = sub.add_parser("inspect", help="summarise a recording (bag, AEDAT4/2, RAW, N-MNIST)")
    q.add_argument("path", nargs="+", help="bag folder/.db3/.mcap/.bag, .aedat4, .aedat, "
                   ".raw, .bin/.bs2 (several: each summarised, JSON one object a line)")
    q.add_argument("--topic", help="event topic in a bag (default: the only one)")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.add_argument("--lenient", action="store_true",
                   help="skip and count bad data instead of stopping at the first problem")
    q.add_argument("--strict", action="store_true",
                   help="with several paths: stop at the first that cannot be read (default: "
                   "name it, go on, exit 1 at the end)")
    q.set_defaults(fn=cmd_inspect)


def parser_record_synthetic(sub) -> None:
    q = sub.add_parser("record-synthetic", help="write a labelled bag from the synthetic DVS")
    q.add_argument("--out", required=True, help="bag folder to create (must not exist; "
                   "the labels go to OUT.labels.csv)")
    q.add_argument("--gestures", type=int, default=11, help="number of gestures in the bag "
                   "(all 11 classes in a seeded order, then again; or --classes)")
    q.add_argument("--classes", metavar="A,B,...", help="the gestures to perform, in this "
                   "order, cycling (e.g. right_hand_wave,hand_clap); default all 11 in a "
                   "seeded order")
    q.add_argument("--gesture-s", type=float, default=2.0, help="seconds per gesture")
    q.add_argument("--seed", type=int, default=0, help="seeds the order and the scene")
    q.add_argument("--encoding", default="evt3", choices=["evt3", "libcaer_cmp", "libcaer", "mono"],
                   help="EventPacket encoding (evt3: Prophesee/metavision_driver; libcaer*: "
                        "iniVation/libcaer_driver)")
    q.add_argument("--storage", default="mcap", choices=["mcap", "sqlite3"],
                   help="rosbag2 storage plugin")
    q.add_argument("--json", action="store_true", help="print one JSON object (no progress bar)")
    q.set_defaults(fn=cmd_record_synthetic)


def parser_sources(sub) -> None:
    q = sub.add_parser("sources", help="list the source specs and recording formats")
    q.set_defaults(fn=cmd_sources)

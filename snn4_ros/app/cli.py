"""The ``snn4`` command line.

    snn4 inspect PATH [--topic NAME] [--json]   summary of any supported recording
    snn4 demo [--duration S]                    the pipeline on the synthetic DVS, live stats
    snn4 record-synthetic --out BAG             a labelled bag from the synthetic DVS
    snn4 train --dataset SPEC --preset P --out models/NAME
    snn4 eval --model M --dataset SPEC [--json]
    snn4 convert --dataset SPEC --out models/NAME   QCFS ANN twin -> spiking network, T sweep
    snn4 finetune-real --out models/NAME         real clips + negatives + synthetic, cross-validated
    snn4 simstats                               real DVS128 vs simulator statistics, as a plot
    snn4 up [--source SPEC] [--duration S]      the ROS 2 graph (source in its own process)
    snn4 replay BAG... --model M [--report DIR] recordings through the live code -> report
    snn4 loihi quantize|export                  the Loihi 2 profile: QAT, Lava export
    snn4 export --model M --nir OUT.nir         the spiking backbone as NIR (snnTorch, Norse...)
    snn4 teach --out NEW --gesture NAME=REC,... --nothing REC   few-shot gestures on site
    snn4 sources                                the source specs and formats understood

Each command group is a module of ``app/commands`` (``parser_NAME(sub)`` adds the
subcommand, ``cmd_NAME(args)`` runs it); this module composes them in the order above.
"""

from __future__ import annotations

import sys

from .commands import convert, export, live, loihi, recordings, replay, teach, training
from .errors import ArgumentParser, debug_requested, run_command


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version
    from pathlib import Path

    try:
        v = dist_version("snn4_ros")
    except PackageNotFoundError:
        v = "unknown"
    return f"snn4 {v} ({Path(__file__).resolve().parents[1]})"


def build_parser() -> ArgumentParser:
    """The ``snn4`` parser. Every subparser is an ``errors.ArgumentParser`` (one-line usage
    errors, defaults shown in the help) because argparse builds them with the parent's class."""
    p = ArgumentParser(
        prog="snn4", description="Event-camera perception with spiking neural networks, for ROS 2.",
        epilog="Start with `make demo` (the ROS 2 graph on the synthetic camera, with the\n"
               "dashboard on http://127.0.0.1:8080/), or `snn4 up`; README.md walks through\n"
               "the rest. `snn4 COMMAND --help` explains each command.")
    p.add_argument("--version", action="version", version=version(),
                   help="print the version and where the package lives, then exit")
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of an error (anywhere on the line; or SNN4_DEBUG=1)")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    recordings.parser_inspect(sub)
    live.parser_demo(sub)
    recordings.parser_record_synthetic(sub)
    training.parser_train(sub)
    training.parser_eval(sub)
    convert.parser_convert(sub)
    training.parser_finetune_real(sub)
    training.parser_simstats(sub)
    live.parser_up(sub)
    live.parser_params(sub)
    replay.parser_replay(sub)
    loihi.parser_loihi(sub)
    export.parser_export(sub)
    teach.parser_teach(sub)
    recordings.parser_sources(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse, then run the command under the one error handler (``errors.run_command``): a
    user's mistake is one line on stderr and exit status 2, never a traceback."""
    debug, argv = debug_requested(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    if args.cmd in ("train", "eval", "demo", "up", "replay", "loihi", "finetune-real",
                    "teach", "convert"):
        from ..models.allocator import tune_allocator
        tune_allocator()
    args.raw_argv = argv
    args.debug = debug
    prog = "snn4 " + args.cmd + (f" {args.loihi_cmd}" if getattr(args, "loihi_cmd", None) else "")
    return run_command(args.fn, args, prog, debug=debug)


if __name__ == "__main__":
    sys.exit(main())

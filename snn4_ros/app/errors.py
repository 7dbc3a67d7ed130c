"""One error style for every ``snn4`` command.

A user's mistake -- a wrong name, spec, path or value -- ends in one line on stderr that says
what was wrong, what to do and the valid choices, and a non-zero exit status; never a
traceback (``--debug`` or ``SNN4_DEBUG=1`` shows one). Three pieces make that hold for every
command, including ones added later, without each command catching anything itself:

* ``UserError`` (defined in ``events.errors`` so that every layer can raise it; the
  dataset, model, checkpoint, label, event-data and parameter errors derive from it) and
  the file errors of the OS are the user's mistakes: exit 2, the message alone;
* ``ArgumentParser`` prints argparse's own mistakes (unknown flag, invalid choice, bad
  number) as one line too, naming ``COMMAND --help``;
* ``run_command`` is the one top-level handler: anything else is a bug, reported in one
  line with the exception's type, exit 1, and the hint to rerun with ``--debug``.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from ..events.errors import UserError

__all__ = ["UserError", "ArgumentParser", "HelpFormatter", "run_command", "debug_requested",
           "positive_float", "unit_interval", "count_or_auto"]

EXIT_USER = 2           # argparse's own status for a usage error
EXIT_BUG = 1
EXIT_INTERRUPTED = 130


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def describe(exc: BaseException) -> tuple[str, int] | None:
    """(message, exit status) for a user's mistake, None for anything else."""
    if isinstance(exc, UserError):
        return _one_line(exc), getattr(exc, "exit_code", EXIT_USER)
    if isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError,
                        PermissionError, FileExistsError)):
        what = {FileNotFoundError: "no such file or folder", NotADirectoryError: "not a folder",
                IsADirectoryError: "is a folder, not a file", PermissionError: "permission denied",
                FileExistsError: "already exists"}
        kind = next(v for k, v in what.items() if isinstance(exc, k))
        if exc.filename is not None:
            return f"{exc.filename}: {kind}", EXIT_USER
        return _one_line(exc.args[-1] if exc.args else kind), EXIT_USER
    # errors of other layers that are user mistakes but cannot derive from UserError (their
    # module may not import the events layer): they say so with this attribute
    if getattr(exc, "user_error", False):
        return _one_line(exc), EXIT_USER
    return None


def debug_requested(argv: list[str]) -> tuple[bool, list[str]]:
    """``--debug`` anywhere on the line (before or after the command), or SNN4_DEBUG=1."""
    rest = [a for a in argv if a != "--debug"]
    env = os.environ.get("SNN4_DEBUG", "").lower() in ("1", "true", "yes")
    return env or len(rest) != len(argv), rest


def run_command(fn, args, prog: str, debug: bool = False) -> int:
    """Run one command, the one place where exceptions become exit statuses."""
    try:
        rc = fn(args)
        return 0 if rc is None else int(rc)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except SystemExit:
        raise
    except BaseException as exc:      # noqa: BLE001 -- the one top-level handler
        if debug:
            traceback.print_exc()
        known = describe(exc)
        if known is not None:
            msg, rc = known
            print(f"{prog}: {msg}", file=sys.stderr, flush=True)
            return rc
        if not debug:
            print(f"{prog}: internal error: {type(exc).__name__}: {_one_line(exc)} (a bug, not "
                  f"your mistake: rerun with --debug for the traceback and report it)",
                  file=sys.stderr, flush=True)
        return EXIT_BUG


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the one-line error style: ``snn4 train: argument --preset: invalid
    choice: 'x' (choose from ...); see snn4 train --help``. Subparsers inherit the class,
    and with it the help formatter that shows every default."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(EXIT_USER, f"{self.prog}: {_one_line(message)}; see {self.prog} --help\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default (unless it is off, empty or already said);
    choices show in the metavar as argparse writes them."""

    def _get_help_string(self, action):
        text = action.help or ""
        if text == argparse.SUPPRESS:
            return text
        d = action.default
        if ("%(default)" in text or "default" in text.lower() or d is None or d is False
                or d == [] or d == argparse.SUPPRESS or not action.option_strings
                or isinstance(action, (argparse._StoreTrueAction, argparse._HelpAction,
                                       argparse._VersionAction))):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def _bounded(lo: float, hi: float | None, lo_open: bool, what: str):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"want {what}, got {text!r}") from None
        if (v <= lo if lo_open else v < lo) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"want {what}, got {text}")
        return v
    parse.__name__ = what
    return parse


positive_float = _bounded(0.0, None, True, "a number above 0")


def _whole(lo: int, what: str):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"want {what}, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"want {what}, got {text}")
        return v
    parse.__name__ = what
    return parse


count_or_auto = _whole(0, "a whole number >= 0 (0: automatic)")

unit_interval = _bounded(0.0, 1.0, True, "a probability in (0, 1]")

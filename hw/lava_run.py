"""Entry point for the Lava venv: ``lava_run.py check|bridge ARGS``.

A script rather than ``python -m snn4_lava.X``: Lava's runtime processes stalled at start
when the main module was a package module (seen with Sparse networks), never as a script.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

if __name__ == "__main__":
    what, args = (sys.argv[1] if len(sys.argv) > 1 else ""), sys.argv[2:]
    if what == "check":
        from snn4_lava.check import main
        sys.exit(main(args))
    if what == "bridge":
        from snn4_lava.bridge import main
        main([sys.argv[0], *args])
        sys.exit(0)
    sys.exit("usage: lava_run.py check NPZ MODEL [--connection sparse|conv] | "
             "bridge --ros-args -p model:=MODEL")

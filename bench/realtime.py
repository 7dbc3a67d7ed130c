"""Does ``snn4 up`` keep real time? Bins delivered of bins expected, as a user runs it.

    python bench/realtime.py [--duration 20] [--rounds 2]

Runs ``snn4 up --source synthetic --duration D --json`` (the shipped graph and topology) and,
side by side in alternating rounds, the same with other settings a slow machine may want
(the synthetic source's packets of 1 ms -- libcaer_driver's default -- or 10 ms instead of
2 ms: twice or a fifth of the messages per second; and ``topology: single``). Each run prints ``bins`` of ``bins_expected``
(``real_time_factor``, the must-hold figure: >= 0.99), the shed fraction and the source's
own real-time factor. On a shared machine compare the rows of one run (they alternate, so
they share the load); the load average is recorded. The last line is one JSON object, also
written to bench/results/realtime.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _common import Run  # noqa: E402

# a DDS domain of its own: on a shared machine other ROS graphs (tests, demos) on the default
# domain would publish into this bench's topics and /diagnostics (counters from another
# node, packets not ours); ROS_DOMAIN_ID set by the caller is kept
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))

CONFIGS = [
    ("shipped", []),
    ("1 ms packets", ["--param", "event_source.event_message_time_threshold=0.001"]),
    ("10 ms packets", ["--param", "event_source.event_message_time_threshold=0.01"]),
    ("single process", ["--param", "graph.topology=single"]),
]
GOAL = 0.99


def _up(duration: float, extra: list[str]) -> dict:
    snn4 = Path(sys.executable).parent / "snn4"
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    p = subprocess.run([str(snn4), "up", "--source", "synthetic", "--duration", str(duration),
                        "--json", *extra], capture_output=True, text=True,
                       timeout=duration + 240)
    r1, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - t0
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"error": f"exit {p.returncode}: {p.stderr.strip().splitlines()[-1:]}"}
    out = json.loads(lines[-1])
    # CPU of the whole graph (snn4 up and its source process; start-up included), per
    # second of its run: robust to a loaded machine where the bins figure is not
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    out.update(cpu_s=round(cpu, 2), wall_s=round(wall, 1), cpu_cores=round(cpu / wall, 3),
               loadavg_1m=round(os.getloadavg()[0], 2))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--configs", default=",".join(c for c, _ in CONFIGS))
    args = ap.parse_args()
    want = args.configs.split(",")
    configs = [(c, x) for c, x in CONFIGS if c in want]
    runs: dict[str, list] = {c: [] for c, _ in configs}
    with Run("realtime") as run:
        for k in range(args.rounds):
            for label, extra in configs:
                r = _up(args.duration, extra)
                runs[label].append(r)
                print(f"round {k + 1} {label:<16} " + (r["error"] if "error" in r else
                      f"{r['bins']}/{r['bins_expected']} bins = {r['real_time_factor']}x, "
                      f"shed {r.get('shed_fraction')}, source {r.get('source_real_time_factor')}x"
                      f", cpu {r['cpu_s']} s in {r['wall_s']} s, load {r['loadavg_1m']}"),
                      flush=True)
        rows = {}
        for label, rs in runs.items():
            ok = [r for r in rs if "error" not in r]
            rows[label] = {"runs": rs,
                           "real_time_factor": [r["real_time_factor"] for r in ok],
                           "bins": sum(r["bins"] for r in ok),
                           "bins_expected": sum(r["bins_expected"] for r in ok)}
        ship = rows["shipped"] if "shipped" in rows else next(iter(rows.values()))
        factor = ship["bins"] / ship["bins_expected"] if ship["bins_expected"] else None
        run.emit({"duration_s": args.duration, "rounds": args.rounds, "goal": GOAL,
                  "rows": rows, "real_time_factor": round(factor, 3) if factor else None,
                  "goal_met": bool(factor and factor >= GOAL)})


if __name__ == "__main__":
    main()

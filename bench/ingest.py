"""The inference node's per-packet cost, old and new side by side: CPU per packet and what
was shed, for each way packets reach its worker.

    python bench/ingest.py [--rounds 3] [--seconds 4] [--rates 1] [--mode default]

Runs ``bench/latency.py``'s graph (default: ``snn4 up``'s topology, inference and controller
in one process fed from another) once per variant and round, the variants alternating so
that they share the machine's load, and reports per variant the node process's CPU
milliseconds per packet (user + system, from /proc: robust to a loaded machine, unlike
wall-clock latency), p50/p99 latency, decisions, and the packets shed late. Variants:

* ``old``: one executor callback per packet, the garbage collector as Python leaves it, no
  cap on events per bin (the code before this bench);
* ``gc frozen``: the start-up heap frozen out of the collector (``freeze_gc``);
* ``gc frozen, direct``: and the worker takes every queued packet from DDS itself
  (``ingest: direct``);
* ``+ event cap``: and the default cap of events per bin (``max_events_per_bin``, counted
  subsampling above 5 M events/s);
* ``+ thinning``: and the load governor (``thin_floor_events``): while batches fall behind,
  only part of the fresh packets are decoded, the rest skimmed and counted;
* ``+ prewarm, always``: and the model step rehearsed just before each bin closes
  (``prewarm``), so the step that counts runs from warm caches;
* ``shipped: + prewarm while not busy``: the rehearsal only while the worker was busy less
  than half of the last ~0.5 s (``prewarm_max_busy``): on a CPU too starved to spare a step,
  none.

``--mode starved`` runs them with the nodes on about half a core (results in
bench/results/ingest_starved.json): where thinning shows.

The last line is one JSON object, also written to bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))

from _common import Run  # noqa: E402
from latency import Graph, _label  # noqa: E402

_NEW_OFF = {"thin_floor_events": 0, "prewarm": False}   # what came after the event cap
VARIANTS = {
    "old: executor, gc, no cap": {"ingest": "executor", "freeze_gc": False,
                                  "max_events_per_bin": 0, **_NEW_OFF},
    "gc frozen": {"ingest": "executor", "max_events_per_bin": 0, **_NEW_OFF},
    "gc frozen, direct": {"max_events_per_bin": 0, **_NEW_OFF},
    "+ event cap": dict(_NEW_OFF),
    "+ thinning": {"prewarm": False},
    "+ prewarm, always": {"prewarm_max_busy": 1.0},
    "shipped: + prewarm while not busy": {},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rates", default="1,20", help="M events/s")
    ap.add_argument("--mode", default="default", help="latency.py topology")
    ap.add_argument("--variants", default=";".join(VARIANTS), help="names separated by ;")
    args = ap.parse_args()
    rates = [float(r) * 1e6 for r in args.rates.split(",")]
    variants = {k: VARIANTS[k] for k in args.variants.split(";")}
    runs: dict[str, list] = {f"{_label(r)} {v}": [] for r in rates for v in variants}
    with Run("ingest" if args.mode == "default" else f"ingest_{args.mode}") as run:
        for k in range(args.rounds):
            for name, params in variants.items():
                g = Graph(args.mode, params)
                pos = 0
                try:
                    for rate in rates:
                        r, pos = g.run(rate, args.seconds, pos)
                        r["cpu_ms_per_packet"] = round(1e3 * r["cpu_s"] / r["packets_sent"], 3)
                        r["loadavg_1m"] = round(os.getloadavg()[0], 2)
                        runs[f"{_label(rate)} {name}"].append(r)
                        print(f"round {k + 1} {_label(rate)} {name:<26} cpu "
                              f"{r['cpu_ms_per_packet']} ms/packet ({r['cpu_cores']} cores)  "
                              f"p50 {r['p50_ms']} p99 {r['p99_ms']} ms  decisions "
                              f"{r['decisions']}/{r['expected_decisions']}  drops {r['drops']}"
                              f"  load {r['loadavg_1m']}", flush=True)
                finally:
                    g.close()
        rows = {}
        for key, rs in runs.items():
            rows[key] = {
                "cpu_ms_per_packet_median": float(np.median([r["cpu_ms_per_packet"]
                                                             for r in rs])),
                "p99_ms": [r["p99_ms"] for r in rs], "drops": [r["drops"] for r in rs],
                "decisions": [f"{r['decisions']}/{r['expected_decisions']}" for r in rs],
                "runs": rs}
        run.emit({"mode": args.mode, "seconds": args.seconds, "rounds": args.rounds,
                  "variants": variants, "rows": rows})


if __name__ == "__main__":
    main()

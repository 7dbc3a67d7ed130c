"""The README's reliability table, measured: faults injected, hostile input, what survived.

Runs the fault-injection and hostile-publisher tests over real DDS (tests/test_faults.py,
tests/test_hostile_publisher.py, tests/test_pipeline_attacks.py) with
``SNN4_RELIABILITY_OUT`` set, so each test records what it measured (time from the fault to
the first zero on ``cmd_vel``, recovery time, packets sent and rejected by cause, memory),
then prints the table as Markdown and, last, one JSON object.

    .venv/bin/python bench/reliability.py [--repeat N] [--out FILE]

Each repeat is one full run of those tests (default 3); the table shows, per fault, in how
many runs it was measured, the time-to-zero as min / median / max over them and the
recovery likewise, and how many runs passed every assertion. Results depend on the
machine's load: the figures in the README say which machine they come from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_faults.py", "tests/test_hostile_publisher.py",
         "tests/test_pipeline_attacks.py"]


def run_once(out: Path) -> tuple[int, str, list[str]]:
    """One pytest run; (exit status, its summary line, the failures with their reason)."""
    env = dict(os.environ, SNN4_RELIABILITY_OUT=str(out))
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-rf", "--tb=line", *TESTS], cwd=ROOT, env=env, capture_output=True,
                       text=True)
    lines = p.stdout.strip().splitlines()
    tail = lines[-1] if lines else p.stderr[-300:]
    failed = [ln[len("FAILED "):] for ln in lines if ln.startswith("FAILED ")]
    return p.returncode, tail, failed


def spread(vals: list[float], unit: str = "s", digits: int = 3) -> str:
    """min / median / max of a measurement over the runs (one value: itself)."""
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f} {unit}"
    lo, med, hi = min(vals), statistics.median(vals), max(vals)
    return f"{lo:.{digits}f} / {med:.{digits}f} / {hi:.{digits}f} {unit}"


def summary(runs: list[dict]) -> dict:
    """Per fault: the runs that measured it and the spread of each figure."""
    names = []
    for r in runs:
        names += [n for n in r if n != "hostile publisher" and n not in names]
    out = {}
    for n in names:
        vals = [r[n] for r in runs if n in r]
        ttz = [v["time_to_zero_s"] for v in vals if "time_to_zero_s" in v]
        rec = [v["recovery_s"] for v in vals if "recovery_s" in v]
        out[n] = {"runs": len(vals), "time_to_zero_s": ttz, "recovery_s": rec}
        for key, xs in (("time_to_zero", ttz), ("recovery", rec)):
            if xs:
                out[n][key] = {"n": len(xs), "min": min(xs), "median": statistics.median(xs),
                               "max": max(xs)}
    return out


def table(runs: list[dict], passed: int, failures: list[str]) -> str:
    summ = summary(runs)
    lines = [f"| fault injected | runs measured (of {len(runs)}) | time to zero cmd_vel "
             "(min / median / max) | recovery (min / median / max) / what held |",
             "|---|---|---|---|"]
    for n, sm in summ.items():
        vals = [r[n] for r in runs if n in r]
        held = []
        if sm["recovery_s"]:
            held.append(f"recovered alone in {spread(sm['recovery_s'], digits=2)}")
        if "diagnostics" in vals[0]:
            held.append(f"diagnostics {vals[0]['diagnostics']}")
        if "nonzero_commands_after_3s" in vals[0]:
            nz = [v["nonzero_commands_after_3s"] for v in vals]
            held.append(f"control unaffected ({min(nz)}-{max(nz)} non-zero commands in the "
                        "3 s after)")
        lines.append(f"| {n} | {sm['runs']} | {spread(sm['time_to_zero_s'])} | "
                     f"{'; '.join(held) or '-'} |")
    hostile = [r["hostile publisher"] for r in runs if "hostile publisher" in r]
    if hostile:
        h = hostile[-1]
        causes = ", ".join(f"{k} {v}" for k, v in sorted(h["rejected_by_cause"].items()))
        rss = [x["rss_growth_mb"] for x in hostile]
        lines += ["", f"| hostile input | runs measured (of {len(runs)}) | sent | rejected, by "
                  "cause (last run) | valid stream (last run) |", "|---|---|---|---|---|",
                  f"| {', '.join(sorted(h['sent_by_kind']))} | {len(hostile)} | "
                  f"{h['packets_sent']} packets a run | {causes} | decisions/s before "
                  f"{h['decisions_per_s_before']}, during {h['during']}, after {h['after']}; "
                  f"RSS growth {spread(rss, 'MB', 1)} over the runs |"]
    lines.append(f"\n{passed} of {len(runs)} runs passed every assertion.")
    for f in failures:
        lines.append(f"* failed: {f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    runs, passed, tails, failures = [], 0, [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            out = Path(tmp) / f"run{i}.json"
            rc, tail, failed = run_once(out)
            passed += rc == 0
            tails.append(tail)
            failures += [f"run {i + 1}: {f}" for f in failed]
            print(f"run {i + 1}/{args.repeat}: {tail}", file=sys.stderr)
            runs.append(json.loads(out.read_text()) if out.exists() else {})
    print(table(runs, passed, failures))
    result = {"runs": len(runs), "passed": passed, "summary": summary(runs),
              "results": runs, "pytest": tails,
              "failures": failures,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                         f"load {os.getloadavg()[0]:.1f}"}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

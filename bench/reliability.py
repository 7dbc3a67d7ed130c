"""The README's reliability table, measured: faults injected, hostile input, what survived.

Runs the fault-injection and hostile-publisher tests over real DDS (tests/test_faults.py,
tests/test_hostile_publisher.py, tests/test_pipeline_attacks.py) with
``SNN4_RELIABILITY_OUT`` set, so each test records what it measured (time from the fault to
the first zero on ``cmd_vel``, recovery time, packets sent and rejected by cause, memory),
then prints the table as Markdown and, last, one JSON object; each run's whole pytest
output goes to ``out/reliability_runN.log``.

    .venv/bin/python bench/reliability.py [--repeat N] [--out FILE] [--no-results]

Each repeat is one full run of those tests (default 3); the table shows, per fault, in how
many runs it was measured, the time-to-zero as min / median / max over them and the
recovery likewise, and how many runs passed every assertion. Results depend on the
machine's load: bench/results/reliability.json keeps it per run, and the README's table
(``python bench/readme.py``, section reliability) is generated from that file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import Run  # noqa: E402  (bench/ is the script's folder)
from readme import reliability_summary, section_reliability  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_faults.py", "tests/test_hostile_publisher.py",
         "tests/test_pipeline_attacks.py"]


def run_once(out: Path, log: Path) -> tuple[int, str, list[str]]:
    """One pytest run; (exit status, its summary line, the failures with their reason).
    The whole pytest output goes to ``log`` (the reasons in full)."""
    env = dict(os.environ, SNN4_RELIABILITY_OUT=str(out))
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-rf", "--tb=short", "-vv", *TESTS], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(p.stdout + "\n--- stderr ---\n" + p.stderr)
    lines = p.stdout.strip().splitlines()
    tail = lines[-1] if lines else p.stderr[-300:]
    failed = [ln[len("FAILED "):][:300] for ln in lines if ln.startswith("FAILED ")]
    return p.returncode, tail, failed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--no-results", action="store_true",
                    help="do not write bench/results/reliability.json (the README's source)")
    args = ap.parse_args()
    runs, passed, tails, failures, loads = [], 0, [], [], []
    with Run("reliability", None) as run, tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            out = Path(tmp) / f"run{i}.json"
            load0 = os.getloadavg()[0]
            rc, tail, failed = run_once(out, ROOT / "out" / f"reliability_run{i + 1}.log")
            loads.append([round(load0, 2), round(os.getloadavg()[0], 2)])
            passed += rc == 0
            tails.append(tail)
            failures += [f"run {i + 1}: {f}" for f in failed]
            print(f"run {i + 1}/{args.repeat}: {tail} (load {loads[-1][0]} -> {loads[-1][1]})",
                  file=sys.stderr)
            runs.append(json.loads(out.read_text()) if out.exists() else {})
        result = {"runs": len(runs), "passed": passed, "summary": reliability_summary(runs),
                  "results": runs, "pytest": tails, "failures": failures,
                  "loadavg_1m_per_run": loads,
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
        print(section_reliability({**result, "meta": run.meta()}))
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=1))
        if args.no_results:
            print(json.dumps(result))
        else:
            run.emit(result)


if __name__ == "__main__":
    main()

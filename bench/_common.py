"""What every benchmark shares: where its JSON goes, and the conditions it ran under.

Each bench prints one JSON object as its last line and writes the same object to
``bench/results/NAME.json``; ``python bench/readme.py`` regenerates the README's figures from
those files, so the README cannot disagree with the benchmarks. The object carries a
``meta`` entry (UTC time, commit, CPU count, load average before and after) because on a
shared or slow machine the absolute numbers mean little without the load they ran under:
compare ratios measured side by side in one run.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def bench_threads() -> int:
    """One thread for torch and numba (``SNN4_BENCH_THREADS`` overrides), set before either
    is imported: on a shared, oversubscribed CPU the threads' barriers made every small op
    wait for a descheduled peer (BPTT's T=16 step took 20 s with 2 threads and 0.4 s with 1
    at load average 10). Returns the count; the caller imports torch after this."""
    n = os.environ.get("SNN4_BENCH_THREADS", "1")
    os.environ["OMP_NUM_THREADS"] = n
    os.environ["NUMBA_NUM_THREADS"] = n
    import torch

    torch.set_num_threads(int(n))
    return int(n)


def _commit() -> str:
    """HEAD, with ``-dirty`` when tracked files other than bench results differ from it
    (then the code that ran is not exactly that commit's)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=5).stdout.strip()
        st = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                            capture_output=True, text=True, timeout=5).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return ""
    changed = [ln for ln in st if not ln[3:].startswith(("bench/results/", "README.md"))]
    return head + ("-dirty" if head and changed else "")


class Run:
    """``with Run("model") as run: ...; run.emit(out)``: records the load around the run."""

    def __init__(self, name: str, out_dir: Path | None = None):
        self.name = name
        self.out_dir = Path(out_dir) if out_dir is not None else RESULTS

    def __enter__(self) -> "Run":
        self.t0 = time.time()
        self.load0 = os.getloadavg()
        self.commit = _commit()          # the code that runs (a long bench outlives HEAD)
        return self

    def __exit__(self, *exc) -> None:
        return None

    def meta(self) -> dict:
        return {"utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.t0)),
                "commit": getattr(self, "commit", None) or _commit(), "cpus": os.cpu_count(),
                "loadavg_1m_start": round(self.load0[0], 2),
                "loadavg_1m_end": round(os.getloadavg()[0], 2),
                "loadavg_5m_end": round(os.getloadavg()[1], 2),
                "ros_domain_id": os.environ.get("ROS_DOMAIN_ID"),
                "wall_s": round(time.time() - self.t0, 1)}

    def emit(self, out: dict) -> dict:
        """Write ``bench/results/NAME.json`` and print the object as the last line."""
        out = {**out, "meta": self.meta()}
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"{self.name}.json").write_text(json.dumps(out, indent=1) + "\n")
        print(json.dumps(out), flush=True)
        return out


def emit(name: str, out: dict) -> dict:
    """``Run(name).emit(out)`` for a bench that has its own timing (load: at the end, with
    the 5-minute average covering the run)."""
    with Run(name) as run:
        return run.emit(out)


def proc_sample(pid: int) -> dict:
    """Resident memory (MB), open file descriptors and CPU seconds (user + system) of one
    process, from /proc: what the benches sample of the graph's child processes. A process
    that has gone reads as NaN / -1 rather than raising mid-run."""
    out = {"rss_mb": float("nan"), "fds": -1, "cpu_s": float("nan")}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_mb"] = int(line.split()[1]) / 1024
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out["cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError):
        pass
    return out

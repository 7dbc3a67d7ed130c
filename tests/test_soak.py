"""The 60-second soak (bench/soak.py): the graph at 1 M events/s as separate processes over
real DDS. Memory must not grow after the warm-up, no descriptor may leak, the graph must keep
deciding and the dashboard keep answering. Latency and drops are reported, never asserted
(they measure the machine as much as the code: bench/, not tests)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(240)
def test_one_minute_soak_holds_memory_and_descriptors(tmp_path):
    plot = tmp_path / "soak.png"
    env = dict(os.environ)                     # the session's own ROS domain (conftest)
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", "1",
                        "--sample-s", "2", "--warmup-s", "20", "--plot", str(plot),
                        "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=220)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    print(p.stdout.strip().splitlines()[-2])                  # the human-readable summary
    assert out["minutes"] >= 1.0 and out["samples"] >= 29
    # the bound issue 17 sets: under 5 % RSS growth after the warm-up, in every node process
    assert out["rss_growth_pct"] < 5.0, out["rss_growth_pct_by_node"]
    assert set(out["rss_growth_pct_by_node"]) == {"snn4_inference", "gesture_controller",
                                                  "dashboard"}
    for node, (start, end) in out["fds_after_warmup_and_end"].items():
        assert 0 < start and end <= start + 2, (node, start, end)     # no descriptor leak
    # alive all along: deciding to the end (a bin is 40 ms; how many of them is a matter of
    # the machine's load, reported not asserted), commanding, the dashboard answering
    assert out["decisions"] > 0        # (decisions_last_quarter: reported; 0 on a starved box)
    assert out["latency_samples"] > 0 and out["p99_ms"] is not None
    assert out["processing_errors"] == 0
    http = out["dashboard_requests"]
    assert http["ok"] >= 30 and http["failed"] <= 0.1 * http["ok"], http
    assert plot.stat().st_size > 20_000

"""The README's benchmark figures are generated from bench/results (never typed by hand)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_agrees_with_the_benchmark_results():
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "readme.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_every_marked_section_has_its_results_file():
    import re
    text = (ROOT / "README.md").read_text()
    names = re.findall(r"<!-- bench:(\w+) -->", text)
    assert names, "the README has no generated benchmark sections"
    for n in names:
        assert (ROOT / "bench" / "results" / f"{n}.json").exists(), n

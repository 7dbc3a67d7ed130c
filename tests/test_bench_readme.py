"""The README's benchmark figures are generated from bench/results (never typed by hand)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_agrees_with_the_benchmark_results():
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "readme.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_every_marked_section_is_generated_from_its_results_file():
    import re
    text = (ROOT / "README.md").read_text()
    sections = re.findall(r"<!-- bench:(\w+) -->\n(.*?)\n<!-- /bench:\1 -->", text, re.S)
    assert sections, "the README has no generated benchmark sections"
    sys.path.insert(0, str(ROOT / "bench"))
    from readme import RUN_COMMANDS        # sections another command writes (ingest --mode)

    for name, body in sections:
        has = (ROOT / "bench" / "results" / f"{name}.json").exists()
        assert has == ("no results yet" not in body), name
        if has:
            script = RUN_COMMANDS.get(name, f"python bench/{name}.py").split(" --")[0]
            assert script in body, name

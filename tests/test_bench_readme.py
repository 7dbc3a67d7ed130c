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
    from readme import run_command         # sections another command writes (ingest --mode)

    for name, body in sections:
        has = (ROOT / "bench" / "results" / f"{name}.json").exists()
        assert has == ("no results yet" not in body), name
        if has:
            script = run_command(name).split(" --")[0]
            assert script in body, name


def test_budgeted_sections_render_their_own_file_and_command():
    """bench/ablation.py writes one file per budget (ablation_e2, nmnist_cv_e12, ...): each
    renders with its section function and names its own command and budget."""
    sys.path.insert(0, str(ROOT / "bench"))
    import readme

    assert readme.section_for("nmnist_cv_e12") is readme.section_nmnist_cv
    assert readme.section_for("ablation_e2") is readme.section_ablation
    assert readme.section_for("ablation_x") is None
    assert readme.run_command("nmnist_cv_e12") == "python bench/nmnist_cv.py --epochs 12"
    assert readme.run_command("ablation_e2") == "python bench/ablation.py --epochs 2"
    body = readme.render("<!-- bench:nmnist_cv_e999 -->\nold\n<!-- /bench:nmnist_cv_e999 -->")
    assert "no results yet: run `python bench/nmnist_cv.py --epochs 999`" in body

"""The README's layout section names every folder of the tree (the package's layers, the
interface packages, the top-level folders), so a newcomer's map stays true."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def layout_block() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"^## Layout\n+```\n(.*?)```", text, re.S | re.M)
    assert m, "README.md has no '## Layout' section with a code block"
    return m.group(1)


def test_every_package_folder_is_in_the_layout():
    block = layout_block()
    for d in sorted((ROOT / "snn4_ros").iterdir()):
        if (d / "__init__.py").exists():
            assert f"  {d.name}/" in block, f"snn4_ros/{d.name}/ missing from the README layout"


def test_every_top_level_folder_and_interface_package_is_in_the_layout():
    block = layout_block()
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    tops = {f.split("/")[0] for f in files if "/" in f}
    for top in sorted(tops):
        assert re.search(rf"(^|\s){re.escape(top)}/", block), f"{top}/ missing from the layout"
    for pkg in sorted(p.parent.name for p in (ROOT / "interfaces").glob("*/package.xml")):
        assert pkg in block, f"interfaces/{pkg} missing from the README layout"

"""The import contract (tools/import_contract.py): layers import one way, rclpy only in
``ros``, no private names across modules, no cycles. The checker is also fed small bad
package trees, so a rule that stopped firing would fail here."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("import_contract",
                                               ROOT / "tools" / "import_contract.py")
contract = importlib.util.module_from_spec(_spec)
sys.modules["import_contract"] = contract
_spec.loader.exec_module(contract)


def test_snn4_ros_keeps_the_contract():
    errors = contract.check(contract.load_package(ROOT / "snn4_ros"))
    assert errors == [], "\n".join(errors)


def test_every_layer_folder_exists():
    for layer in contract.LAYERS:
        assert (ROOT / "snn4_ros" / layer / "__init__.py").exists(), layer


def tree(**modules):
    """``tree(**{"snn4_ros.models.a": "source"})``; packages get an ``__init__``."""
    out = {"snn4_ros": ("", True)}
    for name, src in modules.items():
        parts = name.split(".")
        for i in range(2, len(parts)):
            out.setdefault(".".join(parts[:i]), ("", True))
        out[name] = (src, False)
    return out


GOOD = {"snn4_ros.events.io": "import numpy\n",
        "snn4_ros.models.net": "from ..events.io import numpy\nfrom snn4_ros.events import io\n",
        "snn4_ros.ros.node": "import rclpy\nfrom vision_msgs.msg import Classification\n"
                             "from ..models.net import numpy\n",
        "snn4_ros.app.cli": "def main():\n    from ..ros.node import rclpy\n"}


def test_a_good_tree_passes():
    assert contract.check(tree(**GOOD)) == []


@pytest.mark.parametrize("module,source,expect", [
    # an upward import, at module level and lazily inside a function
    ("snn4_ros.models.data", "from ..eval.replay import x\n", "later layer eval"),
    ("snn4_ros.models.data", "def f():\n    from snn4_ros.eval import replay\n",
     "(lazy): models imports snn4_ros.eval.replay from the later layer eval"),
    ("snn4_ros.events.io2", "import snn4_ros.runtime.pipeline\n", "later layer runtime"),
    ("snn4_ros.ros.node2", "from ..app.cli import main\n", "later layer app"),
    # ROS below the ROS layer (also lazily, also message packages)
    ("snn4_ros.runtime.pipe", "def f():\n    import rclpy.node\n", "ROS packages only in"),
    ("snn4_ros.eval.m", "from geometry_msgs.msg import Twist\n", "ROS packages only in"),
    ("snn4_ros.app.up", "from rclpy.node import Node\n", "ROS packages only in"),
    # private names across modules
    ("snn4_ros.eval.labels", "from ..events.io import _open\n", "private name(s) _open"),
    ("snn4_ros.models.k", "from ..events import _kernels\n", "private name(s) _kernels"),
    ("snn4_ros.models.k2", "import snn4_ros.events._kernels\n", "private name(s) _kernels"),
    # a module outside the layer folders
    ("snn4_ros.perception", "", "not in a layer folder"),
])
def test_each_rule_fails_on_a_bad_import(module, source, expect):
    sources = tree(**GOOD, **{module: source})
    sources.setdefault("snn4_ros.eval.replay", ("", False))
    errors = contract.check(sources)
    assert any(expect in e and e.startswith(module) for e in errors), errors


def test_a_cycle_inside_one_layer_fails():
    errors = contract.check(tree(**GOOD, **{
        "snn4_ros.events.camera": "def f():\n    from .sources import Chunk\n",
        "snn4_ros.events.sources": "from .camera import iter_camera\n"}))
    assert errors == ["import cycle: snn4_ros.events.camera <-> snn4_ros.events.sources"]


def test_a_cycle_through_a_package_init_fails():
    errors = contract.check({**tree(**GOOD), "snn4_ros.ros": ("from .graph import run\n", True),
                             "snn4_ros.ros.graph": ("from ..ros import run\n", False)})
    assert any(e.startswith("import cycle:") and "snn4_ros.ros.graph" in e for e in errors), \
        errors


def test_dunder_names_are_not_private():
    assert contract.check(tree(**GOOD, **{
        "snn4_ros.app.version": "from snn4_ros import __version__\n"})) == []


def test_modules_the_lava_bridge_loads_import_only_stdlib_and_rclpy():
    errors = contract.check(tree(**GOOD, **{
        "snn4_ros.ros.worker": "import threading\nfrom ..events import Packet\n",
        "snn4_ros.ros.topics": "from rclpy.qos import QoSProfile\nimport numpy\n"}))
    assert any(e.startswith("snn4_ros.ros.worker:2") and "standard library and rclpy only" in e
               for e in errors), errors
    assert any(e.startswith("snn4_ros.ros.topics:2") for e in errors), errors
    assert not any(e.startswith(("snn4_ros.ros.worker:1", "snn4_ros.ros.topics:1"))
                   for e in errors), errors

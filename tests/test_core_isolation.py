"""Core modules never import rclpy: the CLI, nodes and replay share them on any machine."""

import subprocess
import sys


def test_core_does_not_import_rclpy():
    code = ("import sys, snn4_ros.events, snn4_ros.models, snn4_ros.models.train, "
            "snn4_ros.models.evaluate, snn4_ros.app.cli, snn4_ros.app.demo, "
            "snn4_ros.runtime.pipeline, snn4_ros.runtime.control, snn4_ros.dashboard; "
            "print('rclpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

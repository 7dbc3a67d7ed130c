"""snn4_ros: one ament_python package (colcon build) that also installs with pip."""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

package_name = "snn4_ros"
HERE = Path(__file__).resolve().parent


def lava_python_record() -> list[str]:
    """hw/.lava-venv is a venv and is not copied into an install tree: record where it is
    (share/snn4_ros/hw/lava_python.txt) so that an installed package -- colcon build without
    --symlink-install -- still finds it. SNN4_LAVA_PYTHON or lava_python:= override it."""
    py = HERE / "hw" / ".lava-venv" / "bin" / "python"
    if not py.exists():
        return []
    rec = HERE / "build" / "lava_python.txt"
    rec.parent.mkdir(exist_ok=True)
    rec.write_text(f"{py}\n")
    return [str(rec.relative_to(HERE))]


setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=["snn4_ros", "snn4_ros.*"]),
    package_data={"snn4_ros.dashboard": ["static/*.html"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
        ("share/" + package_name + "/models", glob("models/*.safetensors") + glob("models/*.json")),
        ("share/" + package_name + "/hw", glob("hw/*.py") + glob("hw/*.txt")
         + lava_python_record()),
        ("share/" + package_name + "/hw/snn4_lava", glob("hw/snn4_lava/*.py")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="snn4_ros developers",
    maintainer_email="dev@snn4.invalid",
    description="Event-camera (DVS) perception with spiking neural networks for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "snn4 = snn4_ros.app.cli:main",
            "event_source = snn4_ros.ros.event_source_node:main",
            "snn4_inference = snn4_ros.ros.inference_node:main",
            "gesture_controller = snn4_ros.ros.controller_node:main",
            "dashboard = snn4_ros.ros.dashboard_node:main",
            "cmd_vel_guard = snn4_ros.ros.cmd_vel_guard_node:main",
        ],
    },
)

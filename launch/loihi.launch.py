"""ros2 launch snn4_ros loihi.launch.py [source:=synthetic] [lava_python:=PY] [...]

perception.launch.py with graph:=loihi (config/loihi.yaml): the inference node with
backend lava and the Lava bridge node, which runs the spiking backbone in Lava -- on a Loihi 2
board when Intel's lava-loihi is installed and board_host is set, else in Lava's bit-exact CPU
simulation (it says which in its log and on /diagnostics). The bridge needs the Lava venv
(make lava-env; from an install tree: lava_python:=, SNN4_LAVA_PYTHON, or the venv recorded
when the package was built). Every perception.launch.py argument applies; like it, a plain
launch waits for a camera driver.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource


def generate_launch_description():
    perception = Path(get_package_share_directory("snn4_ros")) / "launch" / \
        "perception.launch.py"
    return LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(perception)),
        launch_arguments={"graph": "loihi"}.items())])

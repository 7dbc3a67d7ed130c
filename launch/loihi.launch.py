"""ros2 launch snn4_ros loihi.launch.py [source:=SPEC] [use_source:=false]

The perception graph of config/loihi.yaml: the inference node with backend:=lava and the
Lava bridge node, which runs the spiking backbone in Lava -- on a Loihi 2 board when Intel's
lava-loihi is installed and board_host is set, else in Lava's bit-exact CPU simulation (it
says which in its log and on /diagnostics). The bridge needs the Lava venv (make lava-env).
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration


def generate_launch_description():
    perception = Path(get_package_share_directory("snn4_ros")) / "launch" / \
        "perception.launch.py"
    return LaunchDescription([
        DeclareLaunchArgument("source", default_value="",
                              description="event_source spec (default: the YAML's)"),
        DeclareLaunchArgument("use_source", default_value="true",
                              description="false when a camera driver publishes the events"),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(str(perception)),
            launch_arguments={"graph": "loihi", "source": LaunchConfiguration("source"),
                              "use_source": LaunchConfiguration("use_source")}.items()),
    ])

"""ros2 launch snn4_ros perception_from_bag.launch.py bag:=PATH [realtime:=true] [...]

perception.launch.py with the built-in event source reading a recorded bag (or any
recording) instead of a camera: source:=BAG. Recorded input moves nothing unless
simulated_motion:=true is given too. Every perception.launch.py argument applies.
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
        DeclareLaunchArgument("bag", description="bag folder / .mcap / .db3 / recording"),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(str(perception)),
            launch_arguments={"source": LaunchConfiguration("bag")}.items()),
    ])

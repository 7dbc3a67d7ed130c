"""ros2 launch snn4_ros replay.launch.py bag:=PATH [realtime:=true]

The perception graph of config/perception.yaml with the event source reading a recorded bag
(or any recording) instead of a camera -- the same nodes and parameters as on the robot.
"""

from pathlib import Path

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def launch_setup(context, *args, **kwargs):
    share = Path(get_package_share_directory("snn4_ros"))
    nodes = yaml.safe_load((share / "config" / "perception.yaml").read_text())["nodes"]
    bag = LaunchConfiguration("bag").perform(context)
    realtime = LaunchConfiguration("realtime").perform(context).lower() == "true"
    actions = []
    for name, spec in nodes.items():
        params = dict(spec.get("parameters") or {})
        if name == "event_source":
            params.update(source=bag, realtime=realtime)
        actions.append(Node(package="snn4_ros", executable=spec["executable"], name=name,
                            parameters=[params], output="screen",
                            remappings=list((spec.get("remappings") or {}).items())))
    return actions


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="bag folder / .mcap / .db3 / recording"),
        DeclareLaunchArgument("realtime", default_value="true",
                              description="replay at the recording's speed"),
        OpaqueFunction(function=launch_setup),
    ])

"""ros2 launch snn4_ros perception.launch.py [source:=SPEC] [graph:=perception] [dashboard:=true]

Starts the nodes of config/<graph>.yaml -- the same description `snn4 up` runs in one
process -- with their parameters and remappings. Put it next to the camera driver
(source:=... is ignored when the driver publishes /event_camera/events itself: set
use_source:=false).
"""

from pathlib import Path

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def launch_setup(context, *args, **kwargs):
    graph = LaunchConfiguration("graph").perform(context)
    share = Path(get_package_share_directory("snn4_ros"))
    nodes = yaml.safe_load((share / "config" / f"{graph}.yaml").read_text())["nodes"]
    use_source = LaunchConfiguration("use_source").perform(context).lower() == "true"
    source = LaunchConfiguration("source").perform(context)
    realtime = LaunchConfiguration("realtime").perform(context).lower() == "true"
    dashboard = LaunchConfiguration("dashboard").perform(context).lower() == "true"
    actions = []
    for name, spec in nodes.items():
        if name == "event_source" and not use_source:
            continue
        if spec.get("optional") and not (name == "dashboard" and dashboard):
            continue
        params = dict(spec.get("parameters") or {})
        if spec.get("lava"):             # the Lava bridge: Python 3.10, its own venv
            from launch.actions import ExecuteProcess
            from snn4_ros.models.zoo import find_model
            from snn4_ros.ros.lava_env import bridge_command

            cmd, env = bridge_command(find_model(params["model"]),
                                      params.get("board_host", ""))
            actions.append(ExecuteProcess(cmd=cmd, additional_env={"PYTHONPATH": ""},
                                          output="screen", name=name))
            continue
        if name == "event_source":
            params["realtime"] = realtime
            if source:
                params["source"] = source
        actions.append(Node(package="snn4_ros", executable=spec["executable"], name=name,
                            parameters=[params], output="screen",
                            remappings=list((spec.get("remappings") or {}).items())))
    return actions


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("graph", default_value="perception",
                              description="config/<graph>.yaml to start"),
        DeclareLaunchArgument("source", default_value="",
                              description="event_source spec (default: the YAML's)"),
        DeclareLaunchArgument("use_source", default_value="true",
                              description="false when a camera driver publishes the events"),
        DeclareLaunchArgument("realtime", default_value="true",
                              description="pace recordings to the wall clock"),
        DeclareLaunchArgument("dashboard", default_value="false",
                              description="start the HTTP dashboard node (config: dashboard)"),
        OpaqueFunction(function=launch_setup),
    ])

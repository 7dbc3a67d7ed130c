#!/bin/bash
# ROS 2 and the snn4_ros install tree in the environment, then the command.
set -e
. /opt/ros/jazzy/setup.bash
. /ws/install/setup.bash
exec "$@"

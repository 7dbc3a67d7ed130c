#!/usr/bin/env bash
# The real ROS 2 command-line tools in a venv, for machines without a ROS install:
# launch (+ launch_xml, launch_yaml), launch_ros, ros2launch, ros2cli (ros2pkg, ros2run,
# ros2node, ros2topic, ros2param, ros2service, ros2lifecycle), rosidl_runtime_py from the Jazzy
# sources in ../shared/ros2-src, composition_interfaces (built with tools/build_interfaces.sh
# like the project's own interface packages), and colcon from PyPI. Afterwards VENV/bin/ros2
# and VENV/bin/colcon exist.
#   tools/ros2_tools.sh VENV
# Idempotent (a stamp holding the sources' and this script's checksum). Skipped, with a
# message, where a ROS install already provides `ros2 launch` (a robot: apt) or where
# ../shared/ros2-src is absent.
set -euo pipefail
VENV=$(cd "${1:?usage: ros2_tools.sh VENV}" && pwd)
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY="$VENV/bin/python"
SRC=${SNN4_ROS2_SRC:-$HERE/../shared/ros2-src}
STAMP="$VENV/.snn4-ros2-tools.stamp"
filter() { grep -v 'is ignored: it is neither a file nor a directory' || true; }

if [ ! -f "$STAMP" ] && command -v ros2 >/dev/null 2>&1 && [ "$(command -v ros2)" != "$VENV/bin/ros2" ] \
   && ros2 launch --help >/dev/null 2>&1; then
  echo "ros2 tools: provided by the system ($(command -v ros2)), not installing into $VENV"
  exit 0
fi
if [ ! -d "$SRC" ]; then
  echo "ros2 tools: $SRC not found; skipping launch/ros2cli/colcon (on a robot they come" \
       "from apt: ros-jazzy-ros2launch ros-jazzy-ros2cli-common-extensions" \
       "python3-colcon-common-extensions); the launch tests will skip"
  exit 0
fi
sum=$( (cat "$SRC"/*.tar.gz "$0" "$HERE/tools/build_interfaces.sh" "$HERE/interfaces/pip_wheels_fix.cmake") \
       | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$sum" ] && [ -x "$VENV/bin/ros2" ] \
   && [ -x "$VENV/bin/colcon" ] && "$PY" -c "import launch_ros, composition_interfaces.srv" 2>/dev/null; then
  exit 0
fi
t0=$(date +%s)
echo "ros2 tools: installing launch, launch_ros, ros2cli, rosidl_runtime_py (Jazzy sources in $SRC) and colcon into $VENV"
work="$VENV/.build/ros2-src"
rm -rf "$work"; mkdir -p "$work"
for t in "$SRC"/*.tar.gz; do tar xzf "$t" -C "$work"; done
# their PyPI dependencies, then colcon (the extensions colcon-common-extensions bundles, less
# the ones that pull notification daemons)
"$VENV/bin/pip" install -q -c "$HERE/constraints.txt" osrf-pycommon psutil argcomplete lark \
  pyyaml packaging colcon-core colcon-ros colcon-python-setup-py colcon-package-information \
  colcon-package-selection colcon-recursive-crawl colcon-parallel-executor colcon-output \
  colcon-library-path colcon-bash colcon-cmake colcon-defaults colcon-metadata 2>&1 | filter
# not launch_testing: its pytest plugin does not load with this pytest (hookimpl `path`);
# the launch tests drive `ros2 launch` as a user does. An earlier install is removed.
"$VENV/bin/pip" uninstall -y -q launch_testing launch_testing_ros >/dev/null 2>&1 || true
# order matters only for readability: pip --no-deps installs each as it is
pkgs=(launch-*/launch launch-*/launch_xml launch-*/launch_yaml
      launch_ros-*/launch_ros launch_ros-*/ros2launch
      rosidl_runtime_py-* ros2cli-*/ros2cli ros2cli-*/ros2pkg ros2cli-*/ros2run
      ros2cli-*/ros2node ros2cli-*/ros2topic ros2cli-*/ros2param ros2cli-*/ros2service
      ros2cli-*/ros2lifecycle ros2cli-*/ros2interface)
dirs=()
for p in "${pkgs[@]}"; do
  d=$(cd "$work" && ls -d $p 2>/dev/null | head -1) || true
  [ -n "$d" ] && [ -f "$work/$d/setup.py" ] || { echo "ros2 tools: $p missing in $SRC" >&2; exit 1; }
  dirs+=("$work/$d")
done
# setuptools' develop-style data_files (share/ament_index, share/<pkg>) land in the venv
# prefix, where ament_index_python finds them (AMENT_PREFIX_PATH includes the venv)
log="$work/pip.log"
"$VENV/bin/pip" install -q --no-deps --no-build-isolation "${dirs[@]}" >"$log" 2>&1 \
  || { echo "ros2 tools: pip install failed; the log follows" >&2; tail -40 "$log" >&2; exit 1; }
# composition_interfaces (launch_ros imports it): an interface package like ours
ci="$work/$(cd "$work" && ls -d rcl_interfaces-*/composition_interfaces)"
sed -i -e '/ADD_LINTER_TESTS/d' \
  -e "s|^ament_package()|include(\"$HERE/interfaces/pip_wheels_fix.cmake\")\nament_package()|" \
  "$ci/CMakeLists.txt"
SNN4_INTERFACES="composition_interfaces=$ci" "$HERE/tools/build_interfaces.sh" "$VENV"
"$PY" -c "import launch, launch_ros, ros2cli, rosidl_runtime_py, composition_interfaces.srv"
"$VENV/bin/ros2" --help >/dev/null
"$VENV/bin/colcon" --help >/dev/null
echo "$sum" > "$STAMP"
echo "ros2 tools: ros2 and colcon in $VENV/bin ($(( $(date +%s) - t0 )) s)"

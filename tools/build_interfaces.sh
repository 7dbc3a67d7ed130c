#!/usr/bin/env bash
# Builds event_camera_msgs and vision_msgs from their published .msg definitions, and our own
# snn4_msgs (the Lava bridge's wire format), into a venv prefix, unless the interpreter can
# already import them (a ROS 2 install from apt provides the first two as
# ros-jazzy-event-camera-msgs / ros-jazzy-vision-msgs). Idempotent: a stamp holding
# the sources' checksum skips the build when nothing changed.
#   tools/build_interfaces.sh VENV
#   SNN4_INTERFACES="name=dir ..." tools/build_interfaces.sh VENV   (other interface packages,
#     e.g. composition_interfaces for launch_ros: tools/ros2_tools.sh)
set -euo pipefail
VENV=$(cd "${1:?usage: build_interfaces.sh VENV}" && pwd)
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY="$VENV/bin/python"
specs=${SNN4_INTERFACES:-"event_camera_msgs=$HERE/interfaces/event_camera_msgs vision_msgs=$HERE/interfaces/vision_msgs snn4_msgs=$HERE/interfaces/snn4_msgs"}
for spec in $specs; do
  pkg=${spec%%=*}; src=${spec#*=}
  kind=msg; [ -d "$src/msg" ] || kind=srv
  # (the no_shadow.cmake guard changes no output: left out, so adding it rebuilt nothing)
  sum=$(cat "$src/$kind"/*."$kind" <(grep -v no_shadow.cmake "$src"/CMakeLists.txt) \
        "$HERE/interfaces/pip_wheels_fix.cmake" | sha256sum | cut -c1-16)
  stamp="$VENV/.snn4-$pkg.stamp"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && "$PY" -c "import $pkg.$kind" 2>/dev/null; then
    continue
  fi
  if [ ! -f "$stamp" ] && "$PY" -c "import $pkg.$kind" 2>/dev/null; then
    echo "$pkg: provided by the system, not building"; continue
  fi
  echo "building $pkg into $VENV"
  build="$VENV/.build/$pkg"; rm -rf "$build"; mkdir -p "$build"
  t0=$(date +%s)
  ( export VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
    cmake -S "$src" -B "$build" -G Ninja -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PY" -DPython3_FIND_VIRTUALENV=ONLY >"$build/log" 2>&1 \
    && cmake --build "$build" >>"$build/log" 2>&1 && cmake --install "$build" >>"$build/log" 2>&1 ) \
    || { echo "building $pkg failed; the log follows" >&2; tail -40 "$build/log" >&2; exit 1; }
  "$PY" -c "import $pkg.$kind" || { echo "$pkg built but does not import" >&2; exit 1; }
  echo "$sum" > "$stamp"
  echo "$pkg built in $(( $(date +%s) - t0 )) s"
done

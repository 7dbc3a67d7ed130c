#!/usr/bin/env bash
# The Lava venv: Python 3.10 + lava-nc 0.10.0 + numpy<2 + the ROS 2 wheels for the bridge
# node (hw/requirements-lava.txt) + snn4_msgs (the bridge's wire format, built for this
# Python by tools/build_interfaces.sh). Idempotent; never touches the main venv.
#   tools/lava_env.sh [VENV]      (default hw/.lava-venv)
set -eo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-hw/.lava-venv}
REQ=hw/requirements-lava.txt
STAMP=$VENV/.snn4-lava.stamp
# one setup at a time per venv (worktrees may share one through a symlink)
if [ -d "$VENV" ] && command -v flock >/dev/null; then
  exec 9>"$VENV/.snn4-lava.lock"
  flock 9
fi
build_msgs() { SNN4_INTERFACES="snn4_msgs=$PWD/interfaces/snn4_msgs" tools/build_interfaces.sh "$VENV"; }
if [ -f "$STAMP" ] && [ "$STAMP" -nt "$REQ" ] && "$VENV/bin/python" -c "import lava" 2>/dev/null; then
  build_msgs
  exit 0
fi
PY310=${PY310:-}
for cand in "$PY310" python3.10 "$HOME/.pyenv/versions/3.10.13/bin/python3.10" \
            $(ls -d "$HOME"/.pyenv/versions/3.10.*/bin/python3.10 2>/dev/null); do
  if [ -n "$cand" ] && command -v "$cand" >/dev/null 2>&1 && \
     "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
    PY310=$cand; break
  fi
done
if [ -z "$PY310" ]; then
  echo "tools/lava_env.sh: lava-nc 0.10.0 needs Python 3.10 (pyenv install 3.10.13, or set PY310)" >&2
  exit 1
fi
echo "creating the Lava venv $VENV with $PY310 (lava-nc 0.10.0, numpy<2, ROS 2 wheels)"
[ -x "$VENV/bin/python" ] || "$PY310" -m venv "$VENV"
filter() { grep -v 'is ignored: it is neither a file nor a directory' || true; }
"$VENV/bin/pip" install -q -U pip 2>&1 | filter
"$VENV/bin/pip" install -q -r "$REQ" 2>&1 | filter
"$VENV/bin/python" -c "import lava, numpy, rclpy; assert numpy.__version__ < '2'"
build_msgs
touch "$STAMP"

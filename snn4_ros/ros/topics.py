"""Topic names and their QoS, defined once for every node of the graph and for the Lava
bridge.

Event publishers are reliable and subscribers best effort: a best-effort subscription
matches both reliable (libcaer_driver) and best-effort (metavision_driver) publishers
(REP-2003). Results are reliable with a short history. The Lava bridge's request/answer pair
is reliable with room for a window of bins in flight (an answer lost would stall the
inference node until its timeout).

Standard library and rclpy only: the Lava bridge (Python 3.10, its own venv, no torch) loads
this file too (``hw/snn4_lava/bridge.py``).
"""

from __future__ import annotations

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

# Relative names: one pipeline lives in one namespace (ros2 launch namespace:=, snn4 up
# --namespace; default snn4), so two pipelines side by side never see each other's topics.
# ``events`` is remapped to the camera driver's topic (/<camera_name>/events) and
# ``cmd_vel`` to where the robot wants it (a twist_mux input: config/twist_mux.yaml).
EVENTS_TOPIC = "events"
GESTURE_TOPIC = "gesture"
TRACKS_TOPIC = "tracks"
CMD_VEL_TOPIC = "cmd_vel"
DEBUG_FRAME_TOPIC = "debug/event_frame"
DEBUG_ATTENTION_TOPIC = "debug/attention"
# published only while someone subscribes (``snn4 replay --via-ros``, ``ros2 topic echo``):
PROGRESS_TOPIC = "~/progress"          # inference: one DiagnosticArray per packet handled
COMMAND_RECORD_TOPIC = "~/command"     # controller: one DiagnosticArray per command sent
LAVA_FRAMES_TOPIC = "lava/frames"       # snn4_msgs/SpikeFrame: inference -> bridge
LAVA_SPIKES_TOPIC = "lava/spikes"       # snn4_msgs/SpikeFrame: bridge -> inference


def _qos(depth: int, reliable: bool) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE if reliable
                      else ReliabilityPolicy.BEST_EFFORT)


EVENTS_PUB_QOS = _qos(1000, reliable=True)
EVENTS_SUB_QOS = _qos(1000, reliable=False)
RESULT_QOS = _qos(10, reliable=True)
DEBUG_IMAGE_QOS = _qos(2, reliable=False)
LAVA_QOS = _qos(100, reliable=True)
# a record for every packet / command: deep enough that a busy reader loses none
RECORD_QOS = _qos(1000, reliable=True)

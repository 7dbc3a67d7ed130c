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

EVENTS_TOPIC = "/event_camera/events"
GESTURE_TOPIC = "/snn4/gesture"
TRACKS_TOPIC = "/snn4/tracks"
DEBUG_FRAME_TOPIC = "/snn4/debug/event_frame"
LAVA_FRAMES_TOPIC = "/snn4/lava/frames"       # snn4_msgs/SpikeFrame: inference -> bridge
LAVA_SPIKES_TOPIC = "/snn4/lava/spikes"       # snn4_msgs/SpikeFrame: bridge -> inference


def _qos(depth: int, reliable: bool) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE if reliable
                      else ReliabilityPolicy.BEST_EFFORT)


EVENTS_PUB_QOS = _qos(1000, reliable=True)
EVENTS_SUB_QOS = _qos(1000, reliable=False)
RESULT_QOS = _qos(10, reliable=True)
DEBUG_IMAGE_QOS = _qos(2, reliable=False)
LAVA_QOS = _qos(100, reliable=True)

"""Shared pieces of the ROS nodes: message conversion, typed parameters, diagnostics.
(Topic names and QoS are defined in ``topics``; imported here too for the nodes.)"""

from __future__ import annotations

import array

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

from ..events import Packet
from .topics import (CMD_VEL_TOPIC, EVENTS_PUB_QOS, EVENTS_SUB_QOS,  # noqa: F401
                     EVENTS_TOPIC, GESTURE_TOPIC, RESULT_QOS, TRACKS_TOPIC)


def packet_to_msg(pkt: Packet):
    """A core Packet as an ``event_camera_msgs/EventPacket`` (fast byte copy, not per element)."""
    from event_camera_msgs.msg import EventPacket

    msg = EventPacket()
    msg.header.stamp.sec = pkt.stamp_ns // 1_000_000_000
    msg.header.stamp.nanosec = pkt.stamp_ns % 1_000_000_000
    msg.header.frame_id = pkt.frame_id
    msg.height, msg.width = int(pkt.height), int(pkt.width)
    msg.seq, msg.time_base = int(pkt.seq), int(pkt.time_base)
    msg.encoding = pkt.encoding
    msg.is_bigendian = bool(pkt.is_bigendian)
    msg.events = array.array("B", pkt.payload().tobytes())
    return msg


def declare(node: Node, name: str, default, description: str, lo=None, hi=None):
    """A typed parameter with a description and, for numbers, a range."""
    desc = ParameterDescriptor(description=description)
    if isinstance(default, bool):
        pass
    elif isinstance(default, int) and lo is not None:
        desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
    elif isinstance(default, float) and lo is not None:
        desc.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi),
                                                        step=0.0)]
    return node.declare_parameter(name, default, desc).value


def diagnostic(node: Node, name: str, level: int, message: str, values: dict):
    """One ``diagnostic_msgs/DiagnosticStatus`` in diagnostic_updater's conventions."""
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    st = DiagnosticStatus()
    st.level = bytes([level])
    st.name = f"{node.get_name()}: {name}"
    st.message = message
    st.hardware_id = node.get_fully_qualified_name()
    st.values = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
    return st


def publish_diagnostics(node: Node, pub, statuses: list) -> None:
    from diagnostic_msgs.msg import DiagnosticArray

    arr = DiagnosticArray()
    arr.header.stamp = node.get_clock().now().to_msg()
    arr.status = statuses
    pub.publish(arr)


def twist_type(stamped: bool):
    """geometry_msgs/TwistStamped (Jazzy's diff_drive_controller) or Twist."""
    from geometry_msgs.msg import Twist, TwistStamped

    return TwistStamped if stamped else Twist


def twist_of(msg):
    """The Twist of a TwistStamped or a Twist: consumers accept both."""
    return getattr(msg, "twist", msg)


def record_msg(name: str, stamp, values: dict):
    """A ``diagnostic_msgs/DiagnosticArray`` holding one record: what the nodes publish on
    their ``~/progress`` and ``~/command`` topics for a reader that must see everything
    (``snn4 replay --via-ros``). Standard types only: any ROS 2 tool can echo it. Floats
    go as ``repr`` (they read back exactly)."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    arr = DiagnosticArray()
    arr.header.stamp = stamp
    arr.status = [DiagnosticStatus(level=DiagnosticStatus.OK, name=name, values=[
        KeyValue(key=k, value=v if isinstance(v, str) else repr(v))
        for k, v in values.items()])]
    return arr


def record_values(msg) -> dict[str, str]:
    """The key/values of a ``record_msg``."""
    return {kv.key: kv.value for st in msg.status for kv in st.values}

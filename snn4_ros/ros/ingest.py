"""A subscription read by its own thread, not by the executor: the inference node's packets.

rclpy's Python executors pay for every callback in Python: rebuilding the wait set, walking
every node's entities, a task object per ready callback. Measured under load, about half of
the inference node's CPU went there (py-spy), at 500 packets/s -- what a camera driver sends
with the ``event_message_time_threshold`` of 1-2 ms the ROS drivers use. ``DirectReader``
is an rcl subscription that belongs to the node (``ros2 node info`` and the publisher's
matched count see it; names are remapped and namespaced as usual) but is never handed to
the executor: the thread that processes the packets waits on a wait set of its own and
takes *everything* queued at each wake-up, so one wake-up serves a whole backlog and the
executor thread never touches the event stream (it keeps the timers, services and the other
topics). While the reader's thread is busy, DDS holds the packets in the subscription's
history (its QoS depth); what a best-effort history overwrites shows as sequence gaps.

This is what ``rclpy.wait_for_message`` does, from the same implementation module.
"""

from __future__ import annotations

from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.qos import QoSProfile


class DirectReader:
    """``wait(timeout_s)`` then ``take()`` until None, from one thread; ``destroy()`` once
    that thread has stopped (before the node is destroyed)."""

    def __init__(self, node, msg_type, topic: str, qos: QoSProfile):
        from rclpy.type_support import check_is_valid_msg_type

        check_is_valid_msg_type(msg_type)        # imports the message's type support
        with node.handle:
            self.handle = _rclpy.Subscription(node.handle, msg_type, topic,
                                              qos.get_c_qos_profile())
        self.msg_type = msg_type
        self.topic_name = self.handle.get_topic_name()
        self._ws = _rclpy.WaitSet(1, 0, 0, 0, 0, 0, node.context.handle)

    def wait(self, timeout_s: float) -> bool:
        """Block (without the interpreter lock) until a message is queued or ``timeout_s``
        passes; True when one is."""
        with self.handle:
            self._ws.clear_entities()
            self._ws.add_subscription(self.handle)
            self._ws.wait(int(timeout_s * 1e9))
            return bool(self._ws.get_ready_entities("subscription"))

    def take(self):
        """The oldest queued message, or None."""
        with self.handle:
            got = self.handle.take_message(self.msg_type, False)
        return None if got is None else got[0]

    def destroy(self) -> None:
        self.handle.destroy_when_not_in_use()

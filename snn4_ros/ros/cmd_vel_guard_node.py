"""``cmd_vel_guard`` node: relays ``cmd_vel_in`` to ``cmd_vel_out`` and sends zero when its
input falls silent -- the watchdog for a controller that dies without a word (``kill -9``).

A thin adapter over ``snn4_ros.runtime.cmd_guard.CmdVelGuard`` (the module docstring says
why). Put it between the gesture controller and the base (or twist_mux):

    ros2 run snn4_ros cmd_vel_guard --ros-args -r cmd_vel_in:=/snn4/cmd_vel \\
        -r cmd_vel_out:=/cmd_vel_gesture

The watchdog runs on a steady-clock timer: with ``use_sim_time`` a frozen ``/clock`` must not
freeze it. ``/diagnostics`` says whether it relays, zeroes or waits, with its counts.
"""

from __future__ import annotations

from rclpy.node import Node

from ..runtime.cmd_guard import CmdVelGuard, GuardConfig
from .common import declare, diagnostic, publish_diagnostics, twist_type


class CmdVelGuardNode(Node):
    def __init__(self, **kwargs):
        super().__init__("cmd_vel_guard", **kwargs)
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.clock import Clock, ClockType

        self.guard = CmdVelGuard(GuardConfig(
            timeout_s=declare(self, "timeout_s", 0.25, "input silent this long (real time) -> "
                              "zero commands", 0.01, 60.0),
            zero_for_s=declare(self, "zero_for_s", 1.0, "send zeros this long after the input "
                               "fell silent, then stay quiet like the input", 0.0, 3600.0)))
        rate = declare(self, "rate_hz", 50.0, "watchdog rate (zeros go out at this rate)",
                       1.0, 1000.0)
        self.stamped = declare(self, "stamped", True, "geometry_msgs/TwistStamped in and out "
                               "(false: Twist), as the controller's stamped")
        self.frame_id = declare(self, "frame_id", "base_link", "frame of the zero "
                                "TwistStamped until an input names one")
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        msg_type = twist_type(self.stamped)
        self.pub = self.create_publisher(msg_type, "cmd_vel_out", 10)
        self.create_subscription(msg_type, "cmd_vel_in", self._on_cmd, 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0 / rate, self._tick, clock=self._steady)
        self.create_timer(1.0, self._diagnostics)

    def _now(self) -> float:
        return self._steady.now().nanoseconds * 1e-9

    def _on_cmd(self, msg) -> None:
        tw = msg.twist if self.stamped else msg
        if self.stamped and msg.header.frame_id:
            self.frame_id = msg.header.frame_id
        self.guard.on_input(self._now(), tw.linear.x or tw.linear.y or tw.linear.z,
                            tw.angular.x or tw.angular.y or tw.angular.z)
        self.pub.publish(msg)

    def _tick(self) -> None:
        if self.guard.tick(self._now()):
            self._send_zero()

    def _send_zero(self) -> None:
        from geometry_msgs.msg import Twist, TwistStamped

        if self.stamped:
            out = TwistStamped()
            out.header.frame_id = self.frame_id
            out.header.stamp = self.get_clock().now().to_msg()
            self.pub.publish(out)
        else:
            self.pub.publish(Twist())

    def _diagnostics(self) -> None:
        from diagnostic_msgs.msg import DiagnosticStatus as S

        g = self.guard
        st = g.state(self._now())
        level, msg = {"waiting": (S.OK, "waiting for commands"),
                      "relaying": (S.OK, "relaying"),
                      "zeroing": (S.WARN, "input silent: sending zero"),
                      "silent": (S.WARN, "input silent: zero sent")}[st]
        publish_diagnostics(self, self.diag_pub, [diagnostic(
            self, "guard", level[0], msg,
            {"state": st, "relayed": g.relayed, "zeros_sent": g.zeros_sent,
             "silences": g.silences, "timeout_s": g.cfg.timeout_s})])

    def stop_robot(self) -> None:
        """A zero on the way out (SIGINT/SIGTERM), as the controller does."""
        from rclpy.duration import Duration

        self._send_zero()
        self.pub.wait_for_all_acked(Duration(seconds=0.5))


def main(args=None) -> None:
    from .lifecycle import spin_node

    spin_node(CmdVelGuardNode, args)

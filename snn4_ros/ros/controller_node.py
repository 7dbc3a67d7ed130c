"""``gesture_controller`` node: gestures and tracks -> ``geometry_msgs/TwistStamped`` (or
``Twist``: ``stamped:=false``) on ``cmd_vel``.

A thin adapter over ``snn4_ros.runtime.control.GestureController``: decisions and tracks
feed it, a timer publishes its command at ``rate_hz`` (zero whenever perception is stale,
confidence is low, the e-stop is engaged or anything is invalid), the ``~/estop`` service
(``std_srvs/SetBool``) latches zero until released, and a zero goes out on shutdown. Meant
to sit behind twist_mux as a low-priority input (config/twist_mux.yaml).

``motion_enabled`` (read-only: set at start, never over the graph) is false when the events
come from a simulated or recorded source and nobody asked for motion a second time: the
node then computes its commands (diagnostics show what it would do) and publishes zeros.

Two clocks, on purpose. The controller's own logic (debounce, hold, deadman) runs on the
node clock, so with ``use_sim_time`` it follows a bag's ``/clock`` like the rest of the
graph. A decision's age is the node clock minus the stamp of the packets it came from:
decisions older than ``max_decision_age_s`` (a drained backlog) never move the robot. And a
steady-clock watchdog zeroes the command when no fresh decision has arrived for
``steady_deadman_s`` of real time -- a frozen ``/clock`` must not freeze a moving robot.
"""

from __future__ import annotations

import dataclasses

import yaml
from rclpy.node import Node

from ..runtime.control import ControllerConfig, GestureController
from .common import (CMD_VEL_TOPIC, GESTURE_TOPIC, RESULT_QOS, TRACKS_TOPIC, declare,
                     diagnostic, publish_diagnostics, record_msg, twist_type)
from .topics import COMMAND_RECORD_TOPIC, RECORD_QOS


class ControllerNode(Node):
    """ROS adapter of ``GestureController``: subscriptions feed it, a timer publishes its
    command; all decisions about motion (gates, deadman, limits, e-stop) are the core's."""

    def __init__(self, **kwargs):
        super().__init__("gesture_controller", **kwargs)
        from diagnostic_msgs.msg import DiagnosticArray
        from rcl_interfaces.msg import ParameterDescriptor
        from std_srvs.srv import SetBool
        from vision_msgs.msg import Classification, Detection2DArray

        cfg_file = declare(self, "actions_file", "", "YAML with controller parameters and a "
                           "gesture -> action mapping (empty: defaults)")
        cfg = {}
        if cfg_file:
            with open(cfg_file) as f:
                cfg = yaml.safe_load(f) or {}
        for name, default in (("min_confidence", 0.8), ("deadman_s", 0.5), ("hold_s", 0.5),
                              ("max_linear", 0.3), ("max_angular", 1.0),
                              ("max_decision_age_s", 0.5)):
            cfg.setdefault(name, declare(self, name, float(cfg.get(name, default)),
                                         f"controller {name}", 0.0, 100.0))
        cfg.setdefault("debounce", declare(self, "debounce", int(cfg.get("debounce", 3)),
                                           "consecutive agreeing decisions", 1, 100))
        cfg.setdefault("agree_window", declare(self, "agree_window",
                                               int(cfg.get("agree_window", 0)),
                                               "0: debounce in a row; N: debounce of the last N "
                                               "decisions agree", 0, 200))
        self.ctrl = GestureController(ControllerConfig.from_dict(cfg))
        from rclpy.clock import Clock, ClockType
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.steady_deadman_s = declare(self, "steady_deadman_s", 0.5,
                                        "zero when no fresh decision arrived for this long in "
                                        "real (steady) time, whatever the node clock does",
                                        0.01, 1e6)
        self._last_fresh_steady: float | None = None
        self.watchdog_zeros = 0
        self._stopped = False
        rate = declare(self, "rate_hz", 50.0, "command rate", 1.0, 1000.0)
        self.stamped = declare(self, "stamped", True, "publish geometry_msgs/TwistStamped "
                               "(Jazzy's diff_drive_controller; stamped with the events' time) "
                               "instead of Twist")
        self.frame_id = declare(self, "frame_id", "base_link", "TwistStamped header frame")
        self.motion_enabled = self.declare_parameter(
            "motion_enabled", True, ParameterDescriptor(
                description="false: publish only zeros (simulated or recorded input without "
                            "a second request for motion); read-only", read_only=True)).value
        self.pub = self.create_publisher(twist_type(self.stamped), declare(
            self, "cmd_vel_topic", CMD_VEL_TOPIC, "output topic"), 10)
        if not self.motion_enabled:
            self.get_logger().warn("motion disabled: the input is simulated or recorded; "
                                   "zero commands only (launch with simulated_motion:=true, "
                                   "or snn4 up --simulated-motion, to move)")
        self.last_stamp = None
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # every command sent, with what cmd_vel cannot carry: the controller's state and the
        # action behind it, on the node clock (only while someone listens: snn4 replay
        # --via-ros scores command episodes by action)
        self.record_pub = self.create_publisher(DiagnosticArray, COMMAND_RECORD_TOPIC,
                                                RECORD_QOS)
        self.commands_sent = 0
        self.create_subscription(Classification, GESTURE_TOPIC, self._on_cls, RESULT_QOS)
        self.create_subscription(Detection2DArray, TRACKS_TOPIC, self._on_det, RESULT_QOS)
        self.create_service(SetBool, "~/estop", self._on_estop)
        self.nonzero = 0
        self.last = None
        self.create_timer(1.0 / rate, self._tick)
        self.create_timer(1.0 / rate, self._tick, clock=self._steady)    # the watchdog's
        self.create_timer(1.0, self._diagnostics)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _age(self, stamp) -> float | None:
        """Node clock minus a header stamp (None for an unstamped message)."""
        ns = stamp.sec * 1_000_000_000 + stamp.nanosec
        return None if ns == 0 else (self.get_clock().now().nanoseconds - ns) * 1e-9

    def _on_cls(self, msg) -> None:
        if not msg.results:
            self.ctrl.on_decision(self._now(), "", float("nan"))
            return
        top = max(msg.results, key=lambda r: r.score)
        refused = self.ctrl.stale_decisions
        self.ctrl.on_decision(self._now(), top.class_id, float(top.score),
                              [float(r.score) for r in msg.results], age_s=self._age(
                                  msg.header.stamp))
        if self.ctrl.stale_decisions == refused:
            self._last_fresh_steady = self._steady.now().nanoseconds * 1e-9
        self.last_stamp = msg.header.stamp
        self._tick()                     # act on a new decision at once, not at the next tick

    def _on_det(self, msg) -> None:
        age = self._age(msg.header.stamp)
        for d in msg.detections:
            if d.results:
                self.ctrl.on_track(self._now(), d.bbox.center.position.x,
                                   d.bbox.center.position.y, float(d.results[0].hypothesis.score),
                                   age_s=age)

    def _on_estop(self, req, resp):
        self.ctrl.set_estop(req.data)
        self._tick()
        resp.success = True
        resp.message = "e-stop engaged: zero until released" if req.data else "e-stop released"
        self.get_logger().warn(resp.message)
        return resp

    def watchdog_expired(self) -> bool:
        """No fresh decision for ``steady_deadman_s`` of real time (or none yet)."""
        last = self._last_fresh_steady
        return last is None or \
            self._steady.now().nanoseconds * 1e-9 - last > max(self.steady_deadman_s,
                                                               self.ctrl.cfg.deadman_s)

    def _tick(self) -> None:
        if self._stopped:                # the shutdown zero is the last word on cmd_vel
            return
        cmd = self.ctrl.command(self._now())
        if not self.motion_enabled and not cmd.is_zero:
            cmd = dataclasses.replace(cmd, linear=0.0, angular=0.0, state="motion_disabled")
        if not cmd.is_zero and self.watchdog_expired():
            from ..runtime.control import Command
            self.watchdog_zeros += 1
            cmd = Command(0.0, 0.0, "stale", None)
        self._send(cmd.linear, cmd.angular)
        self.commands_sent += 1
        self.nonzero += not cmd.is_zero
        self.last = cmd
        if self.record_pub.get_subscription_count():
            self.record_pub.publish(record_msg(
                "gesture_controller: command", self.get_clock().now().to_msg(),
                {"seq": self.commands_sent, "linear": float(cmd.linear),
                 "angular": float(cmd.angular), "state": cmd.state,
                 "action": "" if cmd.action is None else cmd.action}))

    def _diagnostics(self) -> None:
        from diagnostic_msgs.msg import DiagnosticStatus as S

        c = self.last
        state = c.state if c else "starting"
        level = {"fault": S.ERROR, "stale": S.STALE, "estop": S.WARN,
                 "motion_disabled": S.WARN}.get(state, S.OK)
        publish_diagnostics(self, self.diag_pub, [diagnostic(
            self, "controller", level[0], self.ctrl.fault or (
                f"stale: {self.ctrl.last_refusal}" if state == "stale" and self.ctrl.last_refusal
                else state),
            {"state": state, "action": c.action if c else None, "estop": self.ctrl.estop,
             "linear": c.linear if c else 0.0, "angular": c.angular if c else 0.0,
             "motion_enabled": self.motion_enabled,
             "nonzero_commands": self.nonzero,
             "stale_decisions": self.ctrl.stale_decisions,
             "last_refusal": self.ctrl.last_refusal or "",
             "clock_resets": self.ctrl.clock_resets, "watchdog_zeros": self.watchdog_zeros})])

    def _send(self, linear: float, angular: float) -> None:
        from geometry_msgs.msg import Twist, TwistStamped

        tw = Twist()
        tw.linear.x, tw.angular.z = float(linear), float(angular)
        if self.stamped:
            out = TwistStamped(twist=tw)
            out.header.frame_id = self.frame_id
            out.header.stamp = self.last_stamp or self.get_clock().now().to_msg()
            self.pub.publish(out)
        else:
            self.pub.publish(tw)

    def stop_robot(self) -> None:
        """Publish a zero command (shutdown), and wait until the subscribers have it: a
        writer destroyed right after publishing can take its last sample with it."""
        from rclpy.duration import Duration

        self._stopped = True
        self._send(0.0, 0.0)
        # up to 2 s (ros2 launch escalates after 5): a clean-clone CI run under a hostile
        # burst saw the 0.5 s wait end before the zero was acknowledged, and the watcher's
        # last command stayed non-zero
        self.pub.wait_for_all_acked(Duration(seconds=2.0))


def main(args=None) -> None:
    from .lifecycle import spin_node

    spin_node(ControllerNode, args)

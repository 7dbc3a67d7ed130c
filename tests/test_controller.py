"""The safety behaviour of the gesture controller (pure core, no ROS)."""

import math

import pytest

from snn4_ros.runtime.control import ControllerConfig, GestureController


def at(c, t):
    """The command at t, with the controller ticking at 50 Hz before (as the node does)."""
    c.command(t - 0.04)
    c.command(t - 0.02)
    return c.command(t)


def feed(c, cls, conf, t0, n, dt=0.04):
    for i in range(n):
        c.on_decision(t0 + i * dt, cls, conf)
    return t0 + (n - 1) * dt


def test_debounced_confident_gesture_moves_within_limits():
    c = GestureController(ControllerConfig(debounce=3, max_angular_accel=100))
    t = feed(c, "left_hand_wave", 0.95, 0.0, 2)
    assert c.command(t).is_zero                          # 2 of 3 agreeing decisions
    t = feed(c, "left_hand_wave", 0.95, t + 0.04, 1)
    cmd = at(c, t)
    assert cmd.state == "acting" and cmd.angular == pytest.approx(0.5) and cmd.linear == 0


def test_low_confidence_never_moves():
    c = GestureController()
    t = feed(c, "arm_roll", 0.79, 0.0, 20)
    assert c.command(t).is_zero and c.command(t).state == "idle"


def test_disagreeing_decisions_reset_the_debounce():
    c = GestureController(ControllerConfig(debounce=3))
    for i, cls in enumerate(["arm_roll", "arm_roll", "air_drums", "arm_roll", "arm_roll"]):
        c.on_decision(i * 0.04, cls, 0.99)
    assert c.command(0.17).is_zero


def test_stale_perception_gives_zero_within_the_deadman_timeout():
    c = GestureController(ControllerConfig(deadman_s=0.3, hold_s=5.0, max_linear_accel=100))
    t = feed(c, "arm_roll", 0.99, 0.0, 3)
    assert not at(c, t + 0.1).is_zero
    cmd = c.command(t + 0.31)
    assert cmd.is_zero and cmd.state == "stale"


def test_hold_time_then_idle():
    c = GestureController(ControllerConfig(hold_s=0.2, deadman_s=10, max_linear_accel=100))
    t = feed(c, "arm_roll", 0.99, 0.0, 3)
    c.on_decision(t + 0.1, "arm_roll", 0.1)              # fresh but unconfident
    assert not at(c, t + 0.15).is_zero
    assert c.command(t + 0.25).is_zero


def test_estop_latches_until_released():
    c = GestureController(ControllerConfig(max_linear_accel=100))
    t = feed(c, "arm_roll", 0.99, 0.0, 3)
    c.set_estop(True)
    t = feed(c, "arm_roll", 0.99, t, 10)
    cmd = c.command(t)
    assert cmd.is_zero and cmd.state == "estop"
    c.set_estop(False)
    t = feed(c, "arm_roll", 0.99, t + 0.04, 3)
    assert not at(c, t).is_zero


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.1, 1.5])
def test_invalid_scores_give_zero_and_a_fault(bad):
    c = GestureController(ControllerConfig(max_linear_accel=100))
    t = feed(c, "arm_roll", 0.99, 0.0, 3)
    c.on_decision(t + 0.04, "arm_roll", bad)
    cmd = c.command(t + 0.04)
    assert cmd.is_zero and cmd.state == "fault" and c.fault
    c.on_decision(t + 0.08, "arm_roll", 0.99, scores=[0.5, math.nan])
    assert c.command(t + 0.08).state == "fault"


def test_acceleration_and_velocity_limits():
    c = GestureController(ControllerConfig(max_linear=0.15, max_linear_accel=0.5))
    t = feed(c, "arm_roll", 0.99, 0.0, 3)                # wants 0.2 m/s
    c.command(t)
    v = [c.command(t + k * 0.1).linear for k in range(1, 6)]
    assert v[0] == pytest.approx(0.05) and max(v) == pytest.approx(0.15)


def test_follow_mode_turns_towards_the_target():
    c = GestureController(ControllerConfig(max_angular_accel=100, max_linear_accel=100,
                                           hold_s=5))
    t = feed(c, "air_guitar", 0.99, 0.0, 3)
    c.on_track(t, 100.0, 64.0, 0.9)                      # right of centre
    cmd = at(c, t)
    assert cmd.state == "following" and cmd.angular < 0 and cmd.linear > 0
    c.on_track(t + 0.04, 100.0, 64.0, 0.1)               # lost confidence: stop
    assert c.command(t + 0.04).is_zero


def test_config_validation():
    with pytest.raises(ValueError):
        ControllerConfig(debounce=0)
    with pytest.raises(ValueError):
        ControllerConfig(min_confidence=2)
    with pytest.raises(ValueError, match="unknown controller parameters"):
        ControllerConfig.from_dict({"speed": 3})
    cfg = ControllerConfig.from_dict({"debounce": 2, "actions": {"hand_clap": {"linear": 0.1}}})
    assert cfg.actions["hand_clap"].linear == 0.1


def test_old_or_future_decisions_never_move_the_robot():
    """Attack regression: after a backlog drained, decisions from packets 6 s old commanded
    motion. Decisions are judged by the age of their packets."""
    c = GestureController(ControllerConfig(max_decision_age_s=0.5, max_angular_accel=100))
    for i in range(10):
        c.on_decision(i * 0.04, "right_arm_cw", 0.99, age_s=6.0)
    assert at(c, 0.4).is_zero and at(c, 0.4).state == "stale"
    assert c.stale_decisions == 10 and "6.00 s old" in c.last_refusal
    for i in range(10):
        c.on_decision(0.5 + i * 0.04, "right_arm_cw", 0.99, age_s=-3.0)   # from the future
    assert at(c, 0.9).is_zero and "future" in c.last_refusal
    t = 1.0
    for i in range(3):
        c.on_decision(t + i * 0.04, "right_arm_cw", 0.99, age_s=0.05)   # fresh: acts
    assert not at(c, t + 0.1).is_zero


def test_clock_going_backwards_forgets_everything():
    """A sim-time reset or a looping bag: hold times and the deadman on the old timeline
    must not keep a command alive."""
    c = GestureController(ControllerConfig(hold_s=30.0, max_angular_accel=100))
    t = feed(c, "left_hand_wave", 0.99, 100.0, 3)
    assert not at(c, t + 0.05).is_zero
    cmd = c.command(5.0)                    # the clock restarts near zero
    assert cmd.is_zero and cmd.state == "stale" and c.clock_resets == 1
    assert c.command(5.02).is_zero          # nothing from the old timeline comes back
    t = feed(c, "left_hand_wave", 0.99, 5.1, 3)
    assert not at(c, t + 0.05).is_zero      # fresh decisions on the new timeline act

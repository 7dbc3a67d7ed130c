"""The cmd_vel guard's state machine (snn4_ros/runtime/cmd_guard.py): relays, zeroes a
silent input within its timeout, then goes quiet; its node over DDS is in test_faults.py
(kill -9 of the controller)."""

import pytest

from snn4_ros.runtime.cmd_guard import CmdVelGuard, GuardConfig


def ticks(g, t0, t1, dt=0.02):
    """(time, zero sent) at each tick from t0 to t1."""
    out, t = [], t0
    while t <= t1 + 1e-9:
        out.append((round(t, 3), g.tick(t)))
        t += dt
    return out


def test_nothing_before_the_first_command_and_nothing_while_it_flows():
    g = CmdVelGuard(GuardConfig(timeout_s=0.25, zero_for_s=1.0))
    assert g.state(0.0) == "waiting" and not any(z for _, z in ticks(g, 0.0, 5.0))
    for i in range(100):                     # a 50 Hz controller: relayed, never zeroed
        g.on_input(5.0 + i * 0.02, 0.0, 0.5)
        assert not g.tick(5.0 + i * 0.02 + 0.01)
    assert g.relayed == 100 and g.zeros_sent == 0 and g.state(7.0) == "relaying"


def test_a_silent_input_gets_zeros_after_the_timeout_for_zero_for_s_then_quiet():
    g = CmdVelGuard(GuardConfig(timeout_s=0.25, zero_for_s=1.0))
    g.on_input(10.0, 0.0, 0.5)                          # the last word of a dying controller
    sent = [t for t, z in ticks(g, 10.0, 13.0) if z]
    assert sent and 10.25 < sent[0] <= 10.27             # the first tick past the timeout
    assert sent[-1] <= 11.25 and len(sent) >= 45         # zeros for 1 s at 50 Hz ...
    assert g.state(13.0) == "silent" and g.silences == 1  # ... then quiet
    g.on_input(20.0, 0.0, 0.0)                           # the controller is back: relayed
    assert g.state(20.1) == "relaying" and not g.tick(20.1)
    assert ticks(g, 20.1, 21.0)[-1][1] is True and g.silences == 2


def test_one_zero_per_silence_even_with_zero_for_0_or_a_late_tick():
    g = CmdVelGuard(GuardConfig(timeout_s=0.25, zero_for_s=0.0))
    g.on_input(0.0, 0.3, 0.0)
    assert g.tick(5.0) and not g.tick(5.02) and g.zeros_sent == 1


@pytest.mark.parametrize("bad", [dict(timeout_s=0.0), dict(zero_for_s=-1.0),
                                 dict(timeout_s=float("nan"))])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        GuardConfig(**bad)

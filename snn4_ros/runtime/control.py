"""Gestures and tracks -> velocity commands, safety first (no rclpy here).

The controller is a pure state machine driven by time stamps, so the ROS node, replay and
tests run the same code. Every path that is not a confident, debounced, fresh decision ends
in a zero command:

* confidence gate: decisions below ``min_confidence`` never move the robot;
* debounce: an action starts only after ``debounce`` consecutive agreeing decisions, and is
  held for ``hold_s`` after the last one; with ``agree_window`` = N > 0 the rule becomes
  "``debounce`` of the last N decisions name this class confidently" (agreement over several
  bins that one flickering bin cannot break, and one stray bin cannot satisfy);
* abstention: classes mapped to no action (``none``: no command gesture, ``other``) never
  move the robot, and end an action;
* deadman: no valid perception for ``deadman_s`` -> zero (stale);
* decision age: a decision whose packets are older than ``max_decision_age_s`` (a drained
  backlog, a stalled worker) or stamped in the future never counts as perception;
* clock: time that goes backwards (sim time reset, a bag loop) forgets everything -> zero;
* limits: velocity and acceleration limits on both axes;
* e-stop: latched zero until explicitly released;
* faults: NaN / infinite / out-of-range scores or positions -> zero and a fault flag that
  the node reports as an ERROR diagnostic.

Follow mode turns the tracked target into a visual-servoing command (turn towards it, drive
while it is visible and confident).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..events.errors import UserError, did_you_mean


@dataclass
class Action:
    linear: float = 0.0       # m/s
    angular: float = 0.0      # rad/s
    follow: bool = False      # switch to follow-the-target while the gesture holds


DEFAULT_ACTIONS = {
    "hand_clap": Action(0.0, 0.0),                 # stop
    "right_hand_wave": Action(0.0, -0.5),          # turn right
    "left_hand_wave": Action(0.0, 0.5),            # turn left
    "right_arm_cw": Action(0.0, -1.0),             # rotate clockwise
    "right_arm_ccw": Action(0.0, 1.0),
    "left_arm_cw": Action(0.0, -1.0),
    "left_arm_ccw": Action(0.0, 1.0),
    "arm_roll": Action(0.2, 0.0),                  # come forward slowly
    "air_drums": Action(-0.1, 0.0),                # back off
    "air_guitar": Action(0.0, 0.0, follow=True),   # follow the target
    "other": Action(0.0, 0.0),
    "none": Action(0.0, 0.0),                      # no command gesture: abstain
}


class ControllerConfigError(UserError):
    """A controller setting that does not exist or is out of range (a YAML, --controller)."""


@dataclass
class ControllerConfig:
    min_confidence: float = 0.8
    debounce: int = 3
    agree_window: int = 0               # >0: debounce-of-last-N agreement instead of a streak
    hold_s: float = 0.5
    deadman_s: float = 0.5
    max_decision_age_s: float = 0.5     # older decisions (by their packets' stamp) never act
    max_linear: float = 0.3
    max_angular: float = 1.0
    max_linear_accel: float = 0.5       # m/s^2
    max_angular_accel: float = 2.0      # rad/s^2
    follow_gain: float = 1.5            # rad/s per unit of normalised horizontal error
    follow_speed: float = 0.15
    follow_min_confidence: float = 0.5
    image_width: float = 128.0
    actions: dict[str, Action] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))

    def __post_init__(self):
        for name in ("debounce",):
            if getattr(self, name) < 1:
                raise ControllerConfigError(f"{name} must be >= 1")
        if self.agree_window < 0 or (self.agree_window and self.agree_window < self.debounce):
            raise ControllerConfigError("agree_window must be 0 (off) or >= debounce")
        for name in ("min_confidence", "follow_min_confidence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ControllerConfigError(f"{name} must lie in [0, 1]")
        for name in ("hold_s", "deadman_s", "max_decision_age_s", "max_linear", "max_angular",
                     "max_linear_accel", "max_angular_accel", "image_width"):
            if not getattr(self, name) > 0:
                raise ControllerConfigError(f"{name} must be positive")

    @classmethod
    def from_dict(cls, d: dict) -> "ControllerConfig":
        d = dict(d)
        acts = d.pop("actions", None)
        gestures = d.pop("gestures", None)      # user gesture names -> actions (gestures.py)
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            hint = did_you_mean(sorted(unknown)[0], cls.__dataclass_fields__)
            raise ControllerConfigError(f"unknown controller parameters: {sorted(unknown)}{hint} "
                                        f"(known: {', '.join(cls.__dataclass_fields__)})")
        cfg = cls(**d)
        if acts is not None:
            cfg.actions = {k: Action(**v) if isinstance(v, dict) else v for k, v in acts.items()}
        if gestures is not None:       # laid over the table; unlisted gestures keep theirs
            from .gestures import resolve_gestures
            cfg.actions = {**cfg.actions, **{k: Action(**v) for k, v in
                                             resolve_gestures(gestures).items()}}
        return cfg


@dataclass
class Command:
    linear: float
    angular: float
    state: str           # idle | acting | following | stale | estop | fault
    action: str | None = None

    @property
    def is_zero(self) -> bool:
        return self.linear == 0.0 and self.angular == 0.0


def decision_age_problem(age_s: float | None, max_age_s: float) -> str | None:
    """Why a decision must not move the robot because of its age, or None.

    ``age_s`` is now minus the stamp of the packets the decision came from (None: the
    caller has no stamp to judge by). Too old: a backlog drained late or a worker stalled.
    Too far in the future: a clock jumped back or a stamp lies; neither can be trusted.
    """
    if age_s is None:
        return None
    if not math.isfinite(age_s):
        return f"decision age {age_s}"
    if age_s > max_age_s:
        return f"decision {age_s:.2f} s old (limit {max_age_s:.2f} s)"
    if age_s < -max_age_s:
        return f"decision stamped {-age_s:.2f} s in the future"
    return None


class GestureController:
    """Feed it decisions and tracks as they arrive; ask it for a command at any time."""

    def __init__(self, cfg: ControllerConfig | None = None):
        self.cfg = cfg or ControllerConfig()
        self.estop = False
        self.fault: str | None = None
        self._last_valid_t: float | None = None
        self._streak_cls: str | None = None
        self._streak = 0
        self._recent: list[str | None] = []     # confident class of the last decisions
        self._active: str | None = None
        self._active_until = -math.inf
        self._track: tuple[float, float, float, float] | None = None   # t, x, y, conf
        self._out = (0.0, 0.0)
        self._out_t: float | None = None
        self._clock: float | None = None
        self.stale_decisions = 0          # decisions refused for their age
        self.clock_resets = 0             # times the clock went backwards
        self.last_refusal: str | None = None

    # ----------------------------------------------------------- inputs
    def set_estop(self, engaged: bool) -> None:
        self.estop = bool(engaged)

    def _see_clock(self, t: float) -> None:
        """Time going backwards (a sim-time reset, a looping bag) invalidates every decision
        and hold time measured on the old timeline: forget them all (zero until fresh). Steps
        back shorter than the deadman (callers interleaving two time sources) change nothing
        a deadman would not."""
        if self._clock is not None and t < self._clock - self.cfg.deadman_s:
            self.clock_resets += 1
            self._last_valid_t = None
            self._reset_action()
            self._track = None
            self._out, self._out_t = (0.0, 0.0), None
            self._clock = t
        self._clock = t if self._clock is None else max(self._clock, t)

    def on_decision(self, t: float, cls: str, confidence: float, scores=None,
                    age_s: float | None = None) -> None:
        """A classification received at time ``t`` (seconds); ``age_s``: how old the packets
        behind it were when it arrived (see ``decision_age_problem``)."""
        self._see_clock(t)
        why = decision_age_problem(age_s, self.cfg.max_decision_age_s)
        if why is not None:
            self.stale_decisions += 1
            self.last_refusal = why
            return
        values = [confidence] + list(scores or [])
        if any(not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or v > 1
               for v in values):
            self.fault = f"invalid scores at t={t:.3f}: {values[:4]}"
            self._reset_action()
            return
        if cls not in self.cfg.actions:
            self.fault = f"unknown class {cls!r}"
            self._reset_action()
            return
        self.fault = None
        self._last_valid_t = t
        if self.cfg.agree_window:
            self._on_decision_agreement(t, cls, confidence)
            return
        if confidence < self.cfg.min_confidence:
            self._streak_cls, self._streak = None, 0
            return
        if cls == self._streak_cls:
            self._streak += 1
        else:
            self._streak_cls, self._streak = cls, 1
        if self._streak >= self.cfg.debounce:
            self._active = cls
            self._active_until = t + self.cfg.hold_s

    def _on_decision_agreement(self, t: float, cls: str, confidence: float) -> None:
        """k-of-N agreement: act on ``cls`` when ``debounce`` of the last ``agree_window``
        decisions named it with at least ``min_confidence``; a confident abstaining class
        (no action, e.g. ``none``) ends the current action at once."""
        self._recent.append(cls if confidence >= self.cfg.min_confidence else None)
        del self._recent[:-self.cfg.agree_window]
        if confidence >= self.cfg.min_confidence and self._is_abstain(cls):
            self._active = None
            return
        if self._recent.count(cls) >= self.cfg.debounce:
            self._active = cls
            self._active_until = t + self.cfg.hold_s

    def _is_abstain(self, cls: str) -> bool:
        a = self.cfg.actions[cls]
        return not a.follow and a.linear == 0.0 and a.angular == 0.0

    def on_track(self, t: float, x: float, y: float, confidence: float,
                 age_s: float | None = None) -> None:
        self._see_clock(t)
        if decision_age_problem(age_s, self.cfg.max_decision_age_s) is not None:
            return
        if not all(math.isfinite(v) for v in (x, y, confidence)) or not 0 <= confidence <= 1:
            self.fault = f"invalid track at t={t:.3f}"
            self._track = None
            return
        self._track = (t, x, y, confidence)

    def _reset_action(self) -> None:
        self._active, self._streak_cls, self._streak = None, None, 0
        self._recent = []

    # ----------------------------------------------------------- output
    def command(self, t: float) -> Command:
        """The command for time ``t``, after limits; zero whenever anything is off."""
        self._see_clock(t)
        state, action, target = self._target(t)
        lin, ang = target
        if state in ("estop", "fault", "stale"):
            self._out, self._out_t = (0.0, 0.0), t     # safety zero bypasses the ramp
            return Command(0.0, 0.0, state, action)
        lin = max(-self.cfg.max_linear, min(self.cfg.max_linear, lin))
        ang = max(-self.cfg.max_angular, min(self.cfg.max_angular, ang))
        dt = 0.0 if self._out_t is None else max(0.0, t - self._out_t)
        dl = self.cfg.max_linear_accel * dt
        da = self.cfg.max_angular_accel * dt
        lin = max(self._out[0] - dl, min(self._out[0] + dl, lin))
        ang = max(self._out[1] - da, min(self._out[1] + da, ang))
        self._out, self._out_t = (lin, ang), t
        return Command(lin, ang, state, action)

    def _target(self, t: float):
        if self.estop:
            return "estop", None, (0.0, 0.0)
        if self.fault:
            return "fault", None, (0.0, 0.0)
        if self._last_valid_t is None or t - self._last_valid_t > self.cfg.deadman_s:
            self._reset_action()
            return "stale", None, (0.0, 0.0)
        if self._active is None or t > self._active_until:
            self._active = None
            return "idle", None, (0.0, 0.0)
        act = self.cfg.actions[self._active]
        if act.follow:
            tr = self._track
            if tr is None or t - tr[0] > self.cfg.deadman_s \
                    or tr[3] < self.cfg.follow_min_confidence:
                return "following", self._active, (0.0, 0.0)
            err = (tr[1] - self.cfg.image_width / 2) / (self.cfg.image_width / 2)
            return "following", self._active, (self.cfg.follow_speed, -self.cfg.follow_gain * err)
        return "acting", self._active, (act.linear, act.angular)

"""User-defined gesture names -> controller actions, from config (``gestures:``).

A taught model (``snn4 teach``) has classes the shipped action table does not know. A
controller YAML maps them, by a named action or explicit velocities::

    gestures:
      wave_hello: turn_left              # a named action (NAMED_ACTIONS)
      come_here: {linear: 0.2}           # or Action fields
      none: stop

The mapping is laid over the default table (unlisted shipped gestures keep their actions), and
"none" -- the no-gesture outcome -- always means stop unless mapped otherwise. A name that is
not an action, or velocities that are not numbers, are refused when the config is read, not
when the gesture first appears.
"""

from __future__ import annotations

import math

from .control import Action

NAMED_ACTIONS = {
    "stop": Action(0.0, 0.0),
    "turn_left": Action(0.0, 0.5),
    "turn_right": Action(0.0, -0.5),
    "rotate_ccw": Action(0.0, 1.0),
    "rotate_cw": Action(0.0, -1.0),
    "forward": Action(0.2, 0.0),
    "back": Action(-0.1, 0.0),
    "follow": Action(0.0, 0.0, follow=True),
}


def parse_action(name: str, spec) -> Action:
    if isinstance(spec, str):
        if spec not in NAMED_ACTIONS:
            raise ValueError(f"gesture {name!r}: unknown action {spec!r}; named actions: "
                             f"{', '.join(NAMED_ACTIONS)} (or {{linear: .., angular: ..}})")
        return NAMED_ACTIONS[spec]
    if isinstance(spec, dict):
        unknown = set(spec) - {"linear", "angular", "follow"}
        if unknown:
            raise ValueError(f"gesture {name!r}: unknown action fields {sorted(unknown)}")
        lin, ang = spec.get("linear", 0.0), spec.get("angular", 0.0)
        for v in (lin, ang):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"gesture {name!r}: velocities must be finite numbers, got "
                                 f"{spec}")
        return Action(float(lin), float(ang), bool(spec.get("follow", False)))
    raise ValueError(f"gesture {name!r}: an action is a name or a mapping, got {spec!r}")


def apply_gesture_map(actions: dict[str, Action], mapping: dict | None) -> dict[str, Action]:
    """``actions`` with the user's ``gestures:`` mapping laid over it, plus "none" = stop."""
    out = dict(actions)
    out.setdefault("none", NAMED_ACTIONS["stop"])
    for name, spec in (mapping or {}).items():
        out[str(name)] = parse_action(str(name), spec)
    return out

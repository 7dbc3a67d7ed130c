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

# Action fields (runtime/control.py builds the Action; this module stays a leaf)
NAMED_ACTIONS = {
    "stop": {"linear": 0.0, "angular": 0.0, "follow": False},
    "turn_left": {"linear": 0.0, "angular": 0.5, "follow": False},
    "turn_right": {"linear": 0.0, "angular": -0.5, "follow": False},
    "rotate_ccw": {"linear": 0.0, "angular": 1.0, "follow": False},
    "rotate_cw": {"linear": 0.0, "angular": -1.0, "follow": False},
    "forward": {"linear": 0.2, "angular": 0.0, "follow": False},
    "back": {"linear": -0.1, "angular": 0.0, "follow": False},
    "follow": {"linear": 0.0, "angular": 0.0, "follow": True},
}


def parse_action(name: str, spec) -> dict:
    """The Action fields of one ``gestures:`` entry (a named action or a mapping)."""
    if isinstance(spec, str):
        if spec not in NAMED_ACTIONS:
            raise ValueError(f"gesture {name!r}: unknown action {spec!r}; named actions: "
                             f"{', '.join(NAMED_ACTIONS)} (or {{linear: .., angular: ..}})")
        return dict(NAMED_ACTIONS[spec])
    if isinstance(spec, dict):
        unknown = set(spec) - {"linear", "angular", "follow"}
        if unknown:
            raise ValueError(f"gesture {name!r}: unknown action fields {sorted(unknown)}")
        lin, ang = spec.get("linear", 0.0), spec.get("angular", 0.0)
        for v in (lin, ang):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"gesture {name!r}: velocities must be finite numbers, got "
                                 f"{spec}")
        return {"linear": float(lin), "angular": float(ang),
                "follow": bool(spec.get("follow", False))}
    raise ValueError(f"gesture {name!r}: an action is a name or a mapping, got {spec!r}")


def resolve_gestures(mapping: dict | None) -> dict[str, dict]:
    """Class name -> Action fields for the user's ``gestures:`` mapping, "none" = stop
    unless mapped otherwise."""
    out = {"none": dict(NAMED_ACTIONS["stop"])}
    for name, spec in (mapping or {}).items():
        out[str(name)] = parse_action(str(name), spec)
    return out

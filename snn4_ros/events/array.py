"""The one event-array type used everywhere in snn4_ros.

Events are a structured numpy array (``t`` in nanoseconds, int64; ``x``, ``y`` uint16; ``p``
uint8 polarity 1=ON) sorted by time, plus the sensor geometry. External triggers are kept in a
separate array so that they never count as change-detection events. Nanoseconds are used
because EventPacket times (``time_base`` + offsets) are nanoseconds and the mono encoding
carries nanosecond offsets: a round trip must be exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import OutOfRangeError, TimeOrderError

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])
TRIGGER_DTYPE = np.dtype([("t", "<i8"), ("id", "u1"), ("edge", "u1")])


def make_events(t, x, y, p) -> np.ndarray:
    """A structured event array from four equally long columns."""
    n = len(t)
    ev = np.empty(n, EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["p"] = t, x, y, p
    return ev


def make_triggers(t, trig_id, edge) -> np.ndarray:
    tr = np.empty(len(t), TRIGGER_DTYPE)
    tr["t"], tr["id"], tr["edge"] = t, trig_id, edge
    return tr


@dataclass
class EventArray:
    """Change-detection events and triggers of one sensor, time-sorted."""

    events: np.ndarray
    width: int
    height: int
    triggers: np.ndarray = field(default_factory=lambda: np.empty(0, TRIGGER_DTYPE))

    def __post_init__(self) -> None:
        if self.events.dtype != EVENT_DTYPE:
            raise TypeError(f"events must have dtype {EVENT_DTYPE}, got {self.events.dtype}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"sensor geometry must be positive, got {self.width}x{self.height}")

    def __len__(self) -> int:
        return len(self.events)

    @property
    def t_first_ns(self) -> int | None:
        return int(self.events["t"][0]) if len(self.events) else None

    @property
    def t_last_ns(self) -> int | None:
        return int(self.events["t"][-1]) if len(self.events) else None

    @property
    def on_count(self) -> int:
        return int(np.count_nonzero(self.events["p"]))

    def validate(self, where: str = "events") -> None:
        """Raise if coordinates leave the sensor or time goes backwards."""
        check_events(self.events, self.width, self.height, where)

    @staticmethod
    def concatenate(parts: list["EventArray"], width: int | None = None,
                    height: int | None = None) -> "EventArray":
        if not parts and (width is None or height is None):
            raise ValueError("no parts and no geometry given")
        w = width if width is not None else max(p.width for p in parts)
        h = height if height is not None else max(p.height for p in parts)
        ev = np.concatenate([p.events for p in parts]) if parts else np.empty(0, EVENT_DTYPE)
        tr = np.concatenate([p.triggers for p in parts]) if parts else np.empty(0, TRIGGER_DTYPE)
        return EventArray(ev, w, h, tr)

    def summary(self) -> dict:
        """Counts and time span, with the field names `snn4 inspect --json` promises."""
        return {
            "width": int(self.width),
            "height": int(self.height),
            "events": int(len(self.events)),
            "on": self.on_count,
            "off": int(len(self.events) - self.on_count),
            "triggers": int(len(self.triggers)),
            "t_first_us": None if self.t_first_ns is None else self.t_first_ns / 1000.0,
            "t_last_us": None if self.t_last_ns is None else self.t_last_ns / 1000.0,
        }


def check_events(ev: np.ndarray, width: int, height: int, where: str = "events") -> None:
    """Raise OutOfRangeError / TimeOrderError naming the first offending event."""
    bad = np.flatnonzero((ev["x"] >= width) | (ev["y"] >= height))
    if len(bad):
        i = int(bad[0])
        raise OutOfRangeError(
            f"{len(bad)} events outside the {width}x{height} sensor, first at index {i} "
            f"(x={int(ev['x'][i])}, y={int(ev['y'][i])})", where=where)
    t = ev["t"]
    back = np.flatnonzero(t[1:] < t[:-1])
    if len(back):
        i = int(back[0]) + 1
        raise TimeOrderError(
            f"time goes backwards {len(back)} times, first at index {i} "
            f"({int(t[i - 1])} ns -> {int(t[i])} ns)", where=where)

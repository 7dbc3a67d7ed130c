"""Ground truth for replay: ``start,end,class`` intervals in the bag's clock.

From a CSV (the format ``snn4 record-synthetic`` writes; times in ns, or in seconds when they
have a decimal point) or from a ``vision_msgs/Classification`` topic in the bag (each message
labels the time until the next one; an empty result list or the class ``none`` marks a time
without a gesture). Labels are checked against the model's classes and the bag's time range,
so a wrong clock or a typo becomes an error instead of a silently wrong accuracy.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .errors import EventDataError


class LabelError(EventDataError):
    """Labels that cannot be used (format, unknown class, outside the recording)."""


@dataclass(frozen=True)
class Interval:
    start_ns: int
    end_ns: int
    cls: str

    def contains(self, t_ns: int) -> bool:
        return self.start_ns <= t_ns < self.end_ns


def _time_ns(text: str, where: str) -> int:
    text = text.strip()
    try:
        return int(text) if text.lstrip("-").isdigit() else int(round(float(text) * 1e9))
    except ValueError:
        raise LabelError(f"not a time: {text!r}", where=where) from None


def load_labels_csv(path: str | Path) -> list[Interval]:
    path = Path(path)
    if not path.exists():
        raise LabelError("no such labels file", where=str(path))
    out = []
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise LabelError("empty labels file", where=str(path))
    header = [c.strip().lower() for c in rows[0]]
    if header[:3] != ["start", "end", "class"]:
        raise LabelError(f"the first row must be 'start,end,class', got {rows[0]}",
                         where=str(path))
    for i, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        where = f"{path}: line {i}"
        if len(row) < 3:
            raise LabelError(f"want start,end,class, got {row}", where=where)
        a, b = _time_ns(row[0], where), _time_ns(row[1], where)
        if b <= a:
            raise LabelError(f"interval ends before it starts ({a} >= {b})", where=where)
        out.append(Interval(a, b, row[2].strip()))
    return sorted(out, key=lambda iv: iv.start_ns)


def labels_from_topic(bag: str | Path, topic: str) -> list[Interval]:
    """Intervals from a ``vision_msgs/Classification`` topic (top-scoring class per message,
    stamped by the header; each holds until the next message)."""
    from .bags import open_bag

    reader = open_bag(Path(bag))
    try:
        conns = [c for c in reader.connections if c.topic == topic]
        if not conns:
            raise LabelError(f"no topic {topic!r} in the bag; topics: "
                             + ", ".join(c.topic for c in reader.connections), where=str(bag))
        if conns[0].msgtype != "vision_msgs/msg/Classification":
            raise LabelError(f"label topic {topic!r} holds {conns[0].msgtype}, not "
                             "vision_msgs/msg/Classification", where=str(bag))
        marks = []
        for conn, log_t, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            t = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec or log_t
            cls = max(msg.results, key=lambda r: r.score).class_id if msg.results else "none"
            marks.append((t, cls))
    finally:
        reader.close()
    marks.sort(key=lambda m: m[0])      # stable: same-stamp messages keep their order
    out = []
    for (a, c), (b, _) in zip(marks, marks[1:]):
        if c not in ("none", "") and b > a:
            out.append(Interval(a, b, c))
    return out


def check_labels(intervals: list[Interval], classes: list[str], t_first_ns: int,
                 t_last_ns: int, where: str) -> tuple[list[Interval], int]:
    """The intervals that overlap the recording, and how many were skipped outside it.

    Raises for a class the model does not know, and when no interval overlaps the recording
    at all (labels in another clock: sensor time instead of the bag's, seconds vs ns)."""
    unknown = sorted({iv.cls for iv in intervals} - set(classes))
    if unknown:
        raise LabelError(f"label classes {unknown} are not among the model's classes "
                         f"{list(classes)}", where=where)
    inside = [iv for iv in intervals if iv.end_ns > t_first_ns and iv.start_ns <= t_last_ns]
    if intervals and not inside:
        raise LabelError(f"no label interval overlaps the recording's time range "
                         f"[{t_first_ns}, {t_last_ns}] ns (labels span "
                         f"[{intervals[0].start_ns}, {max(iv.end_ns for iv in intervals)}]): "
                         "are they in the bag's clock?", where=where)
    return inside, len(intervals) - len(inside)

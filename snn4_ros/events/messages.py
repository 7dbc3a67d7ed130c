"""The event messages of a recording, in order: what both replays and the ``bag:`` dataset read.

A bag gives its event topic's messages (EventPacket in any encoding, dvs_msgs / dv_ros2_msgs
EventArray as mono packets); an event file is cut into packets as the source node cuts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .bags import bag_topics, choose_event_topic, iter_bag
from .codecs import Packet, PacketEncoder
from .errors import CorruptDataError
from .sources import detect_format, read_recording
from .stream import time_chunks


@dataclass
class MessageLog:
    """What reading the messages met: the format, topic and encoding, counts and errors."""

    format: str = ""
    topic: str | None = None
    msgtype: str | None = None
    encoding: str | None = None
    messages: int = 0
    skipped_messages: int = 0
    errors: list[str] = field(default_factory=list)
    # an event file's reader skips (DecodeStats.skips: truncated bytes, out-of-range events...)
    file_skips: dict[str, int] = field(default_factory=dict)


def iter_messages(path: str | Path, topic: str | None = None, strict: bool = False,
                  packet_us: int = 2000, log: MessageLog | None = None
                  ) -> Iterator[tuple[int, Packet]]:
    """``(stamp_ns, Packet)`` in recording order, from a bag or an event file (cut into
    ``packet_us`` packets, the source node's length).

    Messages that do not deserialize are counted in ``log`` (or raise with ``strict``); a
    storage that breaks part-way ends the stream with what was read, the error kept in
    ``log`` (a replay's trace holds its ``MessageLog``)."""
    log = log if log is not None else MessageLog()
    path = Path(path)
    fmt = detect_format(path)
    log.format = fmt
    if fmt in ("rosbag2", "rosbag1"):
        chosen = choose_event_topic(bag_topics(path), topic, str(path))
        log.topic, log.msgtype = chosen.topic, chosen.msgtype
        enc = None
        try:
            for bm in iter_bag(path, chosen.topic):
                log.messages += 1
                if bm.error is not None:
                    if strict:
                        raise CorruptDataError(bm.error, where=str(path))
                    log.skipped_messages += 1
                    log.errors.append(bm.error)
                    continue
                if bm.packet is not None:
                    log.encoding = bm.packet.encoding
                    yield (bm.packet.stamp_ns or bm.log_time_ns), bm.packet
                else:                     # EventArray: the same path, as a mono packet
                    ea = bm.events
                    if enc is None:
                        enc = PacketEncoder("mono", ea.width, ea.height)
                    yield bm.log_time_ns, enc.encode(ea.events, stamp_ns=bm.log_time_ns)
        except CorruptDataError as exc:
            if strict or "storage unreadable" not in str(exc):
                raise
            log.skipped_messages += getattr(exc, "missing", 1)
            log.errors.append(str(exc))
        return
    ea, stats, _ = read_recording(path, strict=strict)
    log.file_skips = stats.skips()
    if stats.last_error:
        log.errors.append(stats.last_error)
    enc = PacketEncoder("mono", ea.width, ea.height)
    for ev in time_chunks(ea.events, packet_us):
        log.messages += 1
        stamp = int(ev["t"][0])
        yield stamp, enc.encode(ev, stamp_ns=stamp)

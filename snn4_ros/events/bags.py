"""ROS bags of events, read and written with ``rosbags`` (no ROS install needed).

Reads ROS 2 bags (sqlite3 and MCAP) and ROS 1 bags holding ``event_camera_msgs/EventPacket``,
``dvs_msgs/EventArray`` (rpg_dvs_ros) or ``dv_ros2_msgs/EventArray``. The message types are
registered from their .msg text, so bags recorded without type definitions (Humble-era
sqlite3 bags) read as well as self-describing MCAP files.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np

from .array import EventArray, make_events
from .codecs import DecodeStats, Packet, PacketDecoder, ensure_time_order
from .errors import CorruptDataError, EventDataError, NoEventsError

EVENT_PACKET = "event_camera_msgs/msg/EventPacket"
DVS_ARRAY = "dvs_msgs/msg/EventArray"
DV_ROS2_ARRAY = "dv_ros2_msgs/msg/EventArray"
EVENT_TYPES = (EVENT_PACKET, DVS_ARRAY, DV_ROS2_ARRAY)

_DEFS = {
    EVENT_PACKET: "std_msgs/Header header\nuint32 height\nuint32 width\nuint64 seq\n"
                  "uint64 time_base\nstring encoding\nbool is_bigendian\nuint8[] events\n",
    "dvs_msgs/msg/Event": "uint16 x\nuint16 y\nbuiltin_interfaces/Time ts\nbool polarity\n",
    DVS_ARRAY: "std_msgs/Header header\nuint32 height\nuint32 width\ndvs_msgs/Event[] events\n",
    "dv_ros2_msgs/msg/Event": "uint16 x\nuint16 y\nbuiltin_interfaces/Time ts\nbool polarity\n",
    DV_ROS2_ARRAY: "std_msgs/Header header\nuint32 height\nuint32 width\n"
                   "dv_ros2_msgs/Event[] events\n",
    "vision_msgs/msg/ObjectHypothesis": "string class_id\nfloat64 score\n",
    "vision_msgs/msg/Classification": "std_msgs/Header header\n"
                                      "vision_msgs/ObjectHypothesis[] results\n",
    "vision_msgs/msg/Point2D": "float64 x\nfloat64 y\n",
    "vision_msgs/msg/Pose2D": "vision_msgs/Point2D position\nfloat64 theta\n",
    "vision_msgs/msg/BoundingBox2D": "vision_msgs/Pose2D center\nfloat64 size_x\n"
                                     "float64 size_y\n",
    "vision_msgs/msg/ObjectHypothesisWithPose": "vision_msgs/ObjectHypothesis hypothesis\n"
                                                "geometry_msgs/PoseWithCovariance pose\n",
    "vision_msgs/msg/Detection2D": "std_msgs/Header header\n"
                                   "vision_msgs/ObjectHypothesisWithPose[] results\n"
                                   "vision_msgs/BoundingBox2D bbox\nstring id\n",
    "vision_msgs/msg/Detection2DArray": "std_msgs/Header header\n"
                                        "vision_msgs/Detection2D[] detections\n",
}


@lru_cache(maxsize=1)
def typestore():
    """A Jazzy type store with the event and vision message types registered."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    types = {}
    for name, text in _DEFS.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


@dataclass
class BagTopic:
    topic: str
    msgtype: str
    messages: int


def _known_types() -> set[str]:
    """Message types read with our own definitions, whatever a bag embeds."""
    return set(typestore().fielddefs)


def _bag_reader_class():
    from rosbags.highlevel import AnyReader
    from rosbags.interfaces import MessageDefinitionFormat
    from rosbags.typesys import Stores, get_types_from_idl, get_typestore

    class BagReader(AnyReader):
        """AnyReader whose types come from our definitions first.

        rosbag2 embeds message definitions in MCAP as ros2msg or as rosidl's IDL (``ros2idl``,
        with ``@verbatim`` comments and ``#include`` lines rosbags cannot parse). The types
        this project reads (EventPacket, the EventArrays, its own outputs, the standard
        messages) never depend on that text: they are registered from their .msg definitions.
        Other types use the embedded definition when it parses; when it does not, only their
        own topics stay unreadable (named in ``unparsed``).
        """

        unparsed: dict[str, str]

        def __init__(self, paths, *, default_typestore=None):
            paths = [Path(p) for p in paths]
            if not any(p.is_dir() and p.suffix == ".bag" for p in paths):
                super().__init__(paths, default_typestore=default_typestore)
                return
            # AnyReader takes every path named *.bag for ROS 1; a rosbag2 folder may be
            # named so too (snn4 record-synthetic --out demo.bag), and a folder is rosbag2.
            # The state AnyReader.__init__ sets up (rosbags 0.11; tests/test_newcomer.py reads one).
            from rosbags.rosbag2 import Reader as Reader2

            self.paths, self.is2, self.stack, self.connections = paths, True, None, []
            self.default_typestore = default_typestore
            self.typestore = get_typestore(Stores.EMPTY)
            self.readers = [Reader2(x) for x in paths]

        def _open(self) -> None:
            from rosbags.typesys import get_types_from_msg

            for reader in self.readers:
                self.stack.enter_context(reader)
            typs = dict(typestore().fielddefs)
            known = set(typs)
            self.unparsed = {}
            conns = [c for r in self.readers for c in r.connections]
            for c in conns:
                if c.msgtype in known or c.msgdef.format == MessageDefinitionFormat.NONE:
                    continue
                try:
                    if c.msgdef.format == MessageDefinitionFormat.MSG:
                        typs.update(get_types_from_msg(c.msgdef.data, c.msgtype))
                    else:
                        sep = "=" * 80 + "\n"
                        for part in c.msgdef.data.split(sep):
                            if part.startswith("IDL: "):
                                part = part.split("\n", 1)[1]
                            if part.strip():
                                typs.update(get_types_from_idl(part))
                except Exception as exc:        # keep the rest of the bag readable
                    self.unparsed[c.msgtype] = f"{type(exc).__name__}: {str(exc)[:200]}"
            store = get_typestore(Stores.EMPTY)
            store.register(typs)
            self.connections = conns
            self.typestore = store

    return BagReader


def open_bag(path: Path):
    """An open reader for any bag layout; ``reader.notes`` says what had to be fixed."""
    from .bag_layout import resolve_rosbag2

    if not path.exists():
        raise EventDataError("no such bag", where=str(path))
    res = None
    try:
        if path.suffix.lower() == ".bag" and path.is_file():
            paths, notes = [path], []
        else:
            res = resolve_rosbag2(path)
            paths, notes = res.paths, res.notes
        reader = _bag_reader_class()(paths, default_typestore=typestore())
        reader.open()
    except EventDataError:
        raise
    except Exception as exc:  # rosbags raises several types for broken bags
        if res is not None:
            res.cleanup()
        raise CorruptDataError(f"cannot open bag: {type(exc).__name__}: {exc}",
                               where=str(path)) from None
    reader.notes = notes
    reader.expected = res.expected if res is not None else {}
    reader.incomplete = res.incomplete if res is not None else None
    if reader.incomplete and not any(c.msgcount for c in reader.connections):
        reader.close()
        if res is not None:
            res.cleanup()
        raise CorruptDataError(f"no complete message could be read: {reader.incomplete}",
                               where=str(path))
    if res is not None and res.tmp is not None:
        close = reader.close

        def close_and_clean():
            try:
                close()
            finally:
                res.cleanup()
        reader.close = close_and_clean
    return reader


def _topics(reader) -> list[BagTopic]:
    """One entry per topic (a bag read file by file has one connection per file)."""
    out: dict[str, BagTopic] = {}
    for c in reader.connections:
        if c.topic in out:
            out[c.topic].messages += c.msgcount
        else:
            out[c.topic] = BagTopic(c.topic, c.msgtype, c.msgcount)
    return list(out.values())


def bag_topics(path: str | Path) -> list[BagTopic]:
    reader = open_bag(Path(path))
    try:
        return _topics(reader)
    finally:
        reader.close()


def choose_event_topic(topics: list[BagTopic], topic: str | None, where: str) -> BagTopic:
    """The event topic to read: the one asked for, or the only one there is."""
    events = [t for t in topics if t.msgtype in EVENT_TYPES]
    if topic is not None:
        match = [t for t in topics if t.topic == topic]
        if not match:
            raise EventDataError(f"no topic {topic!r}; topics: "
                                 f"{', '.join(f'{t.topic} ({t.msgtype})' for t in topics) or 'none'}",
                                 where=where)
        if match[0].msgtype not in EVENT_TYPES:
            raise EventDataError(f"topic {topic!r} holds {match[0].msgtype}, not an event type "
                                 f"({', '.join(EVENT_TYPES)})", where=where)
        return match[0]
    if not events:
        raise NoEventsError("no event topic in the bag (looked for "
                            f"{', '.join(EVENT_TYPES)}); topics: "
                            f"{', '.join(t.topic for t in topics) or 'none'}", where=where)
    if len(events) > 1:
        raise EventDataError("several event topics, choose one with --topic: "
                             + ", ".join(t.topic for t in events), where=where)
    return events[0]


def _array_msg_to_events(msg) -> np.ndarray:
    evs = msg.events
    n = len(evs)
    t = np.fromiter((e.ts.sec * 1_000_000_000 + e.ts.nanosec for e in evs), np.int64, n)
    x = np.fromiter((e.x for e in evs), np.uint16, n)
    y = np.fromiter((e.y for e in evs), np.uint16, n)
    p = np.fromiter((e.polarity for e in evs), np.uint8, n)
    return make_events(t, x, y, p)


@dataclass
class BagMessage:
    """One event message of a bag: its record time and a Packet, decoded events, or the
    reason it could not be deserialized."""

    index: int
    log_time_ns: int
    packet: Packet | None = None
    events: EventArray | None = None
    error: str | None = None


def iter_bag(path: str | Path, topic: str | None = None, notes: list | None = None
             ) -> Iterator[BagMessage]:
    """Event messages of one topic, in log-time order, not yet decoded for EventPackets.

    A message that does not deserialize comes with ``error`` set; a storage that breaks
    (corrupted chunk, truncated file) raises CorruptDataError naming the last good message.
    What had to be fixed to open the bag (its layout) is appended to ``notes``.
    """
    path = Path(path)
    reader = open_bag(path)
    if notes is not None:
        notes.extend(reader.notes)
    try:
        chosen = choose_event_topic(
            _topics(reader), topic, str(path))
        conns = [c for c in reader.connections if c.topic == chosen.topic]
        i = -1
        try:
            for i, (conn, log_t, raw) in enumerate(reader.messages(connections=conns)):
                try:
                    msg = reader.deserialize(raw, conn.msgtype)
                except Exception as exc:
                    yield BagMessage(i, log_t, error=f"message {i} does not deserialize as "
                                     f"{conn.msgtype}: {exc}")
                    continue
                if conn.msgtype == EVENT_PACKET:
                    yield BagMessage(i, log_t, packet=Packet.from_msg(msg))
                else:
                    yield BagMessage(i, log_t, events=EventArray(
                        _array_msg_to_events(msg), max(msg.width, 1), max(msg.height, 1)))
        except Exception as exc:
            err = CorruptDataError(f"bag storage unreadable after message {i}: "
                                   f"{type(exc).__name__}: {exc}", where=str(path))
            err.missing = max(1, chosen.messages - (i + 1))
            raise err from None
        listed = max(chosen.messages, reader.expected.get(chosen.topic, 0))
        if listed and i + 1 < listed:
            # readers stop quietly at a zeroed or truncated chunk: the index knows better
            err = CorruptDataError(f"bag storage unreadable after message {i}: only {i + 1} of "
                                   f"the {listed} messages its index lists could be "
                                   "read (corrupted or truncated file)", where=str(path))
            err.missing = listed - (i + 1)
            raise err
        if reader.incomplete:
            # no index to count what was lost: at least the record the file ends in
            err = CorruptDataError(f"bag storage unreadable after message {i}: "
                                   f"{reader.incomplete}", where=str(path))
            err.missing = 1
            raise err
    finally:
        reader.close()


def read_bag(path: str | Path, topic: str | None = None, strict: bool = True
             ) -> tuple[EventArray, DecodeStats, dict]:
    """All events of a bag topic, decoded; plus stats and facts about the topic.

    Lenient reading skips (and counts) messages that do not deserialize or decode, and stops
    at a broken storage with what it read so far, recording the error in the stats.
    """
    path = Path(path)
    dec = PacketDecoder(strict=strict)
    parts: list[EventArray] = []
    info = {"messages": 0, "encoding": None, "topic": None, "msgtype": None, "notes": []}
    try:
        for bm in iter_bag(path, topic, info["notes"]):
            info["messages"] += 1
            where = f"{path}: message {bm.index}"
            if bm.error is not None:
                if strict:
                    raise CorruptDataError(bm.error, where=str(path))
                dec.stats.skipped_packets += 1
                dec.stats.last_error = f"{path}: {bm.error}"
                continue
            if bm.packet is not None:
                info["encoding"] = bm.packet.encoding
                ea = dec.decode(bm.packet, where=f"{where} (seq={bm.packet.seq})")
            else:
                ea = bm.events
                prev = parts[-1].t_last_ns if parts and len(parts[-1]) else None
                ea.events = ensure_time_order(ea.events, strict, dec.stats, where, prev)
                dec.stats.packets += 1
                dec.stats.events += len(ea)
                dec.stats.on += ea.on_count
            parts.append(ea)
    except CorruptDataError as exc:
        if strict or "storage unreadable" not in str(exc):
            raise
        dec.stats.skipped_packets += getattr(exc, "missing", 1)
        dec.stats.last_error = str(exc)
    if not info["messages"]:
        raise NoEventsError("the event topic holds no messages", where=str(path))
    chosen = choose_event_topic(bag_topics(path), topic, str(path))
    info["topic"], info["msgtype"] = chosen.topic, chosen.msgtype
    if not parts:
        raise NoEventsError(f"none of the {info['messages']} messages could be used "
                            f"({dec.stats.last_error})", where=str(path))
    return EventArray.concatenate(parts), dec.stats, info


def packet_to_rosbags(pkt: Packet):
    """A rosbags EventPacket message object for a core Packet."""
    ts = typestore()
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    EventPacketMsg = ts.types[EVENT_PACKET]
    data = pkt.payload()
    return EventPacketMsg(
        header=Header(stamp=Time(sec=pkt.stamp_ns // 1_000_000_000,
                                 nanosec=pkt.stamp_ns % 1_000_000_000), frame_id=pkt.frame_id),
        height=pkt.height, width=pkt.width, seq=pkt.seq, time_base=pkt.time_base,
        encoding=pkt.encoding, is_bigendian=pkt.is_bigendian, events=np.array(data, np.uint8))


class BagWriter:
    """Writes ROS 2 bags (sqlite3 or MCAP) of EventPackets and other registered types."""

    def __init__(self, path: str | Path, storage: str = "mcap"):
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists; rosbag2 writes a new folder")
        plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._writer.open()
        self._conns: dict[str, object] = {}

    def write(self, topic: str, msgtype: str, msg, log_time_ns: int) -> None:
        ts = typestore()
        if topic not in self._conns:
            self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=ts)
        self._writer.write(self._conns[topic], log_time_ns, ts.serialize_cdr(msg, msgtype))

    def write_packet(self, pkt: Packet, topic: str = "/event_camera/events",
                     log_time_ns: int | None = None) -> None:
        self.write(topic, EVENT_PACKET, packet_to_rosbags(pkt),
                   pkt.stamp_ns if log_time_ns is None else log_time_ns)

    def close(self) -> None:
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

"""Event core: one event-array type, codecs, readers/writers, stream types, the message
reader of both replays, labels, the synthetic DVS, frames.

No rclpy import anywhere in this package.
"""

from .array import EVENT_DTYPE, TRIGGER_DTYPE, EventArray, make_events, make_triggers
from .codecs import ENCODINGS, DecodeStats, Packet, PacketDecoder, PacketEncoder, decode_packets
from .errors import (CorruptDataError, EventDataError, NoEventsError, OutOfRangeError,
                     TimeOrderError, TruncatedDataError, UnknownEncodingError)
from .frames import FrameConfig, FrameStream, events_to_frames, events_to_voxel_grid
from .labels import Interval, LabelError, check_labels, labels_from_topic, load_labels_csv
from .messages import MessageLog, iter_messages
from .sources import detect_format, inspect_recording, iter_source, read_recording
from .stream import Chunk, Pacer, time_chunks

__all__ = [
    "EVENT_DTYPE", "TRIGGER_DTYPE", "EventArray", "make_events", "make_triggers", "ENCODINGS",
    "DecodeStats", "Packet", "PacketDecoder", "PacketEncoder", "decode_packets",
    "CorruptDataError", "EventDataError", "NoEventsError", "OutOfRangeError", "TimeOrderError",
    "TruncatedDataError", "UnknownEncodingError", "FrameConfig", "FrameStream",
    "events_to_frames", "events_to_voxel_grid", "detect_format", "inspect_recording",
    "iter_source", "read_recording", "Interval", "LabelError", "check_labels",
    "labels_from_topic", "load_labels_csv", "MessageLog", "iter_messages", "Chunk", "Pacer",
    "time_chunks",
]

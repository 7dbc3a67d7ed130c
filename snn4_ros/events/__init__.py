"""Event core: one event-array type, codecs, readers/writers, the synthetic DVS, frames.

No rclpy import anywhere in this package.
"""

from .array import EVENT_DTYPE, TRIGGER_DTYPE, EventArray, make_events, make_triggers
from .codecs import ENCODINGS, DecodeStats, Packet, PacketDecoder, PacketEncoder, decode_packets
from .errors import (CorruptDataError, EventDataError, NoEventsError, OutOfRangeError,
                     TimeOrderError, TruncatedDataError, UnknownEncodingError)
from .frames import FrameConfig, FrameStream, events_to_frames, events_to_voxel_grid
from .sources import detect_format, inspect_recording, iter_source, read_recording

__all__ = [
    "EVENT_DTYPE", "TRIGGER_DTYPE", "EventArray", "make_events", "make_triggers", "ENCODINGS",
    "DecodeStats", "Packet", "PacketDecoder", "PacketEncoder", "decode_packets",
    "CorruptDataError", "EventDataError", "NoEventsError", "OutOfRangeError", "TimeOrderError",
    "TruncatedDataError", "UnknownEncodingError", "FrameConfig", "FrameStream",
    "events_to_frames", "events_to_voxel_grid", "detect_format", "inspect_recording",
    "iter_source", "read_recording",
]

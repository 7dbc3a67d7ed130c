"""Decoders and encoders for ``event_camera_msgs/EventPacket`` payloads.

Encodings, as defined by the reference C++ codecs (ros-event-camera/event_camera_codecs):

* ``evt3``       Prophesee EVT 3.0, 16-bit words, a stateful stream across packets; times are
                 sensor microseconds (``time_base`` unused), with roll-over of the 24-bit time.
* ``libcaer_cmp`` iniVation compressed stream, 16-bit words; times are microseconds relative to
                 ``time_base`` (ns); the x address carries over from packet to packet.
* ``libcaer``    libcaer polarity events, 8 bytes each (uint32 address word, int32 microseconds);
                 31-bit sensor time roll-over inside a packet.
* ``mono``       one 64-bit word per event: bit 63 polarity, y << 48, x << 32, ns offset.
* ``trigger``    the same word layout carrying external-trigger edges and ids.

The two stateful 16-bit streams (evt3, libcaer_cmp) are decoded by compiled state machines
(``codec_kernels``) that follow the reference loops word by word; the fixed-size formats are
vectorised numpy. Encoders are vectorised numpy throughout.

Every decoder carries its state explicitly (``decode(words, state) -> (events, state)``) so
the same functions serve a live subscription, a bag reader and the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import codec_kernels as _k
from .array import EVENT_DTYPE, TRIGGER_DTYPE, EventArray, make_events, make_triggers
from .errors import (CorruptDataError, EventDataError, OutOfRangeError, TimeOrderError,
                     TruncatedDataError, UnknownEncodingError)

ENCODINGS = ("evt3", "libcaer_cmp", "libcaer", "mono", "trigger")
_WORD_BYTES = {"evt3": 2, "libcaer_cmp": 2, "libcaer": 8, "mono": 8, "trigger": 8}


@dataclass
class Packet:
    """The fields of ``event_camera_msgs/EventPacket``, without any ROS type.

    ``from_msg`` accepts any object with the message's attribute names (an rclpy message, a
    ``rosbags`` message), so the core never imports rclpy.
    """

    encoding: str
    width: int
    height: int
    events: bytes | np.ndarray
    seq: int = 0
    time_base: int = 0
    is_bigendian: bool = False
    stamp_ns: int = 0
    frame_id: str = ""

    @classmethod
    def from_msg(cls, msg: Any) -> "Packet":
        stamp = msg.header.stamp
        data = msg.events
        if not isinstance(data, (bytes, bytearray, np.ndarray)):
            data = np.frombuffer(memoryview(data), np.uint8) if hasattr(data, "tobytes") \
                else bytes(data)
        return cls(encoding=str(msg.encoding), width=int(msg.width), height=int(msg.height),
                   events=data, seq=int(msg.seq), time_base=int(msg.time_base),
                   is_bigendian=bool(msg.is_bigendian),
                   stamp_ns=int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec),
                   frame_id=str(msg.header.frame_id))

    def payload(self) -> np.ndarray:
        """The payload as a read-only uint8 array (no copy)."""
        if isinstance(self.events, np.ndarray):
            return self.events.view(np.uint8).reshape(-1)
        return np.frombuffer(self.events, np.uint8)


@dataclass
class DecodeStats:
    """What a decoder saw: counts of good data and of everything it had to skip."""

    packets: int = 0               # packets fully decoded (counted after their events)
    events: int = 0
    on: int = 0
    triggers: int = 0
    bytes: int = 0
    seq_gaps: int = 0              # packets missing between consecutive sequence numbers
    seq_resets: int = 0            # sequence numbers that went back or leapt implausibly
    skipped_packets: int = 0
    out_of_range: int = 0
    time_regressions: int = 0
    truncated_bytes: int = 0
    bad_words: int = 0
    last_error: str = ""
    # skipped packets by cause: unknown_encoding, invalid_geometry, truncated, corrupt, ...
    skipped_by_cause: dict = field(default_factory=dict)

    # the counters of data skipped rather than decoded (what a report must not hide)
    SKIP_FIELDS = ("seq_gaps", "skipped_packets", "out_of_range", "time_regressions",
                   "truncated_bytes", "bad_words")

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def skips(self) -> dict[str, int]:
        """The non-zero skip counters."""
        return {k: int(getattr(self, k)) for k in self.SKIP_FIELDS if getattr(self, k)}


# --------------------------------------------------------------------------- helpers
def _words(payload: np.ndarray, dtype: str, bigendian: bool) -> tuple[np.ndarray, int]:
    """View a payload as words; return the words and the number of trailing stray bytes."""
    size = np.dtype(dtype).itemsize
    n = len(payload) // size
    w = payload[: n * size].view(np.dtype(dtype).newbyteorder(">" if bigendian else "<"))
    return w, len(payload) - n * size


# --------------------------------------------------------------------------- evt3
@dataclass(frozen=True)
class Evt3State:
    """Decoder state carried from one evt3 packet to the next (as in the C++ decoder)."""

    y: int = 0
    t_low: int = 0
    t_high: int = 0          # (rollovers << 24) | (time_high << 12)
    pol: int = 0
    base_x: int = 0
    valid: bool = False      # a TIME_HIGH followed by TIME_LOW has been seen


def decode_evt3(w: np.ndarray, state: Evt3State, width: int = 65536, height: int = 65536
                ) -> tuple[np.ndarray, np.ndarray, Evt3State, int, int]:
    """Decode evt3 words: (events, triggers, new state, out-of-range dropped, invalid words).

    Follows the reference decoder: nothing is emitted before the first TIME_HIGH + TIME_LOW of
    the stream; TIME_HIGH going back by more than 10 counts a roll-over of the 24-bit time;
    VECT_12 / VECT_8 expand from the current base x, which advances by 12 / 8. Events
    outside ``width`` x ``height`` are dropped and counted (the reference drops them silently).
    """
    st = np.array([state.y, state.t_low, state.t_high, state.pol, state.base_x, int(state.valid)],
                  np.int64)
    t, x, y, p, tt, tid, tedge, n_oor, n_bad = _k.evt3_decode(
        np.ascontiguousarray(w, dtype=np.uint16), st, width, height)
    new = Evt3State(y=int(st[0]), t_low=int(st[1]), t_high=int(st[2]), pol=int(st[3]),
                    base_x=int(st[4]), valid=bool(st[5]))
    return make_events(t, x, y, p), make_triggers(tt, tid, tedge), new, int(n_oor), int(n_bad)


_EVT3_MAX_START_US = 7 * 24 * 3600 * 10**6      # a week of sensor uptime


def sensor_clock_offset(encoding: str, first_t_ns: int) -> int:
    """Nanoseconds a stream's event times must lose to fit ``encoding``'s clock: evt3 carries
    a sensor clock that starts near 0 at power-on, so a recording stamped in wall-clock time
    (AEDAT4, a libcaer bag: microseconds since 1970) is played as a camera switched on at its
    first event; 0 when the times already fit (or the encoding carries a time base)."""
    if encoding == "evt3" and first_t_ns // 1000 > _EVT3_MAX_START_US:
        return int(first_t_ns) - int(first_t_ns) % 1000
    return 0



@dataclass
class Evt3EncoderState:
    last_high: int = -1      # full time >> 12 of the last TIME_HIGH written, -1 before any
    last_low: int = -1
    last_y: int = -1


def encode_evt3(ev: np.ndarray, state: Evt3EncoderState) -> tuple[bytes, Evt3EncoderState]:
    """Encode time-sorted events as evt3 words (ADDR_X per event, no vectors).

    Times are written in microseconds (ns // 1000) of a sensor clock that starts at 0 with the
    stream. TIME_HIGH words are inserted at most 2048 steps apart so that the decoder's
    roll-over detection stays unambiguous over long gaps (and from 0 to the first event).
    """
    n = len(ev)
    if n == 0:
        return b"", state
    t_us = ev["t"] // 1000
    if np.any(t_us[1:] < t_us[:-1]) or t_us[0] < 0:
        raise TimeOrderError("evt3 encoder needs non-negative, time-sorted events")
    if int(ev["x"].max()) >= 2048 or int(ev["y"].max()) >= 2048:
        raise OutOfRangeError("evt3 carries 11-bit coordinates (< 2048)")
    if state.last_high < 0 and t_us[0] > _EVT3_MAX_START_US:
        raise OutOfRangeError(
            f"evt3 carries a sensor clock that starts at 0; a first event at {int(t_us[0])} us "
            "looks like wall-clock time (subtract the start time first)")
    hi = t_us >> 12
    lo = t_us & 0xFFF
    y = ev["y"].astype(np.int64)
    prev_hi = np.concatenate(([state.last_high], hi[:-1]))
    prev_lo = np.concatenate(([state.last_low], lo[:-1]))
    prev_y = np.concatenate(([state.last_y], y[:-1]))
    if state.last_high < 0:
        # a new stream starts at sensor time 0: step the high time up to the first event
        prev_hi[0] = 0
    n_hi = -(-(hi - prev_hi) // 2048)                  # ceil(steps / 2048)
    if state.last_high < 0:
        n_hi[0] = max(n_hi[0], 1)                      # the stream starts with TIME_HIGH
    new_hi = n_hi > 0
    n_lo = ((lo != prev_lo) | new_hi).astype(np.int64)
    n_y = (y != prev_y).astype(np.int64)
    per = n_hi + n_lo + n_y + 1
    off = np.concatenate(([0], np.cumsum(per)[:-1]))
    out = np.empty(int(per.sum()), np.uint16)
    # TIME_HIGH words (several only across long gaps)
    k = np.repeat(np.arange(n), n_hi)
    j = np.arange(len(k)) - np.repeat(np.cumsum(n_hi) - n_hi, n_hi)
    val = np.minimum(prev_hi[k] + 2048 * (j + 1), hi[k])
    out[off[k] + j] = (8 << 12) | (val & 0xFFF)
    p = off + n_hi
    m = n_lo > 0
    out[p[m]] = (6 << 12) | lo[m]
    p = p + n_lo
    m = n_y > 0
    out[p[m]] = y[m]
    p = p + n_y
    out[p] = (2 << 12) | (ev["p"].astype(np.int64) << 11) | ev["x"]
    return out.astype("<u2").tobytes(), Evt3EncoderState(int(hi[-1]), int(lo[-1]), int(y[-1]))


# --------------------------------------------------------------------------- libcaer_cmp
@dataclass(frozen=True)
class LibcaerCmpState:
    x: int = 0
    pol: int = 0
    base_y: int = 0


def decode_libcaer_cmp(w: np.ndarray, time_base: int, state: LibcaerCmpState,
                       width: int = 65536, height: int = 65536
                       ) -> tuple[np.ndarray, LibcaerCmpState, int, int]:
    """Decode libcaer_cmp words: (events, new state, out-of-range dropped, invalid words).

    Codes: 0 TIME_HIGH, 1 TIME_LOW, 2 ADDR_X, 3 ADDR_Y (emits an event), 4 VECT_BASE_Y,
    5 VECT_8 (8 rows from the base y, which then advances by 8). The time restarts at
    ``time_base`` in every packet; the x address and vector base carry over.
    """
    st = np.array([state.x, state.pol, state.base_y], np.int64)
    t, x, y, p, n_oor, n_bad = _k.cmp_decode(np.ascontiguousarray(w, dtype=np.uint16), st,
                                             np.int64(time_base), width, height)
    new = LibcaerCmpState(x=int(st[0]), pol=int(st[1]), base_y=int(st[2]))
    return make_events(t, x, y, p), new, int(n_oor), int(n_bad)


def encode_libcaer_cmp(ev: np.ndarray, time_base: int) -> bytes:
    """Encode time-sorted events of one packet; offsets from ``time_base`` in microseconds."""
    n = len(ev)
    if n == 0:
        return b""
    dt = (ev["t"] - time_base) // 1000
    if dt.min() < 0 or dt.max() >= 1 << 24 or np.any(dt[1:] < dt[:-1]):
        raise TimeOrderError("libcaer_cmp packets hold sorted times within 16.7 s of time_base")
    if int(ev["x"].max()) >= 2048 or int(ev["y"].max()) >= 2048:
        raise OutOfRangeError("libcaer_cmp carries 11-bit coordinates (< 2048)")
    hi, lo = dt >> 12, dt & 0xFFF
    x = ev["x"].astype(np.int64)
    first = np.arange(n) == 0
    n_hi = ((hi != np.concatenate(([0], hi[:-1]))) & ~(first & (hi == 0))).astype(np.int64)
    n_lo = ((lo != np.concatenate(([0], lo[:-1]))) & ~(first & (lo == 0))).astype(np.int64)
    n_x = ((x != np.concatenate(([-1], x[:-1])))).astype(np.int64)
    per = n_hi + n_lo + n_x + 1
    off = np.concatenate(([0], np.cumsum(per)[:-1]))
    out = np.empty(int(per.sum()), np.uint16)
    m = n_hi > 0
    out[off[m]] = (0 << 12) | hi[m]
    p = off + n_hi
    m = n_lo > 0
    out[p[m]] = (1 << 12) | lo[m]
    p = p + n_lo
    m = n_x > 0
    out[p[m]] = (2 << 12) | x[m]
    p = p + n_x
    out[p] = (3 << 12) | (ev["p"].astype(np.int64) << 11) | ev["y"]
    return out.astype("<u2").tobytes()


# --------------------------------------------------------------------------- 8-byte formats
def decode_libcaer(rec: np.ndarray, time_base: int) -> np.ndarray:
    """libcaer polarity events: address word + int32 µs, 31-bit roll-over inside a packet."""
    if len(rec) == 0:
        return np.empty(0, EVENT_DTYPE)
    d = rec[:, 0].astype(np.int64)
    ts = rec[:, 1].astype(np.int64)
    rolls = np.concatenate(([0], np.cumsum(ts[1:] < ts[:-1])))
    t = time_base + rolls * ((1 << 31) * 1000) + ts * 1000
    return make_events(t, (d >> 17) & 0x7FFF, (d >> 2) & 0x7FFF, (d >> 1) & 1)


def encode_libcaer(ev: np.ndarray, time_base: int) -> bytes:
    dt = (ev["t"] - time_base) // 1000
    if len(ev) and (dt.min() < 0 or dt.max() >= 1 << 31):
        raise TimeOrderError("libcaer packets hold times within 35 min after time_base")
    rec = np.empty((len(ev), 2), "<u4")
    rec[:, 0] = (ev["x"].astype(np.uint32) << 17) | (ev["y"].astype(np.uint32) << 2) \
        | (ev["p"].astype(np.uint32) << 1) | 1
    rec[:, 1] = dt
    return rec.tobytes()


def decode_mono(w: np.ndarray, time_base: int) -> np.ndarray:
    w = w.astype(np.uint64)
    return make_events(time_base + (w & 0xFFFFFFFF).astype(np.int64), (w >> 32) & 0xFFFF,
                       (w >> 48) & 0x7FFF, w >> 63)


def decode_trigger(w: np.ndarray, time_base: int) -> np.ndarray:
    w = w.astype(np.uint64)
    return make_triggers(time_base + (w & 0xFFFFFFFF).astype(np.int64),
                         ((w >> 48) & 0x7FFF).astype(np.uint8), w >> 63)


def _mono_words(t: np.ndarray, hi_field: np.ndarray, mid_field: np.ndarray, flag: np.ndarray,
                time_base: int) -> bytes:
    dt = t - time_base
    if len(t) and (dt.min() < 0 or dt.max() >= 1 << 32):
        raise TimeOrderError("mono/trigger packets hold times within 4.29 s after time_base")
    w = (flag.astype(np.uint64) << np.uint64(63)) | (hi_field.astype(np.uint64) << np.uint64(48)) \
        | (mid_field.astype(np.uint64) << np.uint64(32)) | dt.astype(np.uint64)
    return w.astype("<u8").tobytes()


def encode_mono(ev: np.ndarray, time_base: int) -> bytes:
    if len(ev) and int(ev["y"].max()) >= 1 << 15:
        raise OutOfRangeError("mono carries 15-bit y coordinates")
    return _mono_words(ev["t"], ev["y"], ev["x"], ev["p"], time_base)


def encode_trigger(tr: np.ndarray, time_base: int) -> bytes:
    return _mono_words(tr["t"], tr["id"], np.zeros(len(tr), np.uint64), tr["edge"], time_base)


# --------------------------------------------------------------------------- stream objects
class _GeometryDataError(CorruptDataError):
    """A packet header with an impossible sensor size (0x0, > 65536)."""


_SKIP_CAUSES = {UnknownEncodingError: "unknown_encoding", _GeometryDataError: "invalid_geometry",
                TruncatedDataError: "truncated", CorruptDataError: "corrupt",
                OutOfRangeError: "out_of_range", TimeOrderError: "time_order"}


@dataclass
class PacketDecoder:
    """Decodes a stream of packets from one sensor, keeping each encoding's state.

    ``strict=True`` raises an ``EventDataError`` naming the packet and the problem.
    ``strict=False`` skips what it cannot use and counts it in ``stats`` (never silently):
    undecodable packets, stray trailing bytes, invalid words, out-of-range coordinates;
    events whose time goes backwards are kept, counted and sorted into place.
    """

    strict: bool = True
    stats: DecodeStats = field(default_factory=DecodeStats)
    _evt3: Evt3State = field(default_factory=Evt3State)
    _cmp: LibcaerCmpState = field(default_factory=LibcaerCmpState)
    _last_seq: int | None = None
    _last_t: int | None = None

    def decode(self, pkt: Packet, where: str | None = None) -> EventArray:
        where = where or f"packet seq={pkt.seq}"
        try:
            return self._decode(pkt, where)
        except EventDataError as exc:
            self.stats.last_error = str(exc)
            if self.strict:
                raise
            self.stats.skipped_packets += 1
            cause = _SKIP_CAUSES.get(type(exc), "invalid")
            self.stats.skipped_by_cause[cause] = self.stats.skipped_by_cause.get(cause, 0) + 1
            return EventArray(np.empty(0, EVENT_DTYPE), max(pkt.width, 1), max(pkt.height, 1))

    def _problem(self, exc: EventDataError, counter: str, n: int) -> None:
        if self.strict:
            raise exc
        setattr(self.stats, counter, getattr(self.stats, counter) + n)
        self.stats.last_error = str(exc)

    def _decode(self, pkt: Packet, where: str) -> EventArray:
        enc = pkt.encoding
        if enc not in _WORD_BYTES:
            raise UnknownEncodingError(
                f"unknown encoding {enc!r} (known: {', '.join(ENCODINGS)})", where=where)
        if pkt.width <= 0 or pkt.height <= 0 or pkt.width > 65536 or pkt.height > 65536:
            raise _GeometryDataError(f"invalid sensor geometry {pkt.width}x{pkt.height}", where=where)
        self._count_seq(int(pkt.seq))
        payload = pkt.payload()
        self.stats.bytes += len(payload)
        wb = _WORD_BYTES[enc]
        dtype = {2: "u2", 8: "u8"}[wb]
        w, stray = _words(payload, dtype, pkt.is_bigendian)
        if stray:
            self._problem(TruncatedDataError(
                f"{enc} payload of {len(payload)} bytes is not a whole number of {wb}-byte words "
                f"({stray} stray bytes)", where=where), "truncated_bytes", stray)
        triggers = np.empty(0, TRIGGER_DTYPE)
        bad = dropped = 0
        if enc == "evt3":
            ev, triggers, self._evt3, dropped, bad = decode_evt3(w, self._evt3, pkt.width,
                                                                 pkt.height)
        elif enc == "libcaer_cmp":
            ev, self._cmp, dropped, bad = decode_libcaer_cmp(w, pkt.time_base, self._cmp,
                                                             pkt.width, pkt.height)
        elif enc == "libcaer":
            rec = payload[: len(w) * 8].view("<i4" if not pkt.is_bigendian else ">i4").reshape(-1, 2)
            ev = decode_libcaer(rec, pkt.time_base)
        elif enc == "mono":
            ev = decode_mono(w, pkt.time_base)
        else:
            ev = np.empty(0, EVENT_DTYPE)
            triggers = decode_trigger(w, pkt.time_base)
        if bad:
            self._problem(CorruptDataError(
                f"{bad} words with codes that are invalid in {enc}", where=where), "bad_words", bad)
        if dropped:
            self._problem(OutOfRangeError(
                f"{dropped} events outside the {pkt.width}x{pkt.height} sensor", where=where),
                "out_of_range", dropped)
        oor = (ev["x"] >= pkt.width) | (ev["y"] >= pkt.height)
        n_oor = int(np.count_nonzero(oor))
        if n_oor:
            i = int(np.flatnonzero(oor)[0])
            self._problem(OutOfRangeError(
                f"{n_oor} events outside the {pkt.width}x{pkt.height} sensor (first x={int(ev['x'][i])},"
                f" y={int(ev['y'][i])})", where=where), "out_of_range", n_oor)
            ev = ev[~oor]
        ev = self._order(ev, where)
        # a packet is counted once it is whole: its events first, the packet last. The
        # inference node decodes in its worker thread while diagnostics (and tests) read
        # these counters: with the packet counted on entry, a reader once saw all 105
        # packets of a bag but the events of 104 (81,721 of 82,469: the last packet's 748
        # were still being decoded), which looked like events lost without a counter
        self.stats.events += len(ev)
        self.stats.on += int(np.count_nonzero(ev["p"]))
        self.stats.triggers += len(triggers)
        self.stats.packets += 1
        return EventArray(ev, int(pkt.width), int(pkt.height), triggers)

    def skim(self, pkt: Packet, accept=None) -> tuple[int, int, int] | None:
        """For data that is shed anyway: ``(events, first t, last t)`` (ns; -1 without
        events) with the stream's state and every counter advanced exactly as ``decode``
        would, but no event made -- a fifth of decode's cost. Only for clean evt3 (the
        stateful encoding live drivers send at high rates); None, with nothing changed,
        for anything else or anything ``decode`` would report (corrupt words, coordinates
        outside the sensor, time going back), and when ``accept(first t, last t)`` says no:
        the caller then decodes the packet the ordinary way."""
        if pkt.encoding != "evt3" or pkt.is_bigendian or not (
                0 < pkt.width <= 65536 and 0 < pkt.height <= 65536):
            return None
        payload = pkt.payload()
        if len(payload) % 2:
            return None
        s = self._evt3
        st = np.array([s.y, s.t_low, s.t_high, s.pol, s.base_x, int(s.valid)], np.int64)
        n, n_on, t0, t1, n_back, n_oor, n_bad, n_tr = _k.evt3_skim(
            np.ascontiguousarray(payload.view("<u2"), dtype=np.uint16), st, int(pkt.width),
            int(pkt.height))
        if n_oor or n_bad or n_back or (n and self._last_t is not None and t0 < self._last_t):
            return None
        if accept is not None and not accept(int(t0), int(t1)):
            return None
        self._count_seq(int(pkt.seq))
        self.stats.bytes += len(payload)
        self._evt3 = Evt3State(y=int(st[0]), t_low=int(st[1]), t_high=int(st[2]),
                               pol=int(st[3]), base_x=int(st[4]), valid=bool(st[5]))
        if n:
            self._last_t = int(t1)
        self.stats.events += int(n)
        self.stats.on += int(n_on)
        self.stats.triggers += int(n_tr)
        self.stats.packets += 1
        return int(n), int(t0), int(t1)

    def snapshot(self) -> tuple:
        """The stream state (not the stats): what a caller restores when it rejects a
        packet after decoding it, so that a rejected packet leaves no trace on the stream
        -- random evt3 words can otherwise add a 24-bit roll-over to every later time."""
        return (self._evt3, self._cmp, self._last_seq, self._last_t)

    def restore(self, snap: tuple) -> None:
        self._evt3, self._cmp, self._last_seq, self._last_t = snap

    MAX_SEQ_GAP = 100_000        # more missing packets than this in one step is not a gap

    def _count_seq(self, seq: int) -> None:
        """Gaps count missing packets; a sequence number that goes back (a driver restart)
        or leaps by more than MAX_SEQ_GAP (a lying or corrupt header) counts once as a
        reset, so one bad value cannot add 2**64 to the gap count."""
        if self._last_seq is not None and seq != self._last_seq + 1:
            gap = seq - self._last_seq - 1
            if 0 < gap <= self.MAX_SEQ_GAP:
                self.stats.seq_gaps += gap
            else:
                self.stats.seq_resets += 1
        self._last_seq = seq

    @property
    def last_t(self) -> int | None:
        """End time of the last packet: the reference for time regressions. A caller that
        rejects a packet after decoding it (its time span) puts the previous value back,
        so one far-future packet cannot make every later packet count as a regression."""
        return self._last_t

    @last_t.setter
    def last_t(self, t: int | None) -> None:
        self._last_t = t

    def _order(self, ev: np.ndarray, where: str) -> np.ndarray:
        ev = ensure_time_order(ev, self.strict, self.stats, where, self._last_t)
        if len(ev):
            # the last packet's end, not the maximum ever seen: a single packet from the
            # future costs at most one regression, not one for every packet after it
            self._last_t = int(ev["t"][-1])
        return ev


def ensure_time_order(ev: np.ndarray, strict: bool, stats: DecodeStats, where: str,
                      prev_t: int | None = None) -> np.ndarray:
    """Events in time order: raise (strict) or count and stably sort (lenient).

    ``prev_t`` is the last time of the stream so far, so a packet that starts before the
    previous one ended counts as a regression too.
    """
    if not len(ev):
        return ev
    t = ev["t"]
    back = int(np.count_nonzero(t[1:] < t[:-1])) + int(prev_t is not None and t[0] < prev_t)
    if back:
        exc = TimeOrderError(f"event time goes backwards {back} times", where=where)
        if strict:
            raise exc
        stats.time_regressions += back
        stats.last_error = str(exc)
        ev = ev[np.argsort(t, kind="stable")]
    return ev


@dataclass
class PacketEncoder:
    """Turns time-sorted events into Packets of one encoding, with sequence numbers."""

    encoding: str
    width: int
    height: int
    frame_id: str = ""
    seq: int = 0
    _evt3: Evt3EncoderState = field(default_factory=Evt3EncoderState)

    def __post_init__(self) -> None:
        if self.encoding not in ("evt3", "libcaer_cmp", "libcaer", "mono"):
            raise UnknownEncodingError(
                f"cannot encode {self.encoding!r}; encoders: evt3, libcaer_cmp, libcaer, mono")

    def encode(self, ev: np.ndarray, triggers: np.ndarray | None = None,
               stamp_ns: int | None = None) -> Packet:
        if len(ev) and (int(ev["x"].max()) >= self.width or int(ev["y"].max()) >= self.height):
            raise OutOfRangeError(f"events outside the {self.width}x{self.height} sensor")
        time_base = int(ev["t"][0]) if len(ev) else 0
        if self.encoding == "evt3":
            data, self._evt3 = encode_evt3(ev, self._evt3)
            time_base = 0
        elif self.encoding == "libcaer_cmp":
            data = encode_libcaer_cmp(ev, time_base)
        elif self.encoding == "libcaer":
            data = encode_libcaer(ev, time_base)
        else:
            data = encode_mono(ev, time_base)
        pkt = Packet(self.encoding, self.width, self.height, data, seq=self.seq,
                     time_base=time_base, frame_id=self.frame_id,
                     stamp_ns=stamp_ns if stamp_ns is not None else (int(ev["t"][-1]) if len(ev) else 0))
        self.seq += 1
        return pkt


def decode_packets(packets, strict: bool = True, where: str = "") -> tuple[EventArray, DecodeStats]:
    """Decode a whole sequence of packets of one sensor into one EventArray."""
    dec = PacketDecoder(strict=strict)
    parts = [dec.decode(p, where=f"{where}message {i} (seq={p.seq})".lstrip())
             for i, p in enumerate(packets)]
    if not parts:
        raise EventDataError("no event packets", where=where or None)
    return EventArray.concatenate(parts), dec.stats

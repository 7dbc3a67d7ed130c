"""Readers for event files: AEDAT4 (dv-processing), jAER AEDAT 2.0, N-MNIST binary, Prophesee RAW.

Each reader returns an ``EventArray`` in image coordinates (origin top-left) with t in ns, or
raises an ``EventDataError`` that names the file and what is wrong. ``strict=False`` skips
and counts what cannot be used instead (see ``DecodeStats``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .array import EVENT_DTYPE, EventArray, make_events, make_triggers
from .codecs import DecodeStats, Packet, PacketDecoder, ensure_time_order
from .errors import CorruptDataError, EventDataError, NoEventsError, TruncatedDataError


def _read_header(data: bytes, marker: bytes, path: Path) -> tuple[list[str], int]:
    """Lines starting with ``marker`` at the top of a file, and where the binary part begins."""
    lines, pos = [], 0
    while data[pos:pos + 1] == marker:
        nl = data.find(b"\n", pos)
        if nl < 0:
            raise TruncatedDataError("header never ends", where=str(path))
        lines.append(data[pos:nl].decode("latin-1").rstrip("\r"))
        pos = nl + 1
    return lines, pos


# --------------------------------------------------------------------------- AEDAT 2.0
def read_aedat2(path: str | Path, strict: bool = True) -> tuple[EventArray, DecodeStats]:
    """jAER AEDAT 2.0 from a DVS128: big-endian int32 address + int32 µs timestamp.

    DVS128 addresses hold polarity in bit 0 (0 = ON), x in bits 1-7 and y in bits 8-14, with
    x mirrored and y pointing up as jAER draws them; bit 15 marks an external (special)
    event, kept as a trigger. Returned coordinates are image coordinates (origin top-left).
    """
    path = Path(path)
    data = path.read_bytes()
    header, pos = _read_header(data, b"#", path)
    if not header or not header[0].startswith("#!AER-DAT2"):
        raise CorruptDataError("not a jAER AEDAT 2.0 file (no '#!AER-DAT2.0' line)", where=str(path))
    chip = " ".join(h for h in header if "AEChip" in h)
    if chip and "DVS128" not in chip:
        raise CorruptDataError(f"only DVS128 address layouts are supported, file says {chip!r}",
                               where=str(path))
    stats = DecodeStats(packets=1, bytes=len(data) - pos)
    body = np.frombuffer(data, np.uint8, offset=pos)
    n = len(body) // 8
    if len(body) % 8:
        exc = TruncatedDataError(f"{len(body) % 8} stray bytes after {n} records", where=str(path))
        if strict:
            raise exc
        stats.truncated_bytes, stats.last_error = len(body) % 8, str(exc)
    rec = body[: n * 8].view(">u4").reshape(-1, 2).astype(np.int64)
    addr, ts = rec[:, 0], rec[:, 1]
    special = (addr >> 15) & 1 == 1
    t = ts * 1000
    ev = make_events(t[~special], 127 - ((addr[~special] >> 1) & 0x7F),
                     127 - ((addr[~special] >> 8) & 0x7F), 1 - (addr[~special] & 1))
    trig = make_triggers(t[special], np.zeros(int(special.sum())), addr[special] & 1)
    ev = ensure_time_order(ev, strict, stats, str(path))
    stats.events, stats.on, stats.triggers = len(ev), int(ev["p"].sum()), len(trig)
    return EventArray(ev, 128, 128, trig), stats


# --------------------------------------------------------------------------- N-MNIST
NMNIST_SIZE = 34


def read_nmnist(path: str | Path, strict: bool = True) -> tuple[EventArray, DecodeStats]:
    """N-MNIST 40-bit records: x, y, polarity bit + 23-bit µs timestamp (big-endian)."""
    path = Path(path)
    data = np.fromfile(path, np.uint8)
    stats = DecodeStats(packets=1, bytes=len(data))
    n = len(data) // 5
    if len(data) % 5:
        exc = TruncatedDataError(f"{len(data) % 5} stray bytes after {n} 5-byte records",
                                 where=str(path))
        if strict:
            raise exc
        stats.truncated_bytes, stats.last_error = len(data) % 5, str(exc)
    r = data[: n * 5].reshape(-1, 5).astype(np.int64)
    ts = ((r[:, 2] & 0x7F) << 16) | (r[:, 3] << 8) | r[:, 4]
    ev = make_events(ts * 1000, r[:, 0], r[:, 1], r[:, 2] >> 7)
    bad = (ev["x"] >= NMNIST_SIZE) | (ev["y"] >= NMNIST_SIZE)
    if bad.any():
        exc = CorruptDataError(f"{int(bad.sum())} events outside the 34x34 ATIS crop",
                               where=str(path))
        if strict:
            raise exc
        stats.out_of_range, stats.last_error = int(bad.sum()), str(exc)
        ev = ev[~bad]
    ev = ensure_time_order(ev, strict, stats, str(path))
    stats.events, stats.on = len(ev), int(ev["p"].sum())
    return EventArray(ev, NMNIST_SIZE, NMNIST_SIZE), stats


def read_nmnist_stream(folder: str | Path, strict: bool = True
                       ) -> tuple[EventArray, DecodeStats]:
    """Every sample of an N-MNIST folder (ids in ``labels.txt`` order), back to back on one
    clock: the sensor's saccades over one digit after another, as one long recording of a
    scene with no gesture (what false-command measurements replay)."""
    folder = Path(folder)
    ids = list(read_nmnist_labels(folder))
    parts, total = [], DecodeStats()
    t_off = 0
    for i in ids:
        f = next((folder / f"{i}{s}" for s in (".bs2", ".bin") if (folder / f"{i}{s}").exists()),
                 None)
        if f is None:
            raise EventDataError(f"labels.txt names sample {i} but there is no {i}.bs2 or "
                                 f"{i}.bin", where=str(folder))
        ea, st = read_nmnist(f, strict)
        ev = ea.events.copy()
        ev["t"] += t_off
        if len(ev):
            t_off = int(ev["t"][-1]) + 1000
        parts.append(ev)
        for k, v in st.as_dict().items():
            if isinstance(v, int) and hasattr(total, k):
                setattr(total, k, getattr(total, k) + v)
    ev = np.concatenate(parts) if parts else make_events([], [], [], [])
    return EventArray(ev, NMNIST_SIZE, NMNIST_SIZE), total


def read_nmnist_labels(folder: str | Path) -> dict[int, int]:
    """``labels.txt`` of an N-MNIST folder: sample id -> class (lines starting '#' ignored)."""
    path = Path(folder) / "labels.txt"
    if not Path(folder).is_dir():
        raise EventDataError("no such folder", where=str(folder))
    if not path.exists():
        raise EventDataError("no labels.txt in the N-MNIST folder", where=str(folder))
    out = {}
    for i, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            out[int(parts[0])] = int(parts[1])
        except (ValueError, IndexError):
            raise EventDataError(f"line {i} is not 'id class': {line!r}", where=str(path)) from None
    return out


# --------------------------------------------------------------------------- Prophesee RAW
_PROPHESEE_GEOMETRY = {"gen41": (1280, 720), "imx636": (1280, 720), "gen31": (640, 480),
                       "imx8": (320, 320), "genx320": (320, 320), "gen3": (640, 480)}


def read_prophesee_raw(path: str | Path, strict: bool = True,
                       geometry: tuple[int, int] | None = None) -> tuple[EventArray, DecodeStats]:
    """Prophesee RAW files with an EVT 3.0 stream after a '%' text header."""
    path = Path(path)
    data = path.read_bytes()
    header, pos = _read_header(data, b"%", path)
    text = "\n".join(header).lower()
    if "evt 3.0" not in text and "format evt3" not in text:
        raise CorruptDataError("only EVT 3.0 RAW files are supported (header says "
                               f"{[h for h in header if 'evt' in h.lower()] or 'nothing'})",
                               where=str(path))
    if geometry is None:
        m = re.search(r"width=(\d+).*?height=(\d+)|height=(\d+).*?width=(\d+)", text)
        g = re.search(r"geometry\s+(\d+)x(\d+)", text)
        if g:
            geometry = (int(g.group(1)), int(g.group(2)))
        elif m:
            geometry = (int(m.group(1)), int(m.group(2))) if m.group(1) \
                else (int(m.group(4)), int(m.group(3)))
        else:
            geometry = next((v for k, v in _PROPHESEE_GEOMETRY.items() if k in text), None)
    if geometry is None:
        raise CorruptDataError("sensor geometry is not in the header; pass geometry=(W, H)",
                               where=str(path))
    pkt = Packet("evt3", geometry[0], geometry[1], np.frombuffer(data, np.uint8, offset=pos))
    dec = PacketDecoder(strict=strict)
    ea = dec.decode(pkt, where=str(path))
    return ea, dec.stats


# --------------------------------------------------------------------------- AEDAT4
def _dv_reason(exc: Exception) -> str:
    """dv-processing's message without its C++ source location and stack trace: the line
    that names what went wrong (e.g. "EndOfFile: ... End-Of-File reached")."""
    lines = [ln.strip() for ln in str(exc).splitlines()]
    keep = [ln for ln in lines if ln and not ln.startswith(("/", "Stacktrace"))
            and not re.match(r"^\d+# ", ln)]
    return " ".join(keep) or (lines[0] if lines else type(exc).__name__)


def read_aedat4(path: str | Path, strict: bool = True) -> tuple[EventArray, DecodeStats]:
    """AEDAT4 through dv-processing (the reference implementation of the format)."""
    import dv_processing as dv

    path = Path(path)
    try:
        rec = dv.io.MonoCameraRecording(str(path))
    except Exception as exc:  # dv raises RuntimeError with its own text
        raise CorruptDataError(f"dv-processing cannot open it: {_dv_reason(exc)}",
                               where=str(path)) from None
    if not rec.isEventStreamAvailable():
        raise NoEventsError("the recording has no event stream", where=str(path))
    w, h = rec.getEventResolution()
    parts = []
    stats = DecodeStats()
    try:
        while rec.isRunning():
            batch = rec.getNextEventBatch()
            if batch is None:
                break
            a = batch.numpy()
            stats.packets += 1
            parts.append(make_events(a["timestamp"] * 1000, a["x"], a["y"], a["polarity"]))
    except Exception as exc:
        err = CorruptDataError(f"reading stopped after {stats.packets} packets: "
                               f"{_dv_reason(exc)}", where=str(path))
        if strict:
            raise err from None
        stats.skipped_packets += 1
        stats.last_error = str(err)
    ev = np.concatenate(parts) if parts else np.empty(0, EVENT_DTYPE)
    ev = ensure_time_order(ev, strict, stats, str(path))
    stats.events, stats.on = len(ev), int(ev["p"].sum())
    return EventArray(ev, int(w), int(h)), stats


def write_aedat4(path: str | Path, ea: EventArray, camera_name: str = "snn4_ros") -> None:
    """Write events as AEDAT4 through dv-processing."""
    import dv_processing as dv

    from .frames import to_dv_store

    cfg = dv.io.MonoCameraWriter.EventOnlyConfig(camera_name, (ea.width, ea.height))
    writer = dv.io.MonoCameraWriter(str(path), cfg)
    writer.writeEvents(to_dv_store(ea.events))
    del writer
